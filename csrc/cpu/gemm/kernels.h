// Per-ISA kernel-set factories (defined in kernels_<isa>.cpp).
#pragma once
#include "cpu/gemm/gemm.h"

namespace pyfastnn {
namespace cpu {

void gemm_kernels_scalar(GemmKernelSet<float>* f32, GemmKernelSet<double>* f64);
void gemm_kernels_avx2(GemmKernelSet<float>* f32, GemmKernelSet<double>* f64);
void gemm_kernels_avx512(GemmKernelSet<float>* f32, GemmKernelSet<double>* f64);

}  // namespace cpu
}  // namespace pyfastnn
