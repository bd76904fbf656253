// Activations that kernels can fuse into their epilogue.
#pragma once
#include <cstring>

namespace pyfastnn {

enum class Activation : int { none = 0, relu, gelu, sigmoid, tanh };

inline bool parse_activation(const char* name, Activation* out) {
  struct Entry { const char* name; Activation act; };
  static const Entry table[] = {{"none", Activation::none}, {"relu", Activation::relu},
                                {"gelu", Activation::gelu}, {"sigmoid", Activation::sigmoid},
                                {"tanh", Activation::tanh}};
  for (const auto& e : table)
    if (!std::strcmp(name, e.name)) { *out = e.act; return true; }
  return false;
}

}  // namespace pyfastnn
