"""Benchmark cases per op, each with its NumPy and PyTorch twin."""
from __future__ import annotations

import numpy as np

from .. import ops
from .runner import Case

GEMM_SHAPES = [  # (M, N, K): square sizes, then the skinny shapes of small nets
    (2048, 2048, 2048), (1024, 1024, 1024), (512, 512, 512),
    (128, 128, 784), (64, 128, 3136), (256, 4096, 64),
]


def gemm_cases(torch=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    cases = []
    for m, n, k in GEMM_SHAPES:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        impls = {"pyfastnn": lambda a=a, b=b: ops.matmul(a, b), "numpy": lambda a=a, b=b: a @ b}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            impls["torch"] = lambda ta=ta, tb=tb: torch.mm(ta, tb)
        cases.append(Case("matmul", f"{m}x{n}x{k}", flops=2.0 * m * n * k, impls=impls))
    # The fused epilogue against the unfused peers (GEMM, then bias + gelu).
    m, n, k = 1024, 1024, 1024
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    impls = {"pyfastnn": lambda: ops.matmul(a, b, bias, activation="gelu")}
    if torch is not None:
        ta, tb, tbias = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(bias)
        impls["torch"] = lambda: torch.nn.functional.gelu(torch.addmm(tbias, ta, tb))
    cases.append(Case("matmul+bias+gelu", f"{m}x{n}x{k}", flops=2.0 * m * n * k, impls=impls))
    return cases


CONV_SHAPES = [  # (N, C, H, W, O, k, padding)
    (64, 1, 28, 28, 32, 3, 0), (64, 32, 13, 13, 64, 3, 0), (32, 64, 56, 56, 64, 3, 1),
    (16, 128, 28, 28, 128, 3, 1), (32, 64, 28, 28, 128, 1, 0),
]


def conv_cases(torch=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    cases = []
    for n, c, h, w_, o, k, pad in CONV_SHAPES:
        x = rng.standard_normal((n, c, h, w_)).astype(dtype)
        w = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype)
        oh, ow = h + 2 * pad - k + 1, w_ + 2 * pad - k + 1
        gy = rng.standard_normal((n, o, oh, ow)).astype(dtype)
        flops = 2.0 * n * o * c * k * k * oh * ow
        label = f"{n}x{c}x{h}x{w_}>{o},{k}x{k}" + (f",p{pad}" if pad else "")
        fwd = {"pyfastnn": lambda x=x, w=w, b=b, pad=pad: ops.conv2d(x, w, b, padding=pad)}
        both = {"pyfastnn": lambda x=x, w=w, b=b, gy=gy, pad=pad: (
            ops.conv2d(x, w, b, padding=pad), ops.conv2d_backward(gy, x, w, padding=pad))}
        if torch is not None:
            tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
            F = torch.nn.functional
            fwd["torch"] = lambda tx=tx, tw=tw, tb=tb, pad=pad: F.conv2d(tx, tw, tb, padding=pad)

            def torch_both(tx=tx, tw=tw, tb=tb, tgy=tgy, pad=pad):
                xr, wr, br = (t.detach().requires_grad_() for t in (tx, tw, tb))
                F.conv2d(xr, wr, br, padding=pad).backward(tgy)
                return xr.grad, wr.grad, br.grad
            both["torch"] = torch_both
        cases.append(Case("conv2d fwd", label, flops=flops, impls=fwd))
        cases.append(Case("conv2d fwd+bwd", label, flops=3 * flops, impls=both))
    return cases


ALL = {"matmul": gemm_cases, "conv": conv_cases}
