// The CPU extension module: registration only, no math here.
#include <pybind11/pybind11.h>

namespace pyfastnn {
void bind_runtime(pybind11::module_& m);
void bind_ops(pybind11::module_& m);
}  // namespace pyfastnn

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyfastnn CPU kernels (SIMD per ISA level, own thread pool)";
  pyfastnn::bind_runtime(m);
  pyfastnn::bind_ops(m);
}
