// Pieces shared by the GEMM kernels: the fused epilogue's activation, the
// order in which blocks walk the output tiles, and the host-side checks every
// launcher runs before it touches the GPU.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/activation/activate.cuh"
#include "cuda/gemm/gemm_args.h"

namespace pyfastnn {
namespace cuda {
namespace gemm_detail {

using pyfastnn::cuda::activate;   // the epilogue activations (activation/activate.cuh)

// Blocks that run at the same time share rows of A and columns of B in L2:
// consecutive block ids walk down a group of kGroup tile rows before moving to
// the next tile column, instead of sweeping a whole tile row first.
__device__ __forceinline__ void grouped_tile(int block_id, int tiles_m, int tiles_n, int* tile_m, int* tile_n) {
  constexpr int kGroup = 8;
  const int per_group = kGroup * tiles_n;
  const int group = block_id / per_group;
  const int first_m = group * kGroup;
  const int rows_in_group = min(tiles_m - first_m, kGroup);
  const int in_group = block_id - group * per_group;
  *tile_m = first_m + in_group % rows_in_group;
  *tile_n = in_group / rows_in_group;
}

// Host side: cudaErrorInvalidValue for arguments no kernel may see (the
// Python layer checks everything first; this keeps a direct caller of the
// binding from reading out of bounds).
inline cudaError_t validate(const GemmArgs& p) {
  if (p.m < 0 || p.n < 0 || p.k < 0 || p.batch < 0) return cudaErrorInvalidValue;
  if (p.m > kGemmMaxDim || p.n > kGemmMaxDim || p.k > kGemmMaxDim || p.batch > kGemmMaxDim)
    return cudaErrorInvalidValue;
  if (p.lda < 0 || p.ldb < 0 || p.ldc < p.n || p.batch_stride_a < 0 || p.batch_stride_b < 0 ||
      p.batch_stride_c < 0)
    return cudaErrorInvalidValue;
  if (p.act < 0 || p.act > 4) return cudaErrorInvalidValue;
  const bool writes = p.m != 0 && p.n != 0 && p.batch != 0;
  if (writes && p.c == nullptr) return cudaErrorInvalidValue;
  if (writes && p.k != 0 && (p.a == nullptr || p.b == nullptr)) return cudaErrorInvalidValue;
  return cudaSuccess;
}

inline bool aligned(const void* p, std::uintptr_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// Output tiles of the grid; 0 when there is nothing to launch.
inline std::int64_t tile_count(const GemmArgs& p, int tile_m, int tile_n) {
  return ((p.m + tile_m - 1) / tile_m) * ((p.n + tile_n - 1) / tile_n);
}

// Tiles on x; the batch on y and z (65535 each), so no block loops over
// batches — a loop would keep its state in registers the SGEMM cannot spare.
inline dim3 grid_for(const GemmArgs& p, std::int64_t tiles) {
  const std::int64_t batch_y = p.batch < 65535 ? p.batch : 65535;
  const std::int64_t batch_z = (p.batch + batch_y - 1) / batch_y;
  return dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(batch_y), static_cast<unsigned>(batch_z));
}

// The batch a block works on; >= p.batch for the spare blocks of the last z slice.
__device__ __forceinline__ std::int64_t block_batch() {
  return blockIdx.y + static_cast<std::int64_t>(blockIdx.z) * gridDim.y;
}

}  // namespace gemm_detail
}  // namespace cuda
}  // namespace pyfastnn
