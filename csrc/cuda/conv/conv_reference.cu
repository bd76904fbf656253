// Reference convolution kernels: one thread per output element (grid-stride
// over the flat index), a float32 sum straight from the definition, no
// shared memory, no tiling. Slow by design; tests hold the fast kernels to
// them.
#include "cuda/conv/conv_common.cuh"

namespace pyfastnn {
namespace cuda {

namespace {

using conv_detail::ceil_div;

constexpr int kThreads = 256;

unsigned grid_for(std::int64_t total) {
  const std::int64_t want = ceil_div(total, kThreads);
  return static_cast<unsigned>(want < 65535 ? want : 65535);
}

// y[n,k,p,q] = bias[k] + sum over (c, r, s) of the group's inputs.
__global__ void forward_reference_kernel(const float* x, const float* w, const float* bias, float* y, ConvShape s,
                                         std::int64_t total) {
  const std::int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += step) {
    const std::int64_t q = idx % s.Q;
    const std::int64_t p = (idx / s.Q) % s.P;
    const std::int64_t k = (idx / (s.Q * s.P)) % s.K;
    const std::int64_t n = idx / (s.Q * s.P * s.K);
    const std::int64_t g = k / Kg;
    float acc = 0.f;
    for (std::int64_t c = 0; c < Cg; ++c)
      for (std::int64_t r = 0; r < s.R; ++r) {
        const std::int64_t ih = p * s.SH - s.PH + r * s.DH;
        if (ih < 0 || ih >= s.H) continue;
        for (std::int64_t t = 0; t < s.S; ++t) {
          const std::int64_t iw = q * s.SW - s.PW + t * s.DW;
          if (iw < 0 || iw >= s.W) continue;
          acc = fmaf(x[((n * s.C + g * Cg + c) * s.H + ih) * s.W + iw], w[((k * Cg + c) * s.R + r) * s.S + t], acc);
        }
      }
    y[idx] = bias != nullptr ? acc + bias[k] : acc;
  }
}

// grad_x[n,c,h,w] = sum over the group's k and the taps (r, s) whose output
// position p = (h + ph - r*dh) / sh (and q alike) is whole and inside.
__global__ void grad_x_reference_kernel(const float* gy, const float* w, float* gx, ConvShape s,
                                        std::int64_t total) {
  const std::int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += step) {
    const std::int64_t iw = idx % s.W;
    const std::int64_t ih = (idx / s.W) % s.H;
    const std::int64_t c = (idx / (s.W * s.H)) % s.C;
    const std::int64_t n = idx / (s.W * s.H * s.C);
    const std::int64_t g = c / Cg;
    const std::int64_t cl = c - g * Cg;
    float acc = 0.f;
    for (std::int64_t k = g * Kg; k < (g + 1) * Kg; ++k)
      for (std::int64_t r = 0; r < s.R; ++r) {
        const std::int64_t hp = ih + s.PH - r * s.DH;
        if (hp < 0 || hp % s.SH != 0 || hp / s.SH >= s.P) continue;
        for (std::int64_t t = 0; t < s.S; ++t) {
          const std::int64_t wp = iw + s.PW - t * s.DW;
          if (wp < 0 || wp % s.SW != 0 || wp / s.SW >= s.Q) continue;
          acc = fmaf(gy[((n * s.K + k) * s.P + hp / s.SH) * s.Q + wp / s.SW], w[((k * Cg + cl) * s.R + r) * s.S + t],
                     acc);
        }
      }
    gx[idx] = acc;
  }
}

// grad_w[k,c,r,s] = sum over (n, p, q) of grad_y[n,k,p,q] * x[n, g*Cg+c, ...].
__global__ void grad_w_reference_kernel(const float* gy, const float* x, float* gw, ConvShape s,
                                        std::int64_t total) {
  const std::int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += step) {
    const std::int64_t t = idx % s.S;
    const std::int64_t r = (idx / s.S) % s.R;
    const std::int64_t cl = (idx / (s.S * s.R)) % Cg;
    const std::int64_t k = idx / (s.S * s.R * Cg);
    const std::int64_t c = (k / Kg) * Cg + cl;
    float acc = 0.f;
    for (std::int64_t n = 0; n < s.N; ++n)
      for (std::int64_t p = 0; p < s.P; ++p) {
        const std::int64_t ih = p * s.SH - s.PH + r * s.DH;
        if (ih < 0 || ih >= s.H) continue;
        for (std::int64_t q = 0; q < s.Q; ++q) {
          const std::int64_t iw = q * s.SW - s.PW + t * s.DW;
          if (iw < 0 || iw >= s.W) continue;
          acc = fmaf(gy[((n * s.K + k) * s.P + p) * s.Q + q], x[((n * s.C + c) * s.H + ih) * s.W + iw], acc);
        }
      }
    gw[idx] = acc;
  }
}

}  // namespace

cudaError_t conv2d_forward_reference_f32(const ConvShape& s, const float* x, const float* w, const float* bias,
                                         float* y, cudaStream_t stream) {
  const cudaError_t err = conv2d_validate(s);
  if (err != cudaSuccess) return err;
  const std::int64_t total = s.N * s.K * s.P * s.Q;
  if (total == 0) return cudaSuccess;
  forward_reference_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, w, bias, y, s, total);
  return cudaGetLastError();
}

cudaError_t conv2d_backward_data_reference_f32(const ConvShape& s, const float* grad_y, const float* w,
                                               float* grad_x, cudaStream_t stream) {
  const cudaError_t err = conv2d_validate(s);
  if (err != cudaSuccess) return err;
  const std::int64_t total = s.N * s.C * s.H * s.W;
  if (total == 0) return cudaSuccess;
  grad_x_reference_kernel<<<grid_for(total), kThreads, 0, stream>>>(grad_y, w, grad_x, s, total);
  return cudaGetLastError();
}

cudaError_t conv2d_backward_filter_reference_f32(const ConvShape& s, const float* grad_y, const float* x,
                                                 float* grad_w, cudaStream_t stream) {
  const cudaError_t err = conv2d_validate(s);
  if (err != cudaSuccess) return err;
  const std::int64_t total = s.K * (s.C / s.groups) * s.R * s.S;
  if (total == 0) return cudaSuccess;
  grad_w_reference_kernel<<<grid_for(total), kThreads, 0, stream>>>(grad_y, x, grad_w, s, total);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
