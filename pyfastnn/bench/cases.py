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


ALL = {"matmul": gemm_cases}
