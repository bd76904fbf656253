// One kernel struct per ISA level and dtype, filled once by the per-ISA
// factories and indexed by the level in use.
#pragma once
#include "runtime/cpu_info.h"

namespace pyfastnn {

template <template <class> class Kernels>
struct IsaTable {
  using Factory = void (*)(Kernels<float>*, Kernels<double>*);
  Kernels<float> f32[3];
  Kernels<double> f64[3];
  IsaTable(Factory scalar, Factory avx2, Factory avx512) {
    scalar(&f32[0], &f64[0]);
    avx2(&f32[1], &f64[1]);
    avx512(&f32[2], &f64[2]);
  }
  template <class T>
  const Kernels<T>& get(CpuIsa isa) const {
    if constexpr (sizeof(T) == 4) return f32[static_cast<int>(isa)];
    else return f64[static_cast<int>(isa)];
  }
};

}  // namespace pyfastnn
