"""GPU cases of the memory-bound ops for ``python -m pyfastnn.bench --device cuda``
(see cuda.py): softmax, layer_norm, relu, max_pool2d, the fused Adam step, and
the LSTM forward pass.

The memory-bound cases count the bytes each kernel must move at least (every
input read once, every output written once), so GB/s compares directly with
the device's bandwidth. Peers are PyTorch's CUDA kernels on the same memory
(shared through DLPack), cuDNN for the LSTM.
"""
from __future__ import annotations

from .. import ops

F32 = 4


def cases(torch=None):
    import cupy as cp

    rs = cp.random.RandomState(0)
    out = []

    def add(op, shape, nbytes, impls, flops=None):
        out.append({"op": op, "shape": shape, "dtype": "fp32", "flops": flops, "bytes": float(nbytes), "impls": impls})

    def peer(x):
        return torch.from_dlpack(x)

    # softmax over rows of 4096: one block per row, the row cached in shared memory
    x = rs.standard_normal((4096, 4096), dtype=cp.float32)
    impls = {"pyfastnn": lambda: ops.softmax(x)}
    if torch is not None:
        tx = peer(x)
        impls["torch"] = lambda: torch.softmax(tx, -1)
    add("softmax", "4096x4096", 2 * x.size * F32, impls)

    # layer_norm over rows of 1024: one warp per row
    x = rs.standard_normal((8192, 1024), dtype=cp.float32)
    w = rs.standard_normal(1024, dtype=cp.float32)
    b = rs.standard_normal(1024, dtype=cp.float32)
    impls = {"pyfastnn": lambda: ops.layer_norm(x, 1024, w, b)}
    if torch is not None:
        tx, tw, tb = peer(x), peer(w), peer(b)
        impls["torch"] = lambda: torch.nn.functional.layer_norm(tx, (1024,), tw, tb)
    add("layer_norm", "8192x1024", (2 * x.size + 2 * 1024 + 2 * 8192) * F32, impls)

    # the fused Adam step: read param, grad, exp_avg, exp_avg_sq; write param, exp_avg, exp_avg_sq
    n = 10_000_000
    p = rs.standard_normal(n, dtype=cp.float32)
    g = rs.standard_normal(n, dtype=cp.float32)
    m = cp.zeros(n, cp.float32)
    v = cp.zeros(n, cp.float32)
    impls = {"pyfastnn": lambda: ops.adam_step(p, g, m, v, step=1, lr=1e-3)}
    if torch is not None:
        tp = torch.nn.Parameter(peer(p).clone())
        tp.grad = peer(g).clone()
        opt = torch.optim.Adam([tp], lr=1e-3, fused=True)
        impls["torch_fused"] = opt.step
    add("adam_step", "10M", 7 * n * F32, impls)

    # relu over 64M elements: float4 grid-stride loop
    x = rs.standard_normal(64 * 2**20, dtype=cp.float32)
    impls = {"pyfastnn": lambda: ops.relu(x)}
    if torch is not None:
        tx = peer(x)
        impls["torch"] = lambda: torch.relu(tx)
    add("relu", "64M", 2 * x.size * F32, impls)

    # max_pool2d 2x2 / 2: x read once, y and the int64 indices written
    x = rs.standard_normal((64, 32, 112, 112), dtype=cp.float32)
    ny = x.size // 4
    impls = {"pyfastnn": lambda: ops.max_pool2d(x, 2)}
    if torch is not None:
        tx = peer(x)
        impls["torch"] = lambda: torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
    add("max_pool2d k2", "64x32x112x112", x.size * F32 + ny * (F32 + 8), impls)

    # LSTM forward: one GEMM for every step's input projection, then per step a
    # GEMM (h . W_hh^T) and the fused cell kernel; cuDNN as the peer
    T, B, I, H = 100, 64, 256, 256
    x = rs.standard_normal((T, B, I), dtype=cp.float32)
    h0 = cp.zeros((B, H), cp.float32)
    c0 = cp.zeros((B, H), cp.float32)
    scale = 1.0 / H ** 0.5
    w_ih = (scale * rs.standard_normal((4 * H, I), dtype=cp.float32)).astype(cp.float32)
    w_hh = (scale * rs.standard_normal((4 * H, H), dtype=cp.float32)).astype(cp.float32)
    b_ih = (scale * rs.standard_normal(4 * H, dtype=cp.float32)).astype(cp.float32)
    b_hh = (scale * rs.standard_normal(4 * H, dtype=cp.float32)).astype(cp.float32)
    impls = {"pyfastnn": lambda: ops.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)}
    if torch is not None:
        lstm = torch.nn.LSTM(I, H).cuda()
        with torch.no_grad():
            for name, a in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih),
                            ("bias_hh_l0", b_hh)):
                getattr(lstm, name).copy_(peer(a))
        tx, th0, tc0 = peer(x), peer(h0)[None], peer(c0)[None]

        def cudnn():
            with torch.no_grad():
                return lstm(tx, (th0, tc0))
        impls["cudnn"] = cudnn
    flops = 2.0 * T * B * 4 * H * (I + H)
    out.append({"op": "lstm fwd", "shape": f"T{T} B{B} I{I} H{H}", "dtype": "fp32", "flops": flops, "bytes": None,
                "impls": impls})
    return out
