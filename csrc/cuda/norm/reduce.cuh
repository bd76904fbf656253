// Warp and block reductions for the row-wise kernels (softmax, layer_norm,
// cross_entropy). Every lane and every warp combines the partials in the same
// order, so results do not depend on timing and no float atomics are used.
#pragma once
#include <cuda_runtime.h>

#include <cmath>

namespace pyfastnn {
namespace cuda {

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
  __device__ __forceinline__ double operator()(double a, double b) const { return a + b; }
};

// fmaxf ignores a NaN operand: a NaN in a softmax row reaches the output
// through exp(x - max) instead, as on the CPU.
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <class V, class Op>
__device__ __forceinline__ V warp_reduce(V v, Op op) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) { return warp_reduce(v, SumOp{}); }
__device__ __forceinline__ double warp_sum(double v) { return warp_reduce(v, SumOp{}); }
__device__ __forceinline__ float warp_max(float v) { return warp_reduce(v, MaxOp{}); }

// Reduction over the whole block (blockDim.x a multiple of 32, at most 1024);
// every thread gets the result. `scratch` holds 32 values of V; the leading
// barrier lets one scratch array serve consecutive calls.
template <class V, class Op>
__device__ __forceinline__ V block_reduce(V v, V* scratch, Op op, V identity) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_reduce(lane < warps ? scratch[lane] : identity, op);
}

__device__ __forceinline__ float block_sum(float v, float* scratch) {
  return block_reduce(v, scratch, SumOp{}, 0.f);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  return block_reduce(v, scratch, MaxOp{}, -INFINITY);
}

}  // namespace cuda
}  // namespace pyfastnn
