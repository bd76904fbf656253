"""ops.affine_warp against scipy.ndimage.affine_transform (the call Keras makes), per fill mode and order;
non-finite pixel coordinates (from maps that overflow) take cval in every mode."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops

MODES = ["constant", "nearest", "reflect", "wrap"]


def scipy_warp(x, m, mode, cval=0.0, order=1, output_size=None):
    ndimage = pytest.importorskip("scipy.ndimage")
    shape = output_size or x.shape[:2]
    return np.stack([ndimage.affine_transform(x[..., k], m[:, :2], m[:, 2], output_shape=shape, order=order,
                                              mode=mode, cval=cval) for k in range(x.shape[-1])], axis=-1)


def random_cases(rng, count):
    for _ in range(count):
        h, w, c = (int(v) for v in rng.integers(1, 24, 3))
        m = rng.normal(size=(2, 3)) * rng.choice([0.3, 1.0, 3.0])
        m[:, 2] *= rng.choice([1.0, 10.0, 100.0])
        yield (rng.random((h, w, c)) * 255).astype(np.float32), m


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [0, 1])
def test_matches_scipy_random_maps(mode, order):
    rng = np.random.default_rng(MODES.index(mode) * 2 + order)
    for x, m in random_cases(rng, 60):
        want = scipy_warp(x, m, mode, cval=7.5, order=order)
        got = ops.affine_warp(x, m, order=order, fill_mode=mode, cval=7.5)
        assert got.dtype == np.float32 and got.shape == x.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_matches_scipy_on_edges_and_integer_shifts(mode):
    """Coordinates that land exactly on the border and on whole pixels, where the boundary rules decide."""
    x = (np.arange(7 * 5 * 2, dtype=np.float32).reshape(7, 5, 2) * 3.5) % 17
    for shift in [(0, 0), (-1, 0), (0, -1), (6, 4), (-7, -5), (3, -2), (-0.5, 0.5), (13, 9), (-20, 14)]:
        m = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
        np.testing.assert_allclose(ops.affine_warp(x, m, fill_mode=mode, cval=-1.0),
                                   scipy_warp(x, m, mode, cval=-1.0), atol=1e-4, rtol=0)
    flip = np.array([[-1.0, 0.0, 6.0], [0.0, -1.0, 4.0]])       # exact 180-degree turn
    np.testing.assert_allclose(ops.affine_warp(x, flip, fill_mode=mode), x[::-1, ::-1], atol=1e-6)


def test_float64_output_size_and_batch():
    rng = np.random.default_rng(3)
    x = rng.random((3, 11, 9, 3))
    mats = rng.normal(size=(3, 2, 3))
    got = ops.affine_warp(x, mats, output_size=(5, 13), fill_mode="reflect")
    assert got.dtype == np.float64 and got.shape == (3, 5, 13, 3)
    for i in range(3):
        np.testing.assert_allclose(got[i], scipy_warp(x[i], mats[i], "reflect", output_size=(5, 13)), atol=1e-12)
    # one (2, 3) matrix applies to every image
    one = ops.affine_warp(x, mats[0])
    for i in range(3):
        np.testing.assert_array_equal(one[i], ops.affine_warp(x[i], mats[0]))


def test_flips_identity_and_noncontiguous_input():
    rng = np.random.default_rng(4)
    x = rng.random((4, 6, 8, 3)).astype(np.float32)
    ident = np.repeat(np.eye(2, 3)[None], 4, 0)
    fc, fr = np.array([True, False, True, False]), np.array([False, False, True, True])
    got = ops.affine_warp(x, ident, flip_cols=fc, flip_rows=fr)
    for i in range(4):
        want = x[i][:, ::-1] if fc[i] else x[i]
        want = want[::-1] if fr[i] else want
        np.testing.assert_array_equal(got[i], want)
    m = rng.normal(size=(4, 2, 3))
    warped = ops.affine_warp(x, m, fill_mode="wrap")
    flipped = ops.affine_warp(x, m, fill_mode="wrap", flip_cols=fc, flip_rows=fr)
    np.testing.assert_array_equal(flipped[0], warped[0][:, ::-1])
    np.testing.assert_array_equal(flipped[3], warped[3][::-1])
    view = x[:, ::-1, :, ::2]                           # negative and non-unit strides: copied, not misread
    np.testing.assert_array_equal(ops.affine_warp(view, m), ops.affine_warp(np.ascontiguousarray(view), m))


def test_same_result_for_any_thread_count():
    rng = np.random.default_rng(5)
    x = (rng.random((9, 40, 33, 3)) * 255).astype(np.float32)
    m = rng.normal(size=(9, 2, 3)) * 2
    before = pyfastnn.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            pyfastnn.set_num_threads(n)
            outs.append(ops.affine_warp(x, m, fill_mode="nearest"))
    finally:
        pyfastnn.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_far_away_coordinates_stay_in_bounds():
    x = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    for scale in (1e8, 1e17, 1e300):
        m = np.array([[scale, 0.0, -scale], [0.0, -scale, scale]])
        for mode in MODES:
            out = ops.affine_warp(x, m, fill_mode=mode, cval=-3.0)
            assert np.all(np.isfinite(out))
            assert set(np.unique(out)) <= set(np.unique(x)) | {-3.0}
    nearest = ops.affine_warp(x, np.array([[0.0, 0.0, 1e18], [0.0, 0.0, -1e18]]), fill_mode="nearest")
    assert np.all(nearest == x[-1, 0])
    # rows * 1e308 overflow to inf and inf - inf is NaN: those pixels take cval, nothing is read
    nan_map = np.array([[1e308, 1e308, 0.0], [1e308, -1e308, 0.0]])
    for mode in MODES:
        out = ops.affine_warp(x, nan_map, fill_mode=mode, cval=-3.0)
        assert np.isfinite(out).all() and out[2, 3, 0] == -3.0


def test_bad_arguments_name_the_argument():
    x = np.zeros((2, 4, 5, 3), np.float32)
    m = np.eye(2, 3)
    with pytest.raises(ValueError, match="fill_mode"):
        ops.affine_warp(x, m, fill_mode="mirror")
    with pytest.raises(ValueError, match="order"):
        ops.affine_warp(x, m, order=3)
    with pytest.raises(ValueError, match="matrix"):
        ops.affine_warp(x, np.eye(3))
    with pytest.raises(ValueError, match="matrix"):
        ops.affine_warp(x, np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match="finite"):
        ops.affine_warp(x, np.full((2, 3), np.inf))
    with pytest.raises(TypeError, match="'x'"):
        ops.affine_warp(x.astype(np.int32), m)
    with pytest.raises(ValueError, match="'x'"):
        ops.affine_warp(np.zeros((4, 5), np.float32), m)
    with pytest.raises(ValueError, match="1x1"):
        ops.affine_warp(np.zeros((0, 5, 3), np.float32), m)
    with pytest.raises(ValueError, match="output_size"):
        ops.affine_warp(x, m, output_size=(0, 4))
    with pytest.raises(ValueError, match="flip_cols"):
        ops.affine_warp(x, m, flip_cols=np.ones(3, bool))
    with pytest.raises(TypeError, match="cval"):
        ops.affine_warp(x, m, cval="white")
    assert ops.affine_warp(np.zeros((0, 4, 5, 3), np.float32), m).shape == (0, 4, 5, 3)
