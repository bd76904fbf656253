// Builds one ISA level's GemmKernelSet from the templates; included once by
// each kernels_<isa>.cpp, which fixes the tile shapes for that level.
#pragma once
#include "cpu/gemm/gemm.h"
#include "cpu/gemm/macrokernel.h"
#include "cpu/gemm/pack.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

template <class T, int MR, int NV>
GemmKernelSet<T> make_gemm_kernel_set() {
  constexpr int NR = NV * Vec<T>::size;
  return GemmKernelSet<T>{MR, NR, &pack_a<T, MR>, &pack_b<T, NR>, &pack_b_conv<T, NR>,
                          &macro_kernel<T, MR, NV>, Vec<T>::size};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
