// Size arithmetic that refuses to wrap. Every size, offset and shape an op
// derives from its arguments (convolution and pooling geometry, padded
// layouts, unfolded sizes, sequence and attention shapes) goes through it, so
// an argument too large for 64-bit sizes is a ValueError naming the op and
// the argument instead of a wrapped size that passes the checks and sends a
// kernel out of bounds. pybind-free (kernels may use it): SizeError is a
// std::invalid_argument, which pybind11 raises as ValueError.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace pyfastnn {

class SizeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Arithmetic on int64 sizes derived from one argument of one op.
class SizeMath {
 public:
  SizeMath(const std::string& op, const char* arg) : op_(op), arg_(arg) {}

  std::int64_t add(std::int64_t a, std::int64_t b) const {
    std::int64_t r;
    if (__builtin_add_overflow(a, b, &r)) fail(a, " + ", b);
    return r;
  }
  std::int64_t sub(std::int64_t a, std::int64_t b) const {
    std::int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) fail(a, " - ", b);
    return r;
  }
  std::int64_t mul(std::int64_t a, std::int64_t b) const {
    std::int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) fail(a, " * ", b);
    return r;
  }
  // a * b + c
  std::int64_t mul_add(std::int64_t a, std::int64_t b, std::int64_t c) const { return add(mul(a, b), c); }

 private:
  [[noreturn]] void fail(std::int64_t a, const char* sym, std::int64_t b) const {
    throw SizeError(op_ + ": argument '" + arg_ + "' is too large: a size derived from it (" + std::to_string(a) +
                    sym + std::to_string(b) + ") does not fit in 64 bits; expected sizes below 2**63");
  }
  std::string op_;
  std::string arg_;
};

}  // namespace pyfastnn
