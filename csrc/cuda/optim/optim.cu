// Fused optimizer steps: a grid-stride loop over float4 packs of every array
// (when all are 16-byte aligned; a scalar loop takes the tail or everything),
// each element read once and each updated array written once.
//
// The arithmetic is the CPU kernel's (cpu/optim/optim_impl.h), operation for
// operation, written with the _rn intrinsics so nvcc cannot fuse a multiply
// and an add that the CPU keeps apart (it is built with -ffp-contract=off):
// the results are bit-identical to the CPU's SIMD levels (sqrt and division
// are correctly rounded on both). Disabled options skip their terms entirely,
// as torch does (g + 0 * p would turn an infinite p into NaN).
#include <cmath>
#include <initializer_list>

#include "cuda/elementwise/launch.cuh"
#include "cuda/optim/optim.h"

namespace pyfastnn {
namespace cuda {

namespace {

__device__ __forceinline__ float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float div(float a, float b) { return __fdiv_rn(a, b); }

// torch.lerp(a, b, w) with a scalar weight: exact at both ends.
__device__ __forceinline__ float lerp(float a, float b, float w, bool small_weight) {
  const float d = sub(b, a);
  return small_weight ? fma_rn(w, d, a) : fma_rn(w - 1.f, d, b);
}

struct SgdConst {
  float wd, mom, keep, neg_lr;
  bool decay, use_buf, nesterov, first;
};

struct AdamConst {
  float neg_step_size, bc2_sqrt, eps, wd, shrink, w1, beta2, c2;
  bool decoupled, coupled, amsgrad, small_w1;
};

struct RmspropConst {
  float wd, alpha, w, eps, mom, neg_lr;
  bool decay, centered, use_buf, small_w;
};

__device__ __forceinline__ void sgd_update(float& p, float g, float* buf, const SgdConst& c) {
  if (c.decay) g = fma_rn(c.wd, p, g);
  if (c.use_buf) {
    const float b = c.first ? g : fma_rn(c.keep, g, mul(*buf, c.mom));
    *buf = b;
    g = c.nesterov ? fma_rn(c.mom, b, g) : b;
  }
  p = fma_rn(c.neg_lr, g, p);
}

__device__ __forceinline__ void adam_update(float& p, float g, float& m, float& v, float* vmax, const AdamConst& c) {
  if (c.decoupled) p = mul(p, c.shrink);
  if (c.coupled) g = fma_rn(c.wd, p, g);
  m = lerp(m, g, c.w1, c.small_w1);
  v = fma_rn(mul(c.c2, g), g, mul(v, c.beta2));
  float v_used = v;
  if (c.amsgrad) {
    // The SIMD max's NaN rule (a > b ? a : b): a NaN in v reaches the maximum.
    v_used = *vmax > v ? *vmax : v;
    *vmax = v_used;
  }
  const float denom = add(div(__fsqrt_rn(v_used), c.bc2_sqrt), c.eps);
  p = add(p, div(mul(c.neg_step_size, m), denom));
}

__device__ __forceinline__ void rmsprop_update(float& p, float g, float& sq, float* ga, float* buf,
                                               const RmspropConst& c) {
  if (c.decay) g = fma_rn(c.wd, p, g);
  sq = fma_rn(mul(c.w, g), g, mul(sq, c.alpha));
  float avg;
  if (c.centered) {
    const float a = lerp(*ga, g, c.w, c.small_w);
    *ga = a;
    avg = __fsqrt_rn(fma_rn(-a, a, sq));
  } else {
    avg = __fsqrt_rn(sq);
  }
  avg = add(avg, c.eps);
  if (c.use_buf) {
    const float b = add(mul(*buf, c.mom), div(g, avg));
    *buf = b;
    p = fma_rn(c.neg_lr, b, p);
  } else {
    p = add(p, div(mul(c.neg_lr, g), avg));
  }
}

// Optional state arrays are read and written only when their option is on;
// a null pointer is never dereferenced (the update functions take a pointer
// to a dummy then).
__global__ void sgd_kernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ buf,
                           std::int64_t n, SgdConst c, bool vec) {
  const std::int64_t tid = global_thread(), stride = grid_threads();
  std::int64_t done = 0;
  if (vec) {
    const std::int64_t packs = n / 4;
    for (std::int64_t i = tid; i < packs; i += stride) {
      Pack<float> p = load_pack(param + 4 * i);
      const Pack<float> g = load_pack(grad + 4 * i);
      Pack<float> b;
      if (c.use_buf && !c.first) b = load_pack(buf + 4 * i);
#pragma unroll
      for (int k = 0; k < 4; ++k) sgd_update(p.v[k], g.v[k], &b.v[k], c);
      store_pack(param + 4 * i, p);
      if (c.use_buf) store_pack(buf + 4 * i, b);
    }
    done = packs * 4;
  }
  for (std::int64_t i = done + tid; i < n; i += stride) {
    float p = param[i];
    float b = c.use_buf && !c.first ? buf[i] : 0.f;
    sgd_update(p, grad[i], &b, c);
    param[i] = p;
    if (c.use_buf) buf[i] = b;
  }
}

__global__ void adam_kernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ exp_avg,
                            float* __restrict__ exp_avg_sq, float* __restrict__ max_exp_avg_sq, std::int64_t n,
                            AdamConst c, bool vec) {
  const std::int64_t tid = global_thread(), stride = grid_threads();
  std::int64_t done = 0;
  if (vec) {
    const std::int64_t packs = n / 4;
    for (std::int64_t i = tid; i < packs; i += stride) {
      Pack<float> p = load_pack(param + 4 * i);
      const Pack<float> g = load_pack(grad + 4 * i);
      Pack<float> m = load_pack(exp_avg + 4 * i);
      Pack<float> v = load_pack(exp_avg_sq + 4 * i);
      Pack<float> vmax;
      if (c.amsgrad) vmax = load_pack(max_exp_avg_sq + 4 * i);
#pragma unroll
      for (int k = 0; k < 4; ++k) adam_update(p.v[k], g.v[k], m.v[k], v.v[k], &vmax.v[k], c);
      store_pack(param + 4 * i, p);
      store_pack(exp_avg + 4 * i, m);
      store_pack(exp_avg_sq + 4 * i, v);
      if (c.amsgrad) store_pack(max_exp_avg_sq + 4 * i, vmax);
    }
    done = packs * 4;
  }
  for (std::int64_t i = done + tid; i < n; i += stride) {
    float p = param[i], m = exp_avg[i], v = exp_avg_sq[i];
    float vmax = c.amsgrad ? max_exp_avg_sq[i] : 0.f;
    adam_update(p, grad[i], m, v, &vmax, c);
    param[i] = p;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    if (c.amsgrad) max_exp_avg_sq[i] = vmax;
  }
}

__global__ void rmsprop_kernel(float* __restrict__ param, const float* __restrict__ grad,
                               float* __restrict__ square_avg, float* __restrict__ grad_avg, float* __restrict__ buf,
                               std::int64_t n, RmspropConst c, bool vec) {
  const std::int64_t tid = global_thread(), stride = grid_threads();
  std::int64_t done = 0;
  if (vec) {
    const std::int64_t packs = n / 4;
    for (std::int64_t i = tid; i < packs; i += stride) {
      Pack<float> p = load_pack(param + 4 * i);
      const Pack<float> g = load_pack(grad + 4 * i);
      Pack<float> sq = load_pack(square_avg + 4 * i);
      Pack<float> ga, b;
      if (c.centered) ga = load_pack(grad_avg + 4 * i);
      if (c.use_buf) b = load_pack(buf + 4 * i);
#pragma unroll
      for (int k = 0; k < 4; ++k) rmsprop_update(p.v[k], g.v[k], sq.v[k], &ga.v[k], &b.v[k], c);
      store_pack(param + 4 * i, p);
      store_pack(square_avg + 4 * i, sq);
      if (c.centered) store_pack(grad_avg + 4 * i, ga);
      if (c.use_buf) store_pack(buf + 4 * i, b);
    }
    done = packs * 4;
  }
  for (std::int64_t i = done + tid; i < n; i += stride) {
    float p = param[i], sq = square_avg[i];
    float ga = c.centered ? grad_avg[i] : 0.f;
    float b = c.use_buf ? buf[i] : 0.f;
    rmsprop_update(p, grad[i], sq, &ga, &b, c);
    param[i] = p;
    square_avg[i] = sq;
    if (c.centered) grad_avg[i] = ga;
    if (c.use_buf) buf[i] = b;
  }
}

constexpr int kThreads = 256;

bool all_aligned(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (p && !aligned16(p)) return false;
  return true;
}

unsigned grid(std::int64_t n, bool vec) { return grid_for(vec ? (n + 3) / 4 : n, kThreads); }

}  // namespace

cudaError_t sgd_step(float* param, const float* grad, float* momentum_buf, std::int64_t n, const SgdHyper& h,
                     cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  SgdConst c;
  c.wd = static_cast<float>(h.weight_decay);
  c.mom = static_cast<float>(h.momentum);
  c.keep = static_cast<float>(1.0 - h.dampening);
  c.neg_lr = static_cast<float>(-h.lr);
  c.decay = h.weight_decay != 0;
  c.use_buf = h.momentum != 0;
  c.nesterov = h.nesterov;
  c.first = h.first_step;
  if (c.use_buf && !momentum_buf) return cudaErrorInvalidValue;
  const bool vec = all_aligned({param, grad, c.use_buf ? momentum_buf : nullptr});
  sgd_kernel<<<grid(n, vec), kThreads, 0, stream>>>(param, grad, momentum_buf, n, c, vec);
  return cudaGetLastError();
}

cudaError_t adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
                      std::int64_t n, const AdamHyper& h, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  // Bias corrections in double from the (double) step count, as on the CPU.
  const double bc1 = 1.0 - std::pow(h.beta1, h.step);
  const double bc2 = 1.0 - std::pow(h.beta2, h.step);
  AdamConst c;
  c.neg_step_size = static_cast<float>(-(h.lr / bc1));
  c.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  c.eps = static_cast<float>(h.eps);
  c.wd = static_cast<float>(h.weight_decay);
  c.shrink = static_cast<float>(1.0 - h.lr * h.weight_decay);
  c.w1 = static_cast<float>(1.0 - h.beta1);
  c.beta2 = static_cast<float>(h.beta2);
  c.c2 = static_cast<float>(1.0 - h.beta2);
  const bool has_wd = h.weight_decay != 0;
  c.decoupled = has_wd && h.decoupled_weight_decay;
  c.coupled = has_wd && !h.decoupled_weight_decay;
  c.amsgrad = h.amsgrad;
  c.small_w1 = std::abs(c.w1) < 0.5f;
  if (c.amsgrad && !max_exp_avg_sq) return cudaErrorInvalidValue;
  const bool vec = all_aligned({param, grad, exp_avg, exp_avg_sq, c.amsgrad ? max_exp_avg_sq : nullptr});
  adam_kernel<<<grid(n, vec), kThreads, 0, stream>>>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, c, vec);
  return cudaGetLastError();
}

cudaError_t rmsprop_step(float* param, const float* grad, float* square_avg, float* grad_avg, float* momentum_buf,
                         std::int64_t n, const RmspropHyper& h, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  RmspropConst c;
  c.wd = static_cast<float>(h.weight_decay);
  c.alpha = static_cast<float>(h.alpha);
  c.w = static_cast<float>(1.0 - h.alpha);
  c.eps = static_cast<float>(h.eps);
  c.mom = static_cast<float>(h.momentum);
  c.neg_lr = static_cast<float>(-h.lr);
  c.decay = h.weight_decay != 0;
  c.centered = h.centered;
  c.use_buf = h.momentum > 0;
  c.small_w = std::abs(c.w) < 0.5f;
  if ((c.centered && !grad_avg) || (c.use_buf && !momentum_buf)) return cudaErrorInvalidValue;
  const bool vec = all_aligned({param, grad, square_avg, c.centered ? grad_avg : nullptr,
                                c.use_buf ? momentum_buf : nullptr});
  rmsprop_kernel<<<grid(n, vec), kThreads, 0, stream>>>(param, grad, square_avg, grad_avg, momentum_buf, n, c, vec);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
