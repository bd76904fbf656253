// cumsum(x, dim, reverse) like torch.cumsum (reverse: sums from the end, the
// backward pass of cumsum): float32/float64 keep their dtype, integer and bool
// inputs give int64 as in torch. Checks -> C-order copy -> cpu/scan.
#include "ops/cumsum.h"

#include <vector>

#include "common/checks.h"
#include "cpu/scan/scan.h"

namespace pyfastnn {
namespace ops {

py::array cumsum(const py::object& x_obj, const py::object& dim_obj, bool reverse) {
  const std::string op = "cumsum";
  py::array x = require_array(op, "x", x_obj);
  const DType dt = dtype_of(x);
  const char kind = x.dtype().kind();
  if (dt == DType::other && kind != 'i' && kind != 'u' && kind != 'b')
    raise_type_error(op, "argument 'x' has dtype " + dtype_str(x) + "; expected float32, float64 or an integer type");
  const int nd = static_cast<int>(x.ndim());
  const int dim = normalize_dim(op, "dim", parse_int(op, "dim", dim_obj), nd);
  py::module_ np = py::module_::import("numpy");
  x = dt == DType::other ? py::array(np.attr("ascontiguousarray")(x, np.attr("int64"))) : c_contiguous(x);
  std::int64_t outer = 1, L = nd ? x.shape(dim) : 1, inner = 1;
  for (int k = 0; k < dim; ++k) outer *= x.shape(k);
  for (int k = dim + 1; k < nd; ++k) inner *= x.shape(k);
  py::array y(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + nd));
  const void* xp = x.data();
  void* yp = y.mutable_data();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    cpu::cumsum<T>(static_cast<const T*>(xp), static_cast<T*>(yp), outer, L, inner, reverse);
  };
  py::gil_scoped_release release;
  if (dt == DType::f32) run(0.0f);
  else if (dt == DType::f64) run(0.0);
  else run(std::int64_t{0});
  return y;
}

}  // namespace ops
}  // namespace pyfastnn
