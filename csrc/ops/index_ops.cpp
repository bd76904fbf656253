// embedding (+ backward), index_select, gather, scatter_add: checks (dtypes,
// shapes, every index in range: IndexError naming the op and the index) ->
// allocation -> the index kernels without the GIL.
#include "ops/index_ops.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/checks.h"
#include "cpu/index/index.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace ops {

namespace {

// Element types of the data arrays these ops move (float32/float64, and int64
// for the ops that torch defines on integers too).
enum class Elem { f32, f64, i64 };

Elem require_elem(const std::string& op, const char* name, const py::array& a, bool ints) {
  if (is_int64(a) && ints) return Elem::i64;
  const DType dt = dtype_of(a);
  if (dt == DType::f32) return Elem::f32;
  if (dt == DType::f64) return Elem::f64;
  raise_type_error(op, std::string("argument '") + name + "' has dtype " + dtype_str(a) + "; expected float32" +
                           (ints ? ", float64 or int64" : " or float64"));
}

template <class F>
auto by_elem(Elem e, F&& f) {
  switch (e) {
    case Elem::f32: return f(float{});
    case Elem::f64: return f(double{});
    default: return f(std::int64_t{});
  }
}

std::vector<std::int64_t> shape_of(const py::array& a) { return std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim()); }
std::vector<py::ssize_t> ssize_shape(const std::vector<std::int64_t>& s) {
  return std::vector<py::ssize_t>(s.begin(), s.end());
}

std::string dims_str(const std::vector<std::int64_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// padding_idx: None (-1 here) or an int in [-V, V), negative counted from the end like torch.
std::int64_t parse_padding(const std::string& op, const py::object& obj, std::int64_t V) {
  if (obj.is_none()) return -1;
  const std::int64_t p = parse_int(op, "padding_idx", obj);
  if (p < -V || p >= V)
    raise_value_error(op, "argument 'padding_idx' must be in [" + std::to_string(-V) + ", " + std::to_string(V) +
                              ") for " + std::to_string(V) + " embeddings, got " + std::to_string(p));
  return p < 0 ? p + V : p;
}

void check_indices(const std::string& op, const char* name, const py::array_t<std::int64_t>& idx, std::int64_t size,
                   const std::string& what) {
  const std::int64_t* p = idx.data();
  const std::int64_t bad = first_out_of_range(p, idx.size(), size);
  if (bad >= 0) raise_bad_index(op, name, p, bad, size, what);
}

// Element strides of a (checked) data array; copies it to C order first when
// its innermost stride is not 1 and `unit_inner` asks for rows in place.
py::array strided(const py::array& a, bool unit_inner, std::vector<std::ptrdiff_t>* st) {
  py::array out = with_element_strides(a, st);
  if (unit_inner && out.ndim() > 0 && (*st)[out.ndim() - 1] != 1 && out.shape(out.ndim() - 1) > 1) {
    out = c_contiguous(out);
    out = with_element_strides(out, st);
  }
  return out;
}

// np.zeros (calloc: untouched pages are never written), with numpy's
// MemoryError turned into one that names the op.
py::array zeros(const std::string& op, const char* what, const std::vector<std::int64_t>& shape,
                const py::dtype& dt) {
  try {
    py::tuple t(shape.size());
    for (std::size_t k = 0; k < shape.size(); ++k) t[k] = py::int_(shape[k]);
    return py::module_::import("numpy").attr("zeros")(t, dt);
  } catch (py::error_already_set& err) {
    if (!err.matches(PyExc_MemoryError)) throw;
    raise_memory_error(op, std::string(what) + " of shape " + dims_str(shape) + " could not be allocated");
  }
}

}  // namespace

py::array embedding(const py::object& w_obj, const py::object& idx_obj, const py::object& padding_idx) {
  const std::string op = "embedding";
  py::array w = require_array(op, "weight", w_obj);
  const Elem e = require_elem(op, "weight", w, false);
  if (w.ndim() != 2) raise_value_error(op, "argument 'weight' must be 2-D (num_embeddings, embedding_dim), got shape " + shape_str(w));
  const std::int64_t V = w.shape(0), D = w.shape(1);
  parse_padding(op, padding_idx, V);
  py::array_t<std::int64_t> idx = require_index(op, "indices", idx_obj);
  check_indices(op, "indices", idx, V, "the rows of 'weight'");
  std::vector<std::int64_t> out_dims = shape_of(idx);
  out_dims.push_back(D);
  checked_numel(op, "the output", out_dims, w.itemsize());
  std::vector<std::ptrdiff_t> st;
  w = strided(w, true, &st);
  py::array out(w.dtype(), ssize_shape(out_dims));
  const std::int64_t n = idx.size();
  const std::int64_t* ip = idx.data();
  const void* wp = w.data();
  void* op_ = out.mutable_data();
  py::gil_scoped_release release;
  by_elem(e, [&](auto zero) {
    using T = decltype(zero);
    cpu::index_select<T>(static_cast<const T*>(wp), 0, st[0], 1, D, ip, n, static_cast<T*>(op_));
    return 0;
  });
  return out;
}

py::array embedding_backward(const py::object& g_obj, const py::object& idx_obj, const py::object& num_weights,
                             const py::object& padding_idx) {
  const std::string op = "embedding_backward";
  py::array g = require_array(op, "grad_y", g_obj);
  const Elem e = require_elem(op, "grad_y", g, false);
  py::array_t<std::int64_t> idx = require_index(op, "indices", idx_obj);
  const std::int64_t V = parse_int(op, "num_weights", num_weights);
  if (V < 0) raise_value_error(op, "argument 'num_weights' must be >= 0, got " + std::to_string(V));
  if (g.ndim() != idx.ndim() + 1 || !std::equal(idx.shape(), idx.shape() + idx.ndim(), g.shape()))
    raise_value_error(op, "argument 'grad_y' must have shape indices.shape + (embedding_dim,) = " +
                              dims_str([&] { auto s = shape_of(idx); s.push_back(g.ndim() ? g.shape(g.ndim() - 1) : 0); return s; }()) +
                              ", got " + shape_str(g));
  const std::int64_t D = g.shape(g.ndim() - 1);
  const std::int64_t skip = parse_padding(op, padding_idx, V);
  check_indices(op, "indices", idx, V, "'num_weights' rows");
  checked_numel(op, "grad_weight", {V, D}, g.itemsize());
  g = c_contiguous(g);
  // Zeroed through calloc: the rows no index touches cost no writes here.
  py::array gw = zeros(op, "grad_weight", {V, D}, g.dtype());
  const std::int64_t n = idx.size();
  const std::int64_t* ip = idx.data();
  const void* gp = g.data();
  void* out = gw.mutable_data();
  py::gil_scoped_release release;
  by_elem(e, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (!std::is_same_v<T, std::int64_t>)
      cpu::embedding_backward<T>(static_cast<const T*>(gp), ip, n, D, skip, static_cast<T*>(out));
    return 0;
  });
  return gw;
}

py::array index_select(const py::object& x_obj, const py::object& dim_obj, const py::object& idx_obj) {
  const std::string op = "index_select";
  py::array x = require_array(op, "x", x_obj);
  const Elem e = require_elem(op, "x", x, true);
  const int nd = static_cast<int>(x.ndim());
  const int dim = normalize_dim(op, "dim", parse_int(op, "dim", dim_obj), nd);
  py::array_t<std::int64_t> idx = require_index(op, "index", idx_obj);
  if (idx.ndim() > 1) raise_value_error(op, "argument 'index' must be 0-D or 1-D, got shape " + shape_str(idx));
  std::vector<std::int64_t> xs = shape_of(x);
  if (nd == 0) xs = {1};
  const std::int64_t size = xs[dim], n = idx.size();
  if (nd == 0 && n != 1)
    raise_value_error(op, "argument 'index' must hold one index for a 0-D 'x', got shape " + shape_str(idx));
  check_indices(op, "index", idx, size, "dimension " + std::to_string(dim) + " of 'x'");
  std::vector<std::int64_t> out_dims = xs;
  out_dims[dim] = n;
  checked_numel(op, "the output", out_dims, x.itemsize());
  if (nd == 0) out_dims.clear();
  std::int64_t outer = 1, inner = 1;
  for (int k = 0; k < dim; ++k) outer *= xs[k];
  for (std::size_t k = dim + 1; k < xs.size(); ++k) inner *= xs[k];
  x = c_contiguous(x);  // rows of `inner` elements in place
  py::array out(x.dtype(), ssize_shape(out_dims));
  const std::int64_t* ip = idx.data();
  const void* xp = x.data();
  void* op_ = out.mutable_data();
  py::gil_scoped_release release;
  by_elem(e, [&](auto zero) {
    using T = decltype(zero);
    cpu::index_select<T>(static_cast<const T*>(xp), size * inner, inner, outer, inner, ip, n, static_cast<T*>(op_));
    return 0;
  });
  return out;
}

namespace {

// The shared checks of gather and scatter_add: index has the data's number of
// dims and fits inside `bound` (and inside `data` outside dim).
void check_index_shape(const std::string& op, const py::array& index, const char* data_name,
                       const std::vector<std::int64_t>& data, const char* bound_name,
                       const std::vector<std::int64_t>& bound, int dim) {
  if (static_cast<std::size_t>(index.ndim()) != data.size())
    raise_value_error(op, "argument 'index' must have as many dimensions as '" + std::string(data_name) + "' (" +
                              std::to_string(data.size()) + "), got shape " + shape_str(index));
  for (std::size_t k = 0; k < data.size(); ++k) {
    const std::int64_t s = index.shape(static_cast<py::ssize_t>(k));
    if ((static_cast<int>(k) != dim && s > data[k]) || (bound_name && s > bound[k]))
      raise_value_error(op, "argument 'index' of shape " + shape_str(index) + " must be no larger than '" +
                                std::string(data_name) + "' " + dims_str(data) + " outside dimension " +
                                std::to_string(dim) +
                                (bound_name ? " and no larger than '" + std::string(bound_name) + "' " + dims_str(bound) : std::string()) +
                                " (size " + std::to_string(s) + " at dimension " + std::to_string(k) + ")");
  }
}

}  // namespace

py::array gather(const py::object& x_obj, const py::object& dim_obj, const py::object& idx_obj) {
  const std::string op = "gather";
  py::array x = require_array(op, "x", x_obj);
  const Elem e = require_elem(op, "x", x, true);
  const int nd = static_cast<int>(x.ndim());
  const int dim = normalize_dim(op, "dim", parse_int(op, "dim", dim_obj), nd);
  py::array_t<std::int64_t> idx = require_index(op, "index", idx_obj);
  std::vector<std::int64_t> xs = shape_of(x);
  check_index_shape(op, idx, "x", xs, nullptr, {}, dim);
  const std::vector<std::int64_t> is = shape_of(idx);
  py::array out(x.dtype(), ssize_shape(is));
  if (idx.size() == 0) return out;
  if (nd == 0) xs = {1};
  check_indices(op, "index", idx, xs[dim], "dimension " + std::to_string(dim) + " of 'x'");
  std::vector<std::ptrdiff_t> st;
  x = strided(x, false, &st);
  cpu::IndexGeometry g;
  g.dim = dim;
  g.shape = nd == 0 ? std::vector<std::int64_t>{1} : is;
  g.data_strides.assign(st.begin(), st.end());
  if (nd == 0) g.data_strides = {1};
  g.index_strides.assign(g.shape.size(), 0);
  for (std::int64_t k = static_cast<std::int64_t>(g.shape.size()) - 1, s = 1; k >= 0; --k) {
    g.index_strides[k] = s;
    s *= g.shape[k];
  }
  g.other_strides = g.index_strides;  // out is contiguous with the index's shape
  const std::int64_t* ip = idx.data();
  const void* xp = x.data();
  void* op_ = out.mutable_data();
  py::gil_scoped_release release;
  by_elem(e, [&](auto zero) {
    using T = decltype(zero);
    cpu::gather<T>(g, static_cast<const T*>(xp), ip, static_cast<T*>(op_));
    return 0;
  });
  return out;
}

py::array scatter_add(const py::object& x_obj, const py::object& dim_obj, const py::object& idx_obj,
                      const py::object& src_obj) {
  const std::string op = "scatter_add";
  py::array src = require_array(op, "src", src_obj);
  const Elem e = require_elem(op, "src", src, true);
  py::array out;
  const char* copy_from = nullptr;  // x's data while the copy into out is still to be made
  std::vector<std::int64_t> os;
  if (py::isinstance<py::tuple>(x_obj) || py::isinstance<py::list>(x_obj)) {
    os = parse_shape(op, "x", x_obj);
    checked_numel(op, "the output", os, src.itemsize());
    out = zeros(op, "the output", os, src.dtype());
  } else {
    if (!py::isinstance<py::array>(x_obj))
      raise_type_error(op, "argument 'x' must be an array or a shape tuple, got " +
                               py::str(py::type::of(x_obj).attr("__name__")).cast<std::string>());
    py::array x = py::reinterpret_borrow<py::array>(x_obj);
    if (require_elem(op, "x", x, true) != e)
      raise_type_error(op, "argument 'src' must have dtype " + dtype_str(x) + " like 'x', got " + dtype_str(src));
    os = shape_of(x);
    if (x.flags() & py::array::c_style) {
      // Copying x is most of an out-of-place scatter_add (the index is usually far smaller than x): done
      // below with the GIL released and split over the pool (numpy's copy is one-threaded: 34 us against
      // 15 us for 1.6 MB on 2 threads).
      out = py::array(x.dtype(), ssize_shape(os));
      copy_from = static_cast<const char*>(x.data());
    } else {
      out = py::module_::import("numpy").attr("array")(x, py::arg("dtype") = x.dtype(), py::arg("order") = "C");
    }
  }
  const int nd = static_cast<int>(os.size());
  const int dim = normalize_dim(op, "dim", parse_int(op, "dim", dim_obj), nd);
  py::array_t<std::int64_t> idx = require_index(op, "index", idx_obj);
  if (src.ndim() != nd)
    raise_value_error(op, "argument 'src' must have as many dimensions as 'x' (" + std::to_string(nd) +
                              "), got shape " + shape_str(src));
  check_index_shape(op, idx, "x", os, "src", shape_of(src), dim);
  const std::vector<std::int64_t> dims = nd == 0 ? std::vector<std::int64_t>{1} : os;
  if (idx.size() != 0) check_indices(op, "index", idx, dims[dim], "dimension " + std::to_string(dim) + " of 'x'");
  if (copy_from != nullptr) {
    char* to = static_cast<char*>(out.mutable_data());
    const std::int64_t bytes = static_cast<std::int64_t>(out.nbytes());
    py::gil_scoped_release release;
    parallel_for(bytes, std::int64_t{1} << 16, [&](std::int64_t b0, std::int64_t b1) {
      std::memcpy(to + b0, copy_from + b0, static_cast<std::size_t>(b1 - b0));
    });
  }
  if (idx.size() == 0) return out;
  std::vector<std::ptrdiff_t> st;
  src = strided(src, false, &st);
  cpu::IndexGeometry g;
  g.dim = dim;
  g.shape = nd == 0 ? std::vector<std::int64_t>{1} : shape_of(idx);
  g.other_strides.assign(st.begin(), st.end());
  if (nd == 0) g.other_strides = {1};
  g.index_strides.assign(g.shape.size(), 0);
  g.data_strides.assign(g.shape.size(), 0);
  for (std::int64_t k = static_cast<std::int64_t>(g.shape.size()) - 1, si = 1, so = 1; k >= 0; --k) {
    g.index_strides[k] = si;
    g.data_strides[k] = so;
    si *= g.shape[k];
    so *= dims[k];
  }
  const std::int64_t* ip = idx.data();
  const void* sp = src.data();
  void* op_ = out.mutable_data();
  py::gil_scoped_release release;
  by_elem(e, [&](auto zero) {
    using T = decltype(zero);
    cpu::scatter_add<T>(g, static_cast<const T*>(sp), ip, static_cast<T*>(op_));
    return 0;
  });
  return out;
}

}  // namespace ops
}  // namespace pyfastnn
