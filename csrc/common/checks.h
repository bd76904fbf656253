// Argument checks at the Python boundary: every message starts with the op
// and names the argument, what was expected and what was given.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pyfastnn {

namespace py = pybind11;

enum class DType { f32, f64, other };

[[noreturn]] void raise_type_error(const std::string& op, const std::string& msg);
[[noreturn]] void raise_value_error(const std::string& op, const std::string& msg);
[[noreturn]] void raise_memory_error(const std::string& op, const std::string& msg);
[[noreturn]] void raise_index_error(const std::string& op, const std::string& msg);

std::string shape_str(const py::array& a);
std::string dtype_str(const py::array& a);
DType dtype_of(const py::array& a);

// The argument as a numpy array (TypeError for anything else).
py::array require_array(const std::string& op, const char* name, const py::handle& obj);
// float32 or float64 in native byte order (TypeError otherwise).
DType require_float(const std::string& op, const char* name, const py::array& a);
void require_ndim(const std::string& op, const char* name, const py::array& a, int lo, int hi);

// Element strides of a numpy array; copies the array to C order first when a
// byte stride is not a whole number of elements (e.g. a field of a record).
py::array with_element_strides(const py::array& a, std::vector<std::ptrdiff_t>* strides);

// b has a's shape and dtype (ValueError/TypeError naming both otherwise).
void require_like(const std::string& op, const char* name_a, const py::array& a, const char* name_b,
                  const py::array& b);

// A C-contiguous version of the array (the array itself when it already is).
py::array c_contiguous(const py::array& a);

// A Python int (not bool) that fits in int64; TypeError (not an int) or
// ValueError (too large) naming op and argument otherwise. `expected` reads
// like "an int".
std::int64_t int_arg(const std::string& op, const char* name, const py::handle& v, const char* expected = "an int");

// An int or a pair of ints (tuple or list of 2) -> (*a, *b), each >= lo and
// below 2**63; TypeError/ValueError naming op and argument otherwise.
void parse_int_pair(const std::string& op, const char* name, const py::object& v, std::int64_t lo, std::int64_t* a,
                    std::int64_t* b);

// An integer argument (a Python int or anything with __index__, bool excluded),
// TypeError naming op and argument otherwise.
std::int64_t parse_int(const std::string& op, const char* name, const py::handle& v);

// `dim` in [-ndim, ndim) -> [0, ndim); a 0-d array takes dim 0 or -1 (ValueError otherwise).
int normalize_dim(const std::string& op, const char* name, std::int64_t dim, int ndim);

// Whether the array holds int64 in native byte order.
bool is_int64(const py::array& a);

// An index argument as a C-contiguous int64 array: integer arrays of other
// widths are converted, anything else (floats, bool, non-arrays) is a TypeError.
py::array_t<std::int64_t> require_index(const std::string& op, const char* name, const py::handle& obj);

// Position of the first entry of idx[0:n] outside [0, size), or -1 (a branch-free
// scan per chunk, the exact position looked for only in a chunk that has one).
std::int64_t first_out_of_range(const std::int64_t* idx, std::int64_t n, std::int64_t size);

// IndexError "<op>: index <v> is out of range [0, <size>) for <what> (at flat position <p> of '<name>')".
[[noreturn]] void raise_bad_index(const std::string& op, const char* name, const std::int64_t* idx, std::int64_t pos,
                                  std::int64_t size, const std::string& what);

// A shape argument: a tuple or list of non-negative ints (TypeError otherwise).
std::vector<std::int64_t> parse_shape(const std::string& op, const char* name, const py::object& obj);

// Product of dims as int64, raising MemoryError naming op/what on overflow
// or when the bytes would not fit in the address space.
std::int64_t checked_numel(const std::string& op, const char* what, const std::vector<std::int64_t>& dims,
                           std::size_t itemsize);

}  // namespace pyfastnn
