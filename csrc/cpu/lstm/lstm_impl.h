// The LSTM cell update and its backward pass, vectorised over the hidden
// units; included once per ISA translation unit.
#pragma once
#include <cmath>

#include "cpu/lstm/lstm.h"
#include "cpu/vec/vec_math.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

inline Vec<float> sigm(Vec<float> v) { return vsigmoid(v); }
inline Vec<float> tanh_v(Vec<float> v) { return vtanh(v); }
// double: libm per lane (gradient checks want accuracy, not speed)
inline Vec<double> sigm(Vec<double> v) {
  alignas(64) double t[Vec<double>::size];
  v.store(t);
  for (double& a : t) a = 1.0 / (1.0 + std::exp(-a));
  return Vec<double>::load(t);
}
inline Vec<double> tanh_v(Vec<double> v) {
  alignas(64) double t[Vec<double>::size];
  v.store(t);
  for (double& a : t) a = std::tanh(a);
  return Vec<double>::load(t);
}

template <class T, class F>
inline void over_units(std::int64_t H, F&& f) {
  constexpr int W = Vec<T>::size;
  std::int64_t j = 0;
  for (; j + W <= H; j += W) f(j, W);
  if (j < H) f(j, static_cast<int>(H - j));
}

template <class T>
inline Vec<T> ld(const T* p, int n) { return n == Vec<T>::size ? Vec<T>::load(p) : Vec<T>::load_partial(p, n); }
template <class T>
inline void st(Vec<T> v, T* p, int n) {
  if (n == Vec<T>::size) v.store(p);
  else v.store_partial(p, n);
}

template <class T>
void cell_forward(T* gates, const T* c_prev, T* c, T* h, std::int64_t rows, std::int64_t H) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* G = gates + r * 4 * H;
    over_units<T>(H, [&](std::int64_t j, int n) {
      const auto i = sigm(ld(G + j, n)), f = sigm(ld(G + H + j, n));
      const auto g = tanh_v(ld(G + 2 * H + j, n)), o = sigm(ld(G + 3 * H + j, n));
      const auto cn = f * ld(c_prev + r * H + j, n) + i * g;
      st(i, G + j, n);
      st(f, G + H + j, n);
      st(g, G + 2 * H + j, n);
      st(o, G + 3 * H + j, n);
      st(cn, c + r * H + j, n);
      st(o * tanh_v(cn), h + r * H + j, n);
    });
  }
}

template <class T>
void cell_backward(const T* dh, T* dc, const T* gates, const T* c_prev, const T* c, T* dG, std::int64_t rows,
                   std::int64_t H) {
  using V = Vec<T>;
  const V one = V::broadcast(T(1));
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* G = gates + r * 4 * H;
    T* D = dG + r * 4 * H;
    over_units<T>(H, [&](std::int64_t j, int n) {
      const V i = ld(G + j, n), f = ld(G + H + j, n), g = ld(G + 2 * H + j, n), o = ld(G + 3 * H + j, n);
      const V tc = tanh_v(ld(c + r * H + j, n));
      const V dhv = ld(dh + r * H + j, n);
      const V dcv = ld(dc + r * H + j, n) + dhv * o * (one - tc) * (one + tc);
      st(dcv * g * i * (one - i), D + j, n);                       // d pre-i
      st(dcv * ld(c_prev + r * H + j, n) * f * (one - f), D + H + j, n);  // d pre-f
      st(dcv * i * (one - g) * (one + g), D + 2 * H + j, n);       // d pre-g
      st(dhv * tc * o * (one - o), D + 3 * H + j, n);              // d pre-o
      st(dcv * f, dc + r * H + j, n);                              // carried to t-1
    });
  }
}

template <class T>
LstmKernels<T> make_lstm_kernels() {
  return LstmKernels<T>{&cell_forward<T>, &cell_backward<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
