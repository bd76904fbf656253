#include "common/checks.h"

#include <algorithm>
#include <limits>

namespace pyfastnn {

void raise_type_error(const std::string& op, const std::string& msg) { throw py::type_error(op + ": " + msg); }
void raise_value_error(const std::string& op, const std::string& msg) { throw py::value_error(op + ": " + msg); }
void raise_memory_error(const std::string& op, const std::string& msg) {
  PyErr_SetString(PyExc_MemoryError, (op + ": " + msg).c_str());
  throw py::error_already_set();
}

void raise_index_error(const std::string& op, const std::string& msg) { throw py::index_error(op + ": " + msg); }

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

DType dtype_of(const py::array& a) {
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'f' || (dt.byteorder() != '=' && dt.byteorder() != '<' && dt.byteorder() != '|'))
    return DType::other;
  if (dt.itemsize() == 4) return DType::f32;
  if (dt.itemsize() == 8) return DType::f64;
  return DType::other;
}

py::array require_array(const std::string& op, const char* name, const py::handle& obj) {
  if (!py::isinstance<py::array>(obj))
    raise_type_error(op, std::string("argument '") + name + "' must be an array, got " +
                             py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  return py::reinterpret_borrow<py::array>(obj);
}

DType require_float(const std::string& op, const char* name, const py::array& a) {
  const DType dt = dtype_of(a);
  if (dt == DType::other)
    raise_type_error(op, std::string("argument '") + name + "' has dtype " + dtype_str(a) +
                             "; expected float32 or float64");
  return dt;
}

void require_ndim(const std::string& op, const char* name, const py::array& a, int lo, int hi) {
  if (a.ndim() < lo || a.ndim() > hi) {
    const std::string want = lo == hi ? std::to_string(lo) + "-D" : std::to_string(lo) + "-D to " + std::to_string(hi) + "-D";
    raise_value_error(op, std::string("argument '") + name + "' must be " + want + ", got shape " + shape_str(a));
  }
}

py::array with_element_strides(const py::array& a, std::vector<std::ptrdiff_t>* strides) {
  const py::ssize_t item = a.itemsize();
  bool ok = true;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) ok = ok && (a.strides(i) % item == 0);
  py::array out = a;
  if (!ok) out = py::array::ensure(py::module_::import("numpy").attr("ascontiguousarray")(a));
  strides->resize(out.ndim());
  for (py::ssize_t i = 0; i < out.ndim(); ++i) (*strides)[i] = out.strides(i) / item;
  return out;
}

void require_like(const std::string& op, const char* name_a, const py::array& a, const char* name_b,
                  const py::array& b) {
  if (dtype_of(b) != dtype_of(a))
    raise_type_error(op, std::string("argument '") + name_b + "' must have dtype " + dtype_str(a) + " like '" +
                             name_a + "', got " + dtype_str(b));
  if (b.ndim() != a.ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), b.shape()))
    raise_value_error(op, std::string("argument '") + name_b + "' must have the shape of '" + name_a + "' " +
                              shape_str(a) + ", got " + shape_str(b));
}

py::array c_contiguous(const py::array& a) {
  // not numpy.ascontiguousarray: it turns a 0-d array into shape (1,), and every op here keeps x's shape
  if (a.flags() & py::array::c_style) return a;
  return py::array::ensure(py::module_::import("numpy").attr("array")(a, py::arg("order") = "C"));
}

std::int64_t int_arg(const std::string& op, const char* name, const py::handle& v, const char* expected) {
  const auto given = [&] { return py::str(py::repr(v)).cast<std::string>(); };
  if (py::isinstance<py::bool_>(v) || !py::isinstance<py::int_>(v))
    raise_type_error(op, std::string("argument '") + name + "' must be " + expected + ", got " + given());
  int overflow = 0;
  const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
  if (overflow != 0)
    raise_value_error(op, std::string("argument '") + name + "' must be " + expected +
                              " that fits in 64 bits (|value| < 2**63), got " + given());
  if (x == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<std::int64_t>(x);
}

void parse_int_pair(const std::string& op, const char* name, const py::object& v, std::int64_t lo, std::int64_t* a,
                    std::int64_t* b) {
  const std::string given = py::str(py::repr(v)).cast<std::string>();
  auto as_int = [&](const py::handle& h) -> std::int64_t {
    if (py::isinstance<py::bool_>(h) || !py::isinstance<py::int_>(h))
      raise_type_error(op, std::string("argument '") + name + "' must be an int or a pair of ints, got " + given);
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
    if (overflow > 0)
      raise_value_error(op, std::string("argument '") + name + "' must be below 2**63, got " + given);
    if (overflow < 0)
      raise_value_error(op, std::string("argument '") + name + "' must be >= " + std::to_string(lo) + ", got " + given);
    if (x == -1 && PyErr_Occurred()) throw py::error_already_set();
    return static_cast<std::int64_t>(x);
  };
  if (py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(v);
    if (seq.size() != 2)
      raise_value_error(op, std::string("argument '") + name + "' must be an int or a pair of ints, got " + given);
    *a = as_int(seq[0]);
    *b = as_int(seq[1]);
  } else {
    *a = *b = as_int(v);
  }
  if (*a < lo || *b < lo)
    raise_value_error(op, std::string("argument '") + name + "' must be >= " + std::to_string(lo) + ", got " + given);
}

std::int64_t parse_int(const std::string& op, const char* name, const py::handle& v) {
  if (py::isinstance<py::bool_>(v) || !PyIndex_Check(v.ptr()))
    raise_type_error(op, std::string("argument '") + name + "' must be an int, got " +
                             py::str(py::type::of(v).attr("__name__")).cast<std::string>() + " " +
                             py::str(py::repr(v)).cast<std::string>());
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  const long long out = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow)
    raise_value_error(op, std::string("argument '") + name + "' is out of the int64 range, got " +
                              py::str(i).cast<std::string>());
  return static_cast<std::int64_t>(out);
}

int normalize_dim(const std::string& op, const char* name, std::int64_t dim, int ndim) {
  const std::int64_t n = std::max(ndim, 1);
  if (dim < -n || dim >= n)
    raise_value_error(op, std::string("argument '") + name + "' must be in [" + std::to_string(-n) + ", " +
                              std::to_string(n - 1) + "] for an array of " + std::to_string(ndim) +
                              " dimensions, got " + std::to_string(dim));
  return static_cast<int>(dim < 0 ? dim + n : dim);
}

bool is_int64(const py::array& a) {
  const py::dtype dt = a.dtype();
  return dt.kind() == 'i' && dt.itemsize() == 8 && (dt.byteorder() == '=' || dt.byteorder() == '<');
}

py::array_t<std::int64_t> require_index(const std::string& op, const char* name, const py::handle& obj) {
  py::array a = require_array(op, name, obj);
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    raise_type_error(op, std::string("argument '") + name + "' must hold integers (int64 indices), got dtype " +
                             dtype_str(a));
  if (is_int64(a) && (a.flags() & py::array::c_style)) return py::reinterpret_borrow<py::array_t<std::int64_t>>(a);
  py::module_ np = py::module_::import("numpy");
  // reshape: numpy makes a 0-d array 1-D on the way
  return py::reinterpret_borrow<py::array_t<std::int64_t>>(
      np.attr("ascontiguousarray")(a, np.attr("int64")).attr("reshape")(a.attr("shape")));
}

std::int64_t first_out_of_range(const std::int64_t* idx, std::int64_t n, std::int64_t size) {
  // Chunks in order, stopping at the first chunk that holds a bad entry.
  constexpr std::int64_t kChunk = 1 << 16;
  for (std::int64_t c = 0; c < n; c += kChunk) {
    const std::int64_t e = std::min(n, c + kChunk);
    bool bad = false;
    for (std::int64_t i = c; i < e; ++i) bad |= static_cast<std::uint64_t>(idx[i]) >= static_cast<std::uint64_t>(size);
    if (bad)
      for (std::int64_t i = c; i < e; ++i)
        if (static_cast<std::uint64_t>(idx[i]) >= static_cast<std::uint64_t>(size)) return i;
  }
  return -1;
}

void raise_bad_index(const std::string& op, const char* name, const std::int64_t* idx, std::int64_t pos,
                     std::int64_t size, const std::string& what) {
  raise_index_error(op, "index " + std::to_string(idx[pos]) + " is out of range [0, " + std::to_string(size) +
                            ") for " + what + " (at flat position " + std::to_string(pos) + " of '" + name + "')");
}

std::vector<std::int64_t> parse_shape(const std::string& op, const char* name, const py::object& obj) {
  std::vector<std::int64_t> shape;
  if (!(py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)))
    raise_type_error(op, std::string("argument '") + name + "' must be a tuple of ints, got " +
                             py::str(py::repr(obj)).cast<std::string>());
  for (const py::handle& h : obj) {
    const std::int64_t d = int_arg(op, name, h, "a tuple of non-negative ints");
    if (d < 0)
      raise_value_error(op, std::string("argument '") + name + "' must be a tuple of non-negative ints, got " +
                                py::str(py::repr(obj)).cast<std::string>());
    shape.push_back(d);
  }
  return shape;
}

std::int64_t checked_numel(const std::string& op, const char* what, const std::vector<std::int64_t>& dims,
                           std::size_t itemsize) {
  const std::int64_t limit = std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(itemsize);
  std::int64_t n = 1;
  for (std::int64_t d : dims) {
    if (d != 0 && n > limit / d) {
      std::string s = "(";
      for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
      raise_memory_error(op, std::string(what) + " of shape " + s + ") is too large to allocate");
    }
    n *= d;
  }
  return n;
}

}  // namespace pyfastnn
