"""GPU conv2d cases for ``python -m pyfastnn.bench --device cuda`` (see cuda.py).

The conv shapes of the CPU benchmarks (a small CNN's layers), float32, forward
alone and forward + backward (grad x, grad w, grad b), against cuDNN through
torch.nn.functional.conv2d on the same CuPy memory when PyTorch is installed.
cuDNN runs without TF32 (torch.backends.cudnn.allow_tf32 = False), so both
sides do float32 FFMA arithmetic; cudnn.benchmark is on, so cuDNN times its
best algorithm for each shape.

FLOPs: 2*N*K*P*Q*C/groups*R*S for the forward pass, three times that for
forward + backward (the two gradients are GEMMs of the same size; the bias
gradient is not counted).

PYFASTNN_CONV_BENCH_TILES=1 adds, to each forward case, the implicit GEMM at
every tile shape ("pyfastnn_<tile>", see pyfastnn.cuda_ops.conv.TILES), so a
GPU run shows which one the automatic choice should make.
"""
from __future__ import annotations

import os

from .. import ops
from ..cuda_ops import conv

# (N, C, H, W, K, kernel, padding)
SHAPES = [
    (64, 1, 28, 28, 32, 3, 0),
    (64, 32, 13, 13, 64, 3, 0),
    (32, 64, 56, 56, 64, 3, 1),
    (16, 128, 28, 28, 128, 3, 1),
    (32, 64, 28, 28, 128, 1, 0),
]


def _label(n, c, h, w, k, r, pad):
    return f"{n}x{c}x{h}x{w}->{k} {r}x{r}" + (f" pad {pad}" if pad else "")


def cases(torch=None):
    import cupy as cp

    if torch is not None:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        F = torch.nn.functional

    rs = cp.random.RandomState(0)
    out = []
    for n, c, h, w_, k, r, pad in SHAPES:
        x = rs.standard_normal((n, c, h, w_), dtype=cp.float32)
        w = rs.standard_normal((k, c, r, r), dtype=cp.float32) * cp.float32((c * r * r) ** -0.5)
        b = rs.standard_normal(k, dtype=cp.float32)
        p = h + 2 * pad - r + 1
        q = w_ + 2 * pad - r + 1
        gy = rs.standard_normal((n, k, p, q), dtype=cp.float32)
        flops = 2.0 * n * k * p * q * c * r * r
        label = _label(n, c, h, w_, k, r, pad)

        impls = {"pyfastnn": lambda x=x, w=w, b=b, pad=pad: ops.conv2d(x, w, b, padding=pad)}
        if os.environ.get("PYFASTNN_CONV_BENCH_TILES") == "1":
            for tile in conv.TILES:
                if tile != "auto":
                    impls[f"pyfastnn_{tile}"] = (lambda x=x, w=w, b=b, pad=pad, tile=tile:
                                                 conv.conv2d(x, w, b, padding=pad, _tile=tile))
        if torch is not None:
            tx, tw, tb = (torch.from_dlpack(a) for a in (x, w, b))
            impls["cudnn"] = lambda tx=tx, tw=tw, tb=tb, pad=pad: F.conv2d(tx, tw, tb, padding=pad)
        out.append({"op": "conv2d", "shape": label, "dtype": "fp32", "flops": flops, "bytes": None,
                    "impls": impls})

        def ours(x=x, w=w, b=b, gy=gy, pad=pad):
            ops.conv2d(x, w, b, padding=pad)
            ops.conv2d_backward(gy, x, w, padding=pad)

        impls = {"pyfastnn": ours}
        if torch is not None:
            txg, twg, tbg = (t.detach().clone().requires_grad_() for t in (tx, tw, tb))
            tgy = torch.from_dlpack(gy)

            def theirs(txg=txg, twg=twg, tbg=tbg, tgy=tgy, pad=pad):
                y = F.conv2d(txg, twg, tbg, padding=pad)
                torch.autograd.grad(y, (txg, twg, tbg), tgy)

            impls["cudnn"] = theirs
        out.append({"op": "conv2d fwd+bwd", "shape": label, "dtype": "fp32", "flops": 3.0 * flops, "bytes": None,
                    "impls": impls})
    return out
