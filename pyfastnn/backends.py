"""``pyfastnn.backends``: torch.backends' switches (cuda.matmul.allow_tf32, cudnn.benchmark, ...). pyfastnn
uses neither cuBLAS nor cuDNN, so they are settings scripts may write and read, with no effect on its own
kernels (whose fp32 GEMM never uses TF32)."""
from __future__ import annotations

from . import _backend

__all__ = ["cuda", "cudnn", "mps", "mkldnn", "openmp"]


class _Flags:
    def __init__(self, **flags):
        self.__dict__.update(flags)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class _CudaBackend(_Flags):
    def is_built(self):
        return _backend.cuda_built

    def flash_sdp_enabled(self):
        return True


cuda = _CudaBackend(matmul=_Flags(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                                  allow_bf16_reduced_precision_reduction=True))
cudnn = _Flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
               is_available=lambda: False, version=lambda: None)
mps = _Flags(is_available=lambda: False, is_built=lambda: False)
mkldnn = _Flags(enabled=True, is_available=lambda: False)
openmp = _Flags(is_available=lambda: False)
