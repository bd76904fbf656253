"""CUDA attention benchmark cases: pyfastnn's flash attention (csrc/cuda/attention/)
against PyTorch's ``scaled_dot_product_attention`` on CUDA tensors holding the
same values. Timed by the CUDA runner (pyfastnn/bench/cuda.py).

FLOPs: forward 4*B*H*Nq*Nk*D (two GEMMs), halved for causal; backward 2.5x
the forward (five GEMMs against two), so forward+backward is 3.5x.
bf16 inputs are uint16 CuPy arrays of bfloat16 bits (CuPy has no bfloat16);
the torch side gets bf16 tensors with the same values.
"""
from __future__ import annotations

from .. import ops
from ..cuda_ops import attention as cuda_attention

SHAPES = [(4, 16, 4096, 4096, 64)]  # (B, H, Nq, Nk, D): the target shape
EXTRA_FORWARD = [(2, 16, 4096, 4096, 128, "bf16")]  # the other tensor-core head size, for information


def _forward_flops(B, H, Nq, Nk, D, causal):
    flops = 4.0 * B * H * Nq * Nk * D
    return flops / 2 if causal else flops


def _inputs(cupy, shape, dtype, seed):
    x = cupy.random.default_rng(seed).standard_normal(shape, dtype=cupy.float32)
    return cuda_attention.to_bf16_bits(x) if dtype == "bf16" else x


def _torch_tensor(torch, cupy_array, dtype):
    if dtype == "bf16":  # a copy with the same values (bit patterns are exact bf16)
        return torch.from_dlpack(cuda_attention.from_bf16_bits(cupy_array)).to(torch.bfloat16)
    return torch.from_dlpack(cupy_array)  # zero-copy


def _pyfastnn_calls(dtype):
    if dtype == "bf16":
        return cuda_attention.attention_bf16, cuda_attention.attention_backward_bf16
    return ops.attention, ops.attention_backward


def _case(op, shape, flops, dtype, impls):
    B, H, Nq, Nk, D = shape
    label = f"B{B},H{H},Nq{Nq},Nk{Nk},D{D}" if Nq != Nk else f"B{B},H{H},N{Nq},D{D}"
    return {"op": op, "shape": label, "flops": flops, "bytes": None, "dtype": dtype, "impls": impls}


def cases(torch=None):
    import cupy

    sdpa = torch.nn.functional.scaled_dot_product_attention if torch is not None else None
    out = []
    plan = [(shape, dtype, True) for shape in SHAPES for dtype in ("fp32", "bf16")]
    plan += [(s[:5], s[5], False) for s in EXTRA_FORWARD]
    for shape, dtype, with_backward in plan:
        B, H, Nq, Nk, D = shape
        fwd, bwd = _pyfastnn_calls(dtype)
        q, k, v = (_inputs(cupy, (B, H, n, D), dtype, seed) for seed, n in ((1, Nq), (2, Nk), (3, Nk)))
        g = _inputs(cupy, (B, H, Nq, D), dtype, 4)
        tq, tk, tv, tg = ((_torch_tensor(torch, x, dtype) for x in (q, k, v, g)) if torch is not None
                          else (None,) * 4)
        for causal in (False, True):
            flops = _forward_flops(B, H, Nq, Nk, D, causal)
            name = "attention" + ("_causal" if causal else "")
            impls = {"pyfastnn": lambda q=q, k=k, v=v, c=causal, fwd=fwd: fwd(q, k, v, causal=c)}
            if torch is not None:
                impls["torch_sdpa"] = lambda c=causal, tq=tq, tk=tk, tv=tv: sdpa(tq, tk, tv, is_causal=c)
            out.append(_case(name, shape, flops, dtype, impls))
            if not with_backward:
                continue

            def pyfastnn_fwd_bwd(q=q, k=k, v=v, g=g, c=causal, fwd=fwd, bwd=bwd):
                o, lse = fwd(q, k, v, causal=c)
                return bwd(g, q, k, v, o, lse, causal=c)

            impls = {"pyfastnn": pyfastnn_fwd_bwd}
            if torch is not None:
                leaves = [t.detach().requires_grad_() for t in (tq, tk, tv)]

                def torch_fwd_bwd(leaves=leaves, tg=tg, c=causal):
                    for t in leaves:
                        t.grad = None
                    sdpa(*leaves, is_causal=c).backward(tg)

                impls["torch_sdpa"] = torch_fwd_bwd
            out.append(_case(name + "+backward", shape, 3.5 * flops, dtype, impls))
    return out
