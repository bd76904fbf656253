// LSTM over a sequence (PyTorch's gate order i, f, g, o and weight layout):
// the input projection of every step is one GEMM, each step one GEMM for
// h.W_hh^T followed by the vectorised gate/cell update; the backward pass
// runs the cell backward step by step and leaves the weight and input
// gradients to three large GEMMs after the time loop.
#pragma once
#include <cstdint>

#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

template <class T>
struct LstmKernels {
  // From pre-activations G (rows x 4H, gates i f g o): gates <- activated
  // gates, c = f*c_prev + i*g, h = o*tanh(c).
  void (*cell_forward)(T* gates, const T* c_prev, T* c, T* h, std::int64_t rows, std::int64_t H);
  // From dh, dc (in/out: the carried cell gradient, becomes dc_prev), the
  // activated gates, c_prev and c: dG (rows x 4H) pre-activation gradients.
  void (*cell_backward)(const T* dh, T* dc, const T* gates, const T* c_prev, const T* c, T* dG, std::int64_t rows,
                        std::int64_t H);
};

template <class T>
const LstmKernels<T>& lstm_kernels(CpuIsa isa);
void lstm_kernels_scalar(LstmKernels<float>* f32, LstmKernels<double>* f64);
void lstm_kernels_avx2(LstmKernels<float>* f32, LstmKernels<double>* f64);
void lstm_kernels_avx512(LstmKernels<float>* f32, LstmKernels<double>* f64);

struct LstmShape {
  std::int64_t T, B, I, H;
};

// hs (T+1, B, H): hs[0] = h0, hs[t+1] = h_t; cs likewise; gates (T, B, 4H)
// activated. w_ih (4H, I), w_hh (4H, H); bias (4H) = b_ih + b_hh or null.
template <class T>
void lstm_forward(const LstmShape& s, const T* x, const T* w_ih, const T* w_hh, const T* bias, T* hs, T* cs,
                  T* gates);

// grad_y (T, B, H) may be null; dh/dc in: grad_hT/grad_cT (B, H), out:
// grad_h0/grad_c0. Outputs gx (T, B, I), gw_ih (4H, I), gw_hh (4H, H), gb (4H).
template <class T>
void lstm_backward(const LstmShape& s, const T* grad_y, T* dh, T* dc, const T* x, const T* hs, const T* cs,
                   const T* gates, const T* w_ih, const T* w_hh, T* gx, T* gw_ih, T* gw_hh, T* gb);

}  // namespace cpu
}  // namespace pyfastnn
