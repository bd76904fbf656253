// Dropout forward and backward. The keep decision is the CPU kernel's
// counter-based hash of (seed, element index), so a seed gives the same mask
// on both devices, independent of the launch shape. Grid-stride over 16-byte
// packs of x (4 floats / 8 halves) with the matching 4 / 8 mask bytes stored
// as one word; a scalar loop takes the tail and unaligned arrays.
#include "cuda/elementwise/elementwise.h"
#include "cuda/elementwise/launch.cuh"

namespace pyfastnn {
namespace cuda {

namespace {

// splitmix64, as in ops/activation.cpp.
__device__ __forceinline__ std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__device__ __forceinline__ bool keep_element(std::uint64_t seed, std::int64_t i, std::uint64_t threshold) {
  return (mix(seed ^ mix(static_cast<std::uint64_t>(i))) >> 32) >= threshold;
}

// K mask bytes written or read as one aligned word.
template <int K>
struct alignas(K) MaskPack {
  std::uint8_t b[K];
};

template <class T>
__global__ void dropout_forward_kernel(const T* __restrict__ x, T* __restrict__ y, std::uint8_t* __restrict__ mask,
                                       std::int64_t n, std::uint64_t seed, std::uint64_t threshold, float scale,
                                       bool vec) {
  const std::int64_t tid = global_thread(), stride = grid_threads();
  std::int64_t done = 0;
  if (vec) {
    constexpr int K = Pack<T>::kSize;
    const std::int64_t packs = n / K;
    for (std::int64_t p = tid; p < packs; p += stride) {
      const Pack<T> a = load_pack(x + p * K);
      Pack<T> r;
      MaskPack<K> m;
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const bool keep = keep_element(seed, p * K + k, threshold);
        m.b[k] = keep;
        r.v[k] = from_float<T>(keep ? to_float(a.v[k]) * scale : 0.f);
      }
      store_pack(y + p * K, r);
      *reinterpret_cast<MaskPack<K>*>(mask + p * K) = m;
    }
    done = packs * K;
  }
  for (std::int64_t i = done + tid; i < n; i += stride) {
    const bool keep = keep_element(seed, i, threshold);
    mask[i] = keep;
    y[i] = from_float<T>(keep ? to_float(x[i]) * scale : 0.f);
  }
}

template <class T>
__global__ void dropout_backward_kernel(const T* __restrict__ g, const std::uint8_t* __restrict__ mask,
                                        T* __restrict__ gx, std::int64_t n, float scale, bool vec) {
  const std::int64_t tid = global_thread(), stride = grid_threads();
  std::int64_t done = 0;
  if (vec) {
    constexpr int K = Pack<T>::kSize;
    const std::int64_t packs = n / K;
    for (std::int64_t p = tid; p < packs; p += stride) {
      const Pack<T> a = load_pack(g + p * K);
      const MaskPack<K> m = *reinterpret_cast<const MaskPack<K>*>(mask + p * K);
      Pack<T> r;
#pragma unroll
      for (int k = 0; k < K; ++k) r.v[k] = from_float<T>(m.b[k] ? to_float(a.v[k]) * scale : 0.f);
      store_pack(gx + p * K, r);
    }
    done = packs * K;
  }
  for (std::int64_t i = done + tid; i < n; i += stride) gx[i] = from_float<T>(mask[i] ? to_float(g[i]) * scale : 0.f);
}

constexpr int kThreads = 256;

template <class T>
bool mask_aligned(const std::uint8_t* mask) {
  return (reinterpret_cast<std::uintptr_t>(mask) % Pack<T>::kSize) == 0;
}

}  // namespace

cudaError_t dropout_forward(const void* x, void* y, std::uint8_t* mask, std::int64_t n, std::uint64_t seed,
                            std::uint64_t threshold, float scale, StorageType dtype, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  auto launch = [&](auto zero) {
    using T = decltype(zero);
    const bool vec = aligned16(x) && aligned16(y) && mask_aligned<T>(mask);
    const std::int64_t work = vec ? (n + Pack<T>::kSize - 1) / Pack<T>::kSize : n;
    dropout_forward_kernel<T><<<grid_for(work, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), mask, n, seed, threshold, scale, vec);
  };
  switch (dtype) {
    case StorageType::f32: launch(float{}); break;
    case StorageType::f16: launch(__half{}); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t dropout_backward(const void* grad_y, const std::uint8_t* mask, void* gx, std::int64_t n, float scale,
                             StorageType dtype, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  auto launch = [&](auto zero) {
    using T = decltype(zero);
    const bool vec = aligned16(grad_y) && aligned16(gx) && mask_aligned<T>(mask);
    const std::int64_t work = vec ? (n + Pack<T>::kSize - 1) / Pack<T>::kSize : n;
    dropout_backward_kernel<T><<<grid_for(work, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(grad_y), mask, static_cast<T*>(gx), n, scale, vec);
  };
  switch (dtype) {
    case StorageType::f32: launch(float{}); break;
    case StorageType::f16: launch(__half{}); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
