// The elementwise kernel table, one entry per ISA level.
#include "cpu/elementwise/elementwise.h"
#include "runtime/isa_table.h"

namespace pyfastnn {
namespace cpu {

namespace {
const IsaTable<ElementwiseKernels>& table() {
  static const IsaTable<ElementwiseKernels> t(&elementwise_kernels_scalar, &elementwise_kernels_avx2,
                                               &elementwise_kernels_avx512);
  return t;
}
}  // namespace

template <>
const ElementwiseKernels<float>& elementwise_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const ElementwiseKernels<double>& elementwise_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

}  // namespace cpu
}  // namespace pyfastnn
