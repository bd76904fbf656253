// Activations and their gradients: a grid-stride loop over 16-byte packs
// (4 floats or 8 halves per load) with a scalar tail, math in float32. The
// activation is a template argument, so each kernel is a straight-line body.
//
// Per-element rules follow the CPU float kernels (cpu/vec/vec_math.h), NaN
// and inf included: relu(x) = 0 > x ? 0 : x keeps NaN (and -0.0),
// relu'(x) = x > 0 (NaN gives 0), gelu is x * Phi(x) from erfc, sigmoid
// saturates to exactly 0 at -inf, tanh' and sigmoid' take the saved output.
#include "cuda/elementwise/elementwise.h"
#include "cuda/activation/activate.cuh"
#include "cuda/elementwise/launch.cuh"

#include <type_traits>

namespace pyfastnn {
namespace cuda {

namespace {

constexpr int kRelu = 1, kGelu = 2, kSigmoid = 3, kTanh = 4, kGeluTanh = 5, kSilu = 6;

template <int Act>
__device__ __forceinline__ float act_forward(float v) {
  if constexpr (Act == kRelu) return 0.f > v ? 0.f : v;
  if constexpr (Act == kGelu) return 0.5f * v * erfcf(-v * 0.70710678118654752f);
  if constexpr (Act == kSigmoid) return 1.f / (1.f + expf(-v));
  if constexpr (Act == kTanh) return tanhf(v);
  if constexpr (Act == kGeluTanh) return gelu_tanh_forward(v);
  if constexpr (Act == kSilu) return silu_forward(v);
  return v;
}

// g * act'(.) from the saved value s (y for sigmoid/tanh, x for the others).
template <int Act>
__device__ __forceinline__ float act_backward(float g, float s) {
  if constexpr (Act == kRelu) return s > 0.f ? g : 0.f;
  if constexpr (Act == kGelu) {
    const float cdf = 0.5f * erfcf(-s * 0.70710678118654752f);
    const float density = 0.398942280401432678f * expf(-0.5f * s * s);
    return g * (cdf + s * density);
  }
  if constexpr (Act == kSigmoid) return g * s * (1.f - s);
  // (1 - y)(1 + y): exact first factor near |y| = 1, where 1 - y*y cancels.
  if constexpr (Act == kTanh) return g * (1.f - s) * (1.f + s);
  if constexpr (Act == kGeluTanh) return g * gelu_tanh_grad(s);
  if constexpr (Act == kSilu) return g * silu_grad(s);
  return g;
}

template <class T, int Act>
__global__ void activation_forward_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t n, bool vec) {
  const std::int64_t tid = global_thread(), stride = grid_threads();
  std::int64_t done = 0;
  if (vec) {
    constexpr int K = Pack<T>::kSize;
    const std::int64_t packs = n / K;
    for (std::int64_t p = tid; p < packs; p += stride) {
      const Pack<T> a = load_pack(x + p * K);
      Pack<T> r;
#pragma unroll
      for (int k = 0; k < K; ++k) r.v[k] = from_float<T>(act_forward<Act>(to_float(a.v[k])));
      store_pack(y + p * K, r);
    }
    done = packs * K;
  }
  for (std::int64_t i = done + tid; i < n; i += stride) y[i] = from_float<T>(act_forward<Act>(to_float(x[i])));
}

template <class T, int Act>
__global__ void activation_backward_kernel(const T* __restrict__ g, const T* __restrict__ s, T* __restrict__ gx,
                                           std::int64_t n, bool vec) {
  const std::int64_t tid = global_thread(), stride = grid_threads();
  std::int64_t done = 0;
  if (vec) {
    constexpr int K = Pack<T>::kSize;
    const std::int64_t packs = n / K;
    for (std::int64_t p = tid; p < packs; p += stride) {
      const Pack<T> a = load_pack(g + p * K);
      const Pack<T> b = load_pack(s + p * K);
      Pack<T> r;
#pragma unroll
      for (int k = 0; k < K; ++k) r.v[k] = from_float<T>(act_backward<Act>(to_float(a.v[k]), to_float(b.v[k])));
      store_pack(gx + p * K, r);
    }
    done = packs * K;
  }
  for (std::int64_t i = done + tid; i < n; i += stride)
    gx[i] = from_float<T>(act_backward<Act>(to_float(g[i]), to_float(s[i])));
}

// Reference twins: one element per thread, no packs, no grid-stride reuse.
template <class T, int Act>
__global__ void activation_forward_reference_kernel(const T* x, T* y, std::int64_t n) {
  const std::int64_t i = global_thread();
  if (i < n) y[i] = from_float<T>(act_forward<Act>(to_float(x[i])));
}

template <class T, int Act>
__global__ void activation_backward_reference_kernel(const T* g, const T* s, T* gx, std::int64_t n) {
  const std::int64_t i = global_thread();
  if (i < n) gx[i] = from_float<T>(act_backward<Act>(to_float(g[i]), to_float(s[i])));
}

constexpr int kThreads = 256;

// Calls f(T{}, std::integral_constant<int, Act>{}) for the runtime dtype and act.
template <class F>
cudaError_t dispatch(StorageType dtype, int act, F&& f) {
  auto by_act = [&](auto zero) -> cudaError_t {
    switch (act) {
      case kRelu: f(zero, std::integral_constant<int, kRelu>{}); return cudaSuccess;
      case kGelu: f(zero, std::integral_constant<int, kGelu>{}); return cudaSuccess;
      case kSigmoid: f(zero, std::integral_constant<int, kSigmoid>{}); return cudaSuccess;
      case kTanh: f(zero, std::integral_constant<int, kTanh>{}); return cudaSuccess;
      case kGeluTanh: f(zero, std::integral_constant<int, kGeluTanh>{}); return cudaSuccess;
      case kSilu: f(zero, std::integral_constant<int, kSilu>{}); return cudaSuccess;
      default: return cudaErrorInvalidValue;
    }
  };
  switch (dtype) {
    case StorageType::f32: return by_act(float{});
    case StorageType::f16: return by_act(__half{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t activation_forward(const void* x, void* y, std::int64_t n, int act, StorageType dtype,
                               cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const bool vec = aligned16(x) && aligned16(y);
  const cudaError_t err = dispatch(dtype, act, [&](auto zero, auto a) {
    using T = decltype(zero);
    const std::int64_t work = vec ? (n + Pack<T>::kSize - 1) / Pack<T>::kSize : n;
    activation_forward_kernel<T, decltype(a)::value><<<grid_for(work, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), n, vec);
  });
  return err != cudaSuccess ? err : cudaGetLastError();
}

cudaError_t activation_backward(const void* grad_y, const void* saved, void* gx, std::int64_t n, int act,
                                StorageType dtype, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const bool vec = aligned16(grad_y) && aligned16(saved) && aligned16(gx);
  const cudaError_t err = dispatch(dtype, act, [&](auto zero, auto a) {
    using T = decltype(zero);
    const std::int64_t work = vec ? (n + Pack<T>::kSize - 1) / Pack<T>::kSize : n;
    activation_backward_kernel<T, decltype(a)::value><<<grid_for(work, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(grad_y), static_cast<const T*>(saved), static_cast<T*>(gx), n, vec);
  });
  return err != cudaSuccess ? err : cudaGetLastError();
}

cudaError_t activation_forward_reference(const void* x, void* y, std::int64_t n, int act, StorageType dtype,
                                         cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  const cudaError_t err = dispatch(dtype, act, [&](auto zero, auto a) {
    using T = decltype(zero);
    activation_forward_reference_kernel<T, decltype(a)::value><<<blocks, kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), n);
  });
  return err != cudaSuccess ? err : cudaGetLastError();
}

cudaError_t activation_backward_reference(const void* grad_y, const void* saved, void* gx, std::int64_t n, int act,
                                          StorageType dtype, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  const cudaError_t err = dispatch(dtype, act, [&](auto zero, auto a) {
    using T = decltype(zero);
    activation_backward_reference_kernel<T, decltype(a)::value><<<blocks, kThreads, 0, stream>>>(
        static_cast<const T*>(grad_y), static_cast<const T*>(saved), static_cast<T*>(gx), n);
  });
  return err != cudaSuccess ? err : cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
