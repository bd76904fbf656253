// The row-wise kernel table, one entry per ISA level.
#include "cpu/rowwise/rowwise.h"

#include "runtime/isa_table.h"

namespace pyfastnn {
namespace cpu {

namespace {
const IsaTable<RowwiseKernels>& table() {
  static const IsaTable<RowwiseKernels> t(&rowwise_kernels_scalar, &rowwise_kernels_avx2, &rowwise_kernels_avx512);
  return t;
}
}  // namespace

template <>
const RowwiseKernels<float>& rowwise_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const RowwiseKernels<double>& rowwise_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

}  // namespace cpu
}  // namespace pyfastnn
