// The optimizer step kernel table, one entry per ISA level.
#include "cpu/optim/optim.h"
#include "runtime/isa_table.h"

namespace pyfastnn {
namespace cpu {

namespace {
const IsaTable<OptimKernels>& table() {
  static const IsaTable<OptimKernels> t(&optim_kernels_scalar, &optim_kernels_avx2, &optim_kernels_avx512);
  return t;
}
}  // namespace

template <>
const OptimKernels<float>& optim_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const OptimKernels<double>& optim_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

}  // namespace cpu
}  // namespace pyfastnn
