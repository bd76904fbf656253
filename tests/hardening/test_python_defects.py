"""Reproducers for the Python-side defects of issue 18 (items 4, 6, 7, 8 and the Python part of 9), one
test per defect, each written against the behaviour a torch or Keras user gets."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn
import pyfastnn.nn.functional as F
from conftest import assert_raises_naming


# ------------------------------------------------------------- 4: code execution
class _Payload:
    """Unpickling this calls os.makedirs(marker): a stand-in for any code an attacker picks."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _pickled_file(tmp_path, name):
    path = tmp_path / name
    with open(path, "wb") as f:
        pickle.dump({"weight": _Payload(tmp_path / "ran")}, f)
    return path


def _torch_zip_with_payload(tmp_path):
    """A torch-format zip whose data.pkl calls a function."""
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps(_Payload(tmp_path / "ran"), protocol=2))
        z.writestr("evil/version", "3\n")
    return path


@pytest.mark.parametrize("make", [lambda p: _pickled_file(p, "evil.pkl"), _torch_zip_with_payload])
def test_pyfastnn_load_runs_no_code_from_a_file(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(Exception) as info:
        pyfastnn.load(str(path))
    assert not (tmp_path / "ran").exists()
    assert "weights_only" in str(info.value) or "pickle" in str(info.value).lower()


def test_keras_load_model_runs_no_code_from_a_file(tmp_path):
    from pyfastnn import keras
    path = _pickled_file(tmp_path, "evil.keras")
    with pytest.raises(Exception):
        keras.models.load_model(str(path))
    assert not (tmp_path / "ran").exists()
    with pytest.raises(Exception):
        keras.models.load_model(str(path), safe_mode=True)
    assert not (tmp_path / "ran").exists()


def test_unknown_keywords_raise_type_error():
    from pyfastnn import keras
    with pytest.raises(TypeError, match="saf_mode"):
        keras.models.load_model("whatever.keras", saf_mode=False)
    with pytest.raises(TypeError, match="weights_onyl"):
        pyfastnn.load(io.BytesIO(b""), weights_onyl=True)
    with pytest.raises(TypeError, match="lrr"):
        pyfastnn.optim.SGD([nn.Parameter(np.zeros(2, np.float32))], lrr=0.1)
    with pytest.raises(TypeError, match="bias_"):
        nn.Linear(3, 4, bias_=False)


# ------------------------------------------------------- 6: autograd version counters
def test_inplace_edit_of_a_saved_tensor_is_refused_at_backward():
    x = pyfastnn.tensor(np.arange(1.0, 5.0, dtype=np.float32), requires_grad=True)
    y = x * 2
    z = (y * y).sum()               # saves y
    y.zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()
    a = pyfastnn.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    b = pyfastnn.tensor(np.full((2, 2), 3.0, np.float32))
    out = (a @ b).sum()             # saves b
    b[0] = 100
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


# ----------------------------------------------------------- 7: silent wrong results
@pytest.mark.parametrize("fn", [F.relu, F.gelu, F.sigmoid, F.tanh, lambda t: F.dropout(t, 0.5, training=False),
                                pyfastnn.relu, lambda t: nn.ReLU()(t), lambda t: nn.Dropout(0.3).eval()(t)])
def test_zero_d_inputs_stay_zero_d(fn):
    y = fn(pyfastnn.tensor(np.float32(0.5)))
    assert tuple(y.shape) == ()


def test_uint64_target_beyond_int64_is_refused_not_ignored():
    logits = pyfastnn.tensor(np.zeros((2, 3), np.float32))
    target = np.array([1, 2 ** 64 - 100], np.uint64)
    assert_raises_naming(lambda: F.cross_entropy(logits, target), (ValueError, IndexError, TypeError),
                         ["cross_entropy", "target"])


@pytest.mark.parametrize("bad", [-1, 3, 17])
def test_one_hot_out_of_range_is_an_error(bad):
    assert_raises_naming(lambda: F.one_hot(pyfastnn.tensor(np.array([0, bad])), num_classes=3),
                         (ValueError, RuntimeError), ["one_hot"])


def _tiny_keras_model():
    from pyfastnn import keras
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("batch_size", [-1, 0])
def test_predict_and_evaluate_refuse_non_positive_batch_size(batch_size):
    model = _tiny_keras_model()
    x, y = np.ones((5, 4), np.float32), np.ones((5, 2), np.float32)
    assert_raises_naming(lambda: model.predict(x, batch_size=batch_size, verbose=0), ValueError, ["batch_size"])
    assert_raises_naming(lambda: model.evaluate(x, y, batch_size=batch_size, verbose=0), ValueError,
                         ["batch_size"])
    torch_style = nn.Linear(4, 2)
    torch_style.compile(optimizer="sgd", loss="mse")
    assert_raises_naming(lambda: torch_style.fit(x, y, batch_size=batch_size, verbose=0), ValueError,
                         ["batch_size"])


def test_fit_on_zero_samples_raises():
    model = _tiny_keras_model()
    with pytest.raises(ValueError):
        model.fit(np.ones((0, 4), np.float32), np.ones((0, 2), np.float32), verbose=0)


def test_load_state_dict_is_all_or_nothing():
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    bad = {k: np.full(v.shape, 7.0, np.float32) for k, v in before.items()}
    bad["1.weight"] = np.zeros((5, 5), np.float32)          # the last entry is wrong
    with pytest.raises(RuntimeError, match=r"size mismatch for 1\.weight"):
        net.load_state_dict(bad)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])  # nothing was written


# ------------------------------------------------------------- 8: valid input refused
@pytest.mark.parametrize("mask_shape", [(3, 1, 5, 6), (2, 1, 1, 5, 6), (6,), (2, 3, 2, 5, 6), (1, 3, 2, 1, 6)])
def test_sdpa_masks_broadcast_over_extra_leading_dims(mask_shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 3, 2, 5, 4)).astype(np.float32)     # 5-D: (B, G, H, L, D)
    k = rng.standard_normal((2, 3, 2, 6, 4)).astype(np.float32)
    v = rng.standard_normal((2, 3, 2, 6, 4)).astype(np.float32)
    mask = rng.random(mask_shape) < 0.7
    mask[..., 0] = True
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    want = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.from_numpy(mask))
    oq, ok, ov = (pyfastnn.tensor(a, requires_grad=True) for a in (q, k, v))
    got = F.scaled_dot_product_attention(oq, ok, ov, attn_mask=mask)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    w = rng.standard_normal(want.shape).astype(np.float32)
    (want * torch.from_numpy(w)).sum().backward()
    (got * w).sum().backward()
    for o, t in ((oq, tq), (ok, tk), (ov, tv)):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_keras_layers_take_uint8_images():
    from pyfastnn import keras
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    conv = keras.layers.Conv2D(2, 3)
    y = conv(images)
    want = conv(images.astype(np.float32))
    np.testing.assert_allclose(np.asarray(y), np.asarray(want), rtol=1e-6)


# -------------------------------------------------------------- 9: unclear errors (Python side)
def test_strings_in_a_state_dict_name_the_key():
    net = nn.Linear(2, 2)
    sd = {k: v for k, v in net.state_dict().items()}
    sd["bias"] = np.array(["a", "b"])
    assert_raises_naming(lambda: net.load_state_dict(sd), (RuntimeError, TypeError, ValueError), ["bias"])


def test_keras_set_weights_with_strings_names_the_weight():
    from pyfastnn import keras
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    weights = layer.get_weights()
    assert_raises_naming(lambda: layer.set_weights([weights[0], np.array(["x", "y"])]),
                         (TypeError, ValueError), ["set_weights"])


def test_dropout_probability_of_the_wrong_type_names_the_argument():
    assert_raises_naming(lambda: F.dropout(pyfastnn.ones(3), p="x"), (TypeError, ValueError), ["dropout", "p"])


def test_truncated_npz_and_directory_paths_name_the_file(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, a=np.ones(100))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception) as info:
        pyfastnn.load(str(path))
    assert "w.npz" in str(info.value)
    with pytest.raises(Exception) as info:
        pyfastnn.load(str(tmp_path))
    assert str(tmp_path) in str(info.value) and "directory" in str(info.value)


def test_bad_optimizer_state_dict_names_what_is_wrong():
    p = nn.Parameter(np.zeros(2, np.float32))
    opt = pyfastnn.optim.Adam([p])
    sd = opt.state_dict()
    sd["state"] = {7: {"step": pyfastnn.tensor(1.0)}}
    with pytest.raises((ValueError, KeyError)) as info:
        opt.load_state_dict(sd)
    assert "7" in str(info.value) and "state" in str(info.value)
