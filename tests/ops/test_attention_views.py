"""ops.attention reads views whose rows are contiguous in place — the filled part of a key/value cache, heads
split out of a (B, N, H*D) projection, broadcast batch or head dims — and gives the same bits as on
contiguous copies; views with strided rows are copied, the backward takes any view."""
import numpy as np
import pytest

from pyfastnn import ops


def copies(*arrays):
    return [np.ascontiguousarray(a) for a in arrays]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cache_prefix_and_split_heads(isa, threads, causal, dtype):
    rng = np.random.default_rng()
    B, H, D, cap = 2, 3, 19, 150
    cache_k = rng.standard_normal((B, H, cap, D)).astype(dtype)
    cache_v = rng.standard_normal((B, H, cap, D)).astype(dtype)
    for nq, nk in ((1, 1), (1, 97), (3, 130), (70, 70)):
        proj = rng.standard_normal((B, nq, H * D)).astype(dtype)
        q = proj.reshape(B, nq, H, D).transpose(0, 2, 1, 3)             # rows strided by H * D
        k, v = cache_k[:, :, :nk], cache_v[:, :, :nk]                   # heads strided by cap * D
        c = causal and nq == nk
        out, lse = ops.attention(q, k, v, causal=c)
        want_out, want_lse = ops.attention(*copies(q, k, v), causal=c)
        np.testing.assert_array_equal(out, want_out)
        np.testing.assert_array_equal(lse, want_lse)


def test_broadcast_and_strided_rows(isa):
    rng = np.random.default_rng()
    q = rng.standard_normal((1, 4, 5, 8)).astype(np.float32)
    kv = rng.standard_normal((1, 1, 9, 16)).astype(np.float32)
    k = np.broadcast_to(kv[..., ::2], (1, 4, 9, 8))         # a broadcast head dim and rows with stride 2
    v = np.broadcast_to(kv[..., :8], (1, 4, 9, 8))
    mask = rng.random((1, 1, 5, 9)) > 0.3
    out, lse = ops.attention(q, k, v, mask=np.broadcast_to(mask, (1, 4, 5, 9)))
    want_out, want_lse = ops.attention(*copies(q, k, v), mask=np.broadcast_to(mask, (1, 4, 5, 9)))
    np.testing.assert_array_equal(out, want_out)
    s = np.einsum("bhqd,bhkd->bhqk", q.astype(np.float64), k.astype(np.float64)) / np.sqrt(8)
    s = np.where(mask, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, np.nan_to_num(p) @ v.astype(np.float64), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    got = ops.attention_backward(g, q, k, v, out, lse, mask=np.broadcast_to(mask, (1, 4, 5, 9)))
    want = ops.attention_backward(g, *copies(q, k, v), out, lse, mask=np.broadcast_to(mask, (1, 4, 5, 9)))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
