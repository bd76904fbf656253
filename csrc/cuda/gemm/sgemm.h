// float32 GEMM on the CUDA cores (FFMA): C = act(op(A)·op(B) + bias), batched.
#pragma once
#include <cuda_runtime.h>

#include "cuda/gemm/gemm_args.h"

namespace pyfastnn {
namespace cuda {

// a, b, c, bias are float32. Any row strides and alignments: 16-byte vector
// loads where the operand allows them, guarded scalar loads elsewhere.
// Returns the launch status (cudaErrorInvalidValue for arguments out of range).
cudaError_t sgemm_f32(const GemmArgs& args, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
