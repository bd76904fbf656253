// Plain reference GEMMs: one thread per output element, a straight k loop in
// float32. Slow on purpose — they exist so tests and the GPU session can check
// the tiled kernels against something obviously right on the same device.
#pragma once
#include <cuda_runtime.h>

#include "cuda/gemm/gemm_args.h"

namespace pyfastnn {
namespace cuda {

cudaError_t gemm_reference_f32(const GemmArgs& args, cudaStream_t stream);
cudaError_t gemm_reference_f16(const GemmArgs& args, cudaStream_t stream);   // a, b, c __half
cudaError_t gemm_reference_bf16(const GemmArgs& args, cudaStream_t stream);  // a, b, c __nv_bfloat16

}  // namespace cuda
}  // namespace pyfastnn
