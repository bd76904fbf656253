// The elementwise kernel table, one entry per ISA level.
#include "cpu/elementwise/elementwise.h"

namespace pyfastnn {
namespace cpu {

namespace {
struct Table {
  ElementwiseKernels<float> f32[3];
  ElementwiseKernels<double> f64[3];
  Table() {
    elementwise_kernels_scalar(&f32[0], &f64[0]);
    elementwise_kernels_avx2(&f32[1], &f64[1]);
    elementwise_kernels_avx512(&f32[2], &f64[2]);
  }
};
const Table& table() {
  static const Table t;
  return t;
}
}  // namespace

template <>
const ElementwiseKernels<float>& elementwise_kernels<float>(CpuIsa isa) { return table().f32[static_cast<int>(isa)]; }
template <>
const ElementwiseKernels<double>& elementwise_kernels<double>(CpuIsa isa) { return table().f64[static_cast<int>(isa)]; }

}  // namespace cpu
}  // namespace pyfastnn
