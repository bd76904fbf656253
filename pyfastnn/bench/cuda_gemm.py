"""GPU GEMM cases for ``python -m pyfastnn.bench --device cuda`` (see cuda.py).

fp32: pyfastnn's SGEMM against cuBLAS through cupy.matmul (CUBLAS_COMPUTE_32F:
the runner keeps TF32 off). fp16: the tensor-core kernel against cupy.matmul
on 2-D float16 arrays (cublasGemmEx, fp16 in/out, fp32 compute — the same
arithmetic). bf16: against torch.matmul on the same bf16 bits, when PyTorch is
installed (CuPy has no bfloat16).
"""
from __future__ import annotations

from .. import ops
from ..cuda_ops import gemm

FP32_SHAPES = [(4096, 4096, 4096), (1024, 1024, 1024), (2048, 2048, 512)]  # (M, N, K)
HALF_SIZE = 4096


def _label(m, n, k, layout=""):
    return f"{m}x{n}x{k}" + (f" {layout}" if layout else "")


def cases(torch=None):
    import cupy as cp

    rs = cp.random.RandomState(0)
    out = []
    for m, n, k in FP32_SHAPES:
        a = rs.standard_normal((m, k), dtype=cp.float32)
        b = rs.standard_normal((k, n), dtype=cp.float32)
        # pyfastnn_k16x1: the SGEMM's other configuration, timed so a GPU run
        # shows which one should be the default (its column: its time / default's).
        out.append({"op": "matmul", "shape": _label(m, n, k), "dtype": "fp32", "flops": 2.0 * m * n * k,
                    "bytes": None,
                    "impls": {"pyfastnn": lambda a=a, b=b: ops.matmul(a, b),
                              "cublas": lambda a=a, b=b: cp.matmul(a, b),
                              "pyfastnn_k16x1": lambda a=a, b=b: gemm.matmul(a, b, _variant="k16x1")}})

    # The fused epilogue against cuBLAS plus a separate bias + gelu (PyTorch's, fp32, no TF32).
    m = n = k = 2048
    a = rs.standard_normal((m, k), dtype=cp.float32)
    b = rs.standard_normal((k, n), dtype=cp.float32)
    bias = rs.standard_normal(n, dtype=cp.float32)
    impls = {"pyfastnn": lambda: ops.matmul(a, b, bias, activation="gelu")}
    if torch is not None:
        ta, tb, tbias = (torch.from_dlpack(x) for x in (a, b, bias))
        impls["torch"] = lambda: torch.nn.functional.gelu(torch.addmm(tbias, ta, tb))
    out.append({"op": "matmul+bias+gelu", "shape": _label(m, n, k), "dtype": "fp32", "flops": 2.0 * m * n * k,
                "bytes": None, "impls": impls})

    s = HALF_SIZE
    a16 = rs.standard_normal((s, s), dtype=cp.float32).astype(cp.float16)
    b16 = rs.standard_normal((s, s), dtype=cp.float32).astype(cp.float16)
    out.append({"op": "matmul", "shape": _label(s, s, s), "dtype": "fp16", "flops": 2.0 * s ** 3, "bytes": None,
                "impls": {"pyfastnn": lambda: ops.matmul(a16, b16), "cublas": lambda: cp.matmul(a16, b16)}})
    # B given transposed (the nn.Linear layout): the kernel reads it in place.
    b16_t = cp.ascontiguousarray(b16.T)
    out.append({"op": "matmul", "shape": _label(s, s, s, "a@b.T"), "dtype": "fp16", "flops": 2.0 * s ** 3,
                "bytes": None,
                "impls": {"pyfastnn": lambda: ops.matmul(a16, b16_t, trans_b=True),
                          "cublas": lambda: cp.matmul(a16, b16_t.T)}})

    abf = gemm.bf16_from_float32(rs.standard_normal((s, s), dtype=cp.float32))
    bbf = gemm.bf16_from_float32(rs.standard_normal((s, s), dtype=cp.float32))
    impls = {"pyfastnn": lambda: gemm.matmul_bf16(abf, bbf)}
    if torch is not None:
        # The same bits, seen by PyTorch as bfloat16 (DLPack carries them as uint16).
        ta = torch.from_dlpack(abf).view(torch.bfloat16)
        tb = torch.from_dlpack(bbf).view(torch.bfloat16)
        impls["torch_cublas"] = lambda: torch.matmul(ta, tb)
    out.append({"op": "matmul", "shape": _label(s, s, s), "dtype": "bf16", "flops": 2.0 * s ** 3, "bytes": None,
                "impls": impls})
    return out
