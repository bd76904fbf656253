// Launch helpers shared by the memory-bound kernels (elementwise, rowwise,
// optimizer, pooling, LSTM cell): grid sizes for grid-stride loops, 16-byte
// packs for vectorized loads, float <-> storage-type conversions.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace pyfastnn {
namespace cuda {

// SM count of the current device, cached per device (a driver query per
// launch would cost more than many of these kernels).
inline int sm_count() {
  static std::atomic<int> cache[64];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    cudaGetLastError();  // not the op's error: fall back to a typical size
    return 132;
  }
  int n = cache[dev].load(std::memory_order_relaxed);
  if (n == 0) {
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) {
      cudaGetLastError();
      n = 132;
    }
    cache[dev].store(n, std::memory_order_relaxed);
  }
  return n;
}

// Blocks for a grid-stride loop over `work` items, `threads` per block: no
// more than fill the device twice over (each thread then loops).
inline unsigned grid_for(std::int64_t work, int threads) {
  const std::int64_t want = (work + threads - 1) / threads;
  const std::int64_t cap = static_cast<std::int64_t>(sm_count()) * (2048 / threads) * 2;
  const std::int64_t blocks = want < cap ? want : cap;
  return static_cast<unsigned>(blocks > 0 ? blocks : 1);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

// 16 bytes of T, loaded and stored as one 128-bit access.
template <class T>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / static_cast<int>(sizeof(T));
  T v[kSize];
};

template <class T>
__device__ __forceinline__ Pack<T> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T>*>(p);
}
template <class T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T>& v) {
  *reinterpret_cast<Pack<T>*>(p) = v;
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

// n / d for 32-bit n < 2^31 with a multiply-high and a shift instead of a
// division (Granlund-Montgomery, rounding the reciprocal up): the index
// arithmetic of the pooling kernels would otherwise cost more than their
// memory traffic. The host computes the constants once per launch.
struct FastDivider {
  std::uint32_t divisor = 1, magic = 1, shift = 0;
  FastDivider() = default;
  explicit FastDivider(std::uint32_t d) : divisor(d) {
    while (shift < 31 && (std::uint64_t{1} << shift) < d) ++shift;
    magic = static_cast<std::uint32_t>(((std::uint64_t{1} << 32) * ((std::uint64_t{1} << shift) - d)) / d + 1);
  }
  __host__ __device__ __forceinline__ std::uint32_t div(std::uint32_t n) const {
#ifdef __CUDA_ARCH__
    const std::uint32_t high = __umulhi(n, magic);
#else
    const std::uint32_t high = static_cast<std::uint32_t>((static_cast<std::uint64_t>(n) * magic) >> 32);
#endif
    return (high + n) >> shift;
  }
};

__device__ __forceinline__ std::int64_t global_thread() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t grid_threads() {
  return static_cast<std::int64_t>(gridDim.x) * blockDim.x;
}

}  // namespace cuda
}  // namespace pyfastnn
