// fp16 / bf16 GEMM on the tensor cores (mma.sync m16n8k16, fp32 accumulation):
// C = act(op(A)·op(B) + bias) rounded once to the input dtype, batched.
#pragma once
#include <cuda_runtime.h>

#include "cuda/gemm/gemm_args.h"

namespace pyfastnn {
namespace cuda {

// a, b, c hold __half (gemm_tc_f16) or __nv_bfloat16 (gemm_tc_bf16); bias is
// float32 or null. All four transpose combinations run natively.
// Requirements (the Python layer copies an operand that misses them):
// a and b 16-byte aligned, lda, ldb, batch_stride_a and batch_stride_b
// multiples of 8 elements. cudaErrorInvalidValue otherwise. c: any alignment.
// Needs sm_80 or newer.
cudaError_t gemm_tc_f16(const GemmArgs& args, cudaStream_t stream);
cudaError_t gemm_tc_bf16(const GemmArgs& args, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
