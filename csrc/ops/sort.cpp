// topk(x, k, dim, largest) and sort(x, dim, descending) -> (values, int64
// indices) like torch's, with one fixed answer: equal values keep index order
// (lower index first), every NaN ranks above +inf, -0 equals +0. Results
// always come sorted (best first) and sort is always stable.
#include "ops/sort.h"

#include <vector>

#include "common/checks.h"
#include "cpu/sort/sort.h"

namespace pyfastnn {
namespace ops {

namespace {

enum class Elem { f32, f64, i64 };

struct Lines {
  py::array x;  // C-contiguous (numpy makes a 0-d array 1-D doing so: `shape` keeps the original)
  std::vector<py::ssize_t> shape;
  Elem e;
  int dim;
  std::int64_t outer = 1, L = 1, inner = 1;
};

Lines prepare(const std::string& op, const py::object& x_obj, const py::object& dim_obj) {
  Lines in;
  in.x = require_array(op, "x", x_obj);
  const DType dt = dtype_of(in.x);
  if (dt == DType::f32) in.e = Elem::f32;
  else if (dt == DType::f64) in.e = Elem::f64;
  else if (is_int64(in.x)) in.e = Elem::i64;
  else raise_type_error(op, "argument 'x' has dtype " + dtype_str(in.x) + "; expected float32, float64 or int64");
  const int nd = static_cast<int>(in.x.ndim());
  in.dim = normalize_dim(op, "dim", parse_int(op, "dim", dim_obj), nd);
  in.shape.assign(in.x.shape(), in.x.shape() + nd);
  in.x = c_contiguous(in.x);
  if (nd) in.L = in.shape[in.dim];
  for (int k = 0; k < in.dim; ++k) in.outer *= in.shape[k];
  for (int k = in.dim + 1; k < nd; ++k) in.inner *= in.shape[k];
  return in;
}

template <class F>
void by_elem(Elem e, F&& f) {
  if (e == Elem::f32) f(float{});
  else if (e == Elem::f64) f(double{});
  else f(std::int64_t{});
}

}  // namespace

py::tuple topk(const py::object& x_obj, const py::object& k_obj, const py::object& dim_obj, bool largest) {
  const std::string op = "topk";
  const Lines in = prepare(op, x_obj, dim_obj);
  const std::int64_t k = parse_int(op, "k", k_obj);
  if (k < 0 || k > in.L)
    raise_value_error(op, "argument 'k' must be in [0, " + std::to_string(in.L) + "] (the size of dimension " +
                              std::to_string(in.dim) + "), got " + std::to_string(k));
  std::vector<py::ssize_t> shape = in.shape;
  if (!shape.empty()) shape[in.dim] = k;
  py::array values(in.x.dtype(), shape);
  py::array_t<std::int64_t> indices(shape);
  const void* xp = in.x.data();
  void* vp = values.mutable_data();
  std::int64_t* ip = indices.mutable_data();
  {
    py::gil_scoped_release release;
    by_elem(in.e, [&](auto zero) {
      using T = decltype(zero);
      cpu::topk<T>(static_cast<const T*>(xp), in.outer, in.L, in.inner, k, largest, static_cast<T*>(vp), ip);
    });
  }
  return py::make_tuple(values, indices);
}

py::tuple sort(const py::object& x_obj, const py::object& dim_obj, bool descending) {
  const std::string op = "sort";
  const Lines in = prepare(op, x_obj, dim_obj);
  const std::vector<py::ssize_t>& shape = in.shape;
  py::array values(in.x.dtype(), shape);
  py::array_t<std::int64_t> indices(shape);
  const void* xp = in.x.data();
  void* vp = values.mutable_data();
  std::int64_t* ip = indices.mutable_data();
  {
    py::gil_scoped_release release;
    by_elem(in.e, [&](auto zero) {
      using T = decltype(zero);
      cpu::sort<T>(static_cast<const T*>(xp), in.outer, in.L, in.inner, descending, static_cast<T*>(vp), ip);
    });
  }
  return py::make_tuple(values, indices);
}

}  // namespace ops
}  // namespace pyfastnn
