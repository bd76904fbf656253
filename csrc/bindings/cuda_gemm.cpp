// CUDA gemm bindings: raw device pointers + the caller's stream; checks live in
// pyfastnn/cuda_ops/.
#include "bindings/cuda_common.h"

namespace pyfastnn {
namespace cuda_bindings {

void bind_gemm(pybind11::module_& m) { (void)m; }

}  // namespace cuda_bindings
}  // namespace pyfastnn
