// Activations that kernels can fuse into their epilogue: the codes shared by
// the CPU kernels, the CUDA kernels (cuda/activation/activate.cuh) and the
// Python layer (pyfastnn/ops.py _ACT_CODES), and the one table of their names.
#pragma once
#include <cstring>
#include <string>

namespace pyfastnn {

// gelu is the exact erf form; gelu_tanh is torch's GELU(approximate='tanh');
// silu is x * sigmoid(x).
enum class Activation : int { none = 0, relu, gelu, sigmoid, tanh, gelu_tanh, silu };

struct ActivationName { const char* name; Activation act; };
inline constexpr ActivationName kActivationNames[] = {
    {"none", Activation::none},       {"relu", Activation::relu},         {"gelu", Activation::gelu},
    {"sigmoid", Activation::sigmoid}, {"tanh", Activation::tanh},         {"gelu_tanh", Activation::gelu_tanh},
    {"silu", Activation::silu}};

inline bool parse_activation(const char* name, Activation* out) {
  for (const auto& e : kActivationNames)
    if (!std::strcmp(name, e.name)) { *out = e.act; return true; }
  return false;
}

// "'relu', 'gelu', ..." (every activation but none), for error messages.
inline std::string activation_choices() {
  std::string s;
  for (const auto& e : kActivationNames) {
    if (e.act == Activation::none) continue;
    s += (s.empty() ? "'" : ", '") + std::string(e.name) + "'";
  }
  return s;
}

}  // namespace pyfastnn
