"""Flash-style attention against PyTorch's scaled_dot_product_attention."""
import numpy as np
import pytest

from pyfastnn import ops
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")
F = torch.nn.functional

CASES = [  # (B, H, Nq, Nk, D, causal)
    (1, 1, 1, 1, 1, False), (2, 3, 70, 130, 16, False), (1, 2, 129, 129, 33, True), (2, 2, 5, 7, 8, False),
    (1, 1, 65, 64, 7, True), (1, 2, 64, 200, 64, False), (3, 1, 17, 1, 5, False),
    (1, 1, 9, 100, 400, True),  # D beyond one k block: K^T is not reused from the packed copy
]


def reference(q, k, v, causal=False, mask=None, scale=None):
    tq, tk, tv = (torch.from_numpy(a).double().requires_grad_() for a in (q, k, v))
    tm = None if mask is None else torch.from_numpy(mask if mask.dtype == np.bool_ else mask.astype(np.float64))
    out = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, is_causal=causal, scale=scale)
    return out, (tq, tk, tv)


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_sdpa(isa, case, dtype):
    B, H, Nq, Nk, D, causal = case
    rng = np.random.default_rng()
    q, k, v = (rng.standard_normal((B, H, n, D)).astype(dtype) for n in (Nq, Nk, Nk))
    out, lse = ops.attention(q, k, v, causal=causal)
    tout, tin = reference(q, k, v, causal)
    fwd_tol, bwd_tol = (1e-5, 1e-4) if dtype == np.float32 else (1e-12, 1e-11)
    assert out.dtype == dtype and lse.shape == (B, H, Nq)
    assert rel_error(out, tout.detach().numpy()) < fwd_tol
    g = rng.standard_normal(out.shape).astype(dtype)
    tout.backward(torch.from_numpy(g).double())
    grads = ops.attention_backward(g, q, k, v, out, lse, causal=causal)
    for a, t in zip(grads, tin):
        # With one key grad_q is mathematically zero and holds only rounding
        # (~1e-6 in float32, against gradients of order 1): compare with a floor.
        assert rel_error(a, t.grad.numpy(), 1.0 if dtype == np.float32 else 1e-2) < bwd_tol


@pytest.mark.parametrize("kind", ["bool", "additive"])
@pytest.mark.parametrize("mask_shape", [(1, 1, 70, 90), (2, 1, 1, 90), (70, 90), (2, 3, 70, 90)])
def test_masks(isa, kind, mask_shape):
    rng = np.random.default_rng()
    B, H, Nq, Nk, D = 2, 3, 70, 90, 12
    q, k, v = (rng.standard_normal((B, H, n, D)) for n in (Nq, Nk, Nk))
    if kind == "bool":
        mask = rng.random(mask_shape) > 0.3
        full = np.broadcast_to(mask, (B, H, Nq, Nk))
        if not full.any(axis=-1).all():   # keep every row alive here; empty rows are tested below
            mask = mask | (np.arange(Nk) == 0)
    else:
        mask = rng.standard_normal(mask_shape)
    out, lse = ops.attention(q, k, v, mask=mask, scale=0.3)
    tout, tin = reference(q, k, v, mask=mask, scale=0.3)
    assert rel_error(out, tout.detach().numpy()) < 1e-12
    g = rng.standard_normal(out.shape)
    tout.backward(torch.from_numpy(g))
    for a, t in zip(ops.attention_backward(g, q, k, v, out, lse, mask=mask, scale=0.3), tin):
        assert rel_error(a, t.grad.numpy()) < 1e-11


def test_fully_masked_rows_give_zeros():
    rng = np.random.default_rng()
    q, k, v = (rng.standard_normal((1, 1, 4, 8)) for _ in range(3))
    mask = np.ones((4, 4), bool)
    mask[2] = False
    out, lse = ops.attention(q, k, v, mask=mask)
    assert (out[0, 0, 2] == 0).all() and np.isneginf(lse[0, 0, 2])
    ref, _ = reference(q, k, v, mask=np.where(mask, 0.0, -np.inf))
    np.testing.assert_allclose(np.delete(out[0, 0], 2, 0), np.delete(ref.detach().numpy()[0, 0], 2, 0), rtol=1e-12)
    grads = ops.attention_backward(np.ones_like(out), q, k, v, out, lse, mask=mask)
    assert all(np.isfinite(g).all() for g in grads)
    assert (grads[0][0, 0, 2] == 0).all()


def test_long_sequence_uses_tiles():
    # N = 2000: an N x N matrix would be 16 MB in float32; the kernel keeps tiles only.
    rng = np.random.default_rng()
    q, k, v = (rng.standard_normal((1, 1, 2000, 32)).astype(np.float32) for _ in range(3))
    out, _ = ops.attention(q, k, v, causal=True)
    ref, _ = reference(q, k, v, causal=True)
    assert rel_error(out, ref.detach().numpy()) < 1e-5


Q = np.ones((1, 2, 3, 4), np.float32)
BAD = [
    (lambda: ops.attention(Q, np.ones((1, 2, 5, 3), np.float32), np.ones((1, 2, 5, 3), np.float32)), ValueError,
     ["attention", "'k'"]),
    (lambda: ops.attention(Q, Q, np.ones((1, 2, 4, 4), np.float32)), ValueError, ["attention", "'v'"]),
    (lambda: ops.attention(Q[0], Q, Q), ValueError, ["attention", "'q'"]),
    (lambda: ops.attention(Q, Q.astype(np.float64), Q), TypeError, ["attention", "'k'", "float32"]),
    (lambda: ops.attention(Q.astype(np.int32), Q, Q), TypeError, ["attention", "'q'", "int32"]),
    (lambda: ops.attention(Q, Q, Q, mask=np.ones((2, 4), bool)), ValueError, ["attention", "'mask'"]),
    (lambda: ops.attention(Q, Q, Q, mask=np.ones((3, 3), np.int64)), TypeError, ["attention", "'mask'"]),
    (lambda: ops.attention(Q, Q, Q, scale=-1.0), ValueError, ["attention", "'scale'"]),
    (lambda: ops.attention_backward(Q, Q, Q, Q, Q, np.zeros((1, 2, 4), np.float32)), ValueError,
     ["attention_backward", "'lse'"]),
]


@pytest.mark.parametrize("call,exc,words", BAD)
def test_bad_input(call, exc, words):
    assert_raises_naming(call, exc, words)
