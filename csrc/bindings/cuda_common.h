// Shared by the CUDA binding files: launch-status checks and the per-family
// registration functions that cuda_module.cpp calls. The Python layer owns the
// CuPy arrays and every argument check; bindings take raw device pointers and
// the caller's stream, release the GIL and only launch.
#pragma once
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pyfastnn {
namespace cuda_bindings {

inline void check(cudaError_t err, const char* op) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(op) + ": CUDA error: " + cudaGetErrorString(err));
}

template <typename T>
inline T* dev_ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

inline cudaStream_t stream_of(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// One per op family, each in csrc/bindings/cuda_<family>.cpp.
void bind_gemm(pybind11::module_& m);       // SGEMM, tensor-core GEMM
void bind_attention(pybind11::module_& m);  // flash attention forward/backward
void bind_nn(pybind11::module_& m);         // activations, softmax, norms, losses, dropout, optimizer steps, pooling, LSTM cell
void bind_conv(pybind11::module_& m);       // conv2d forward, gradients of x, w and bias

}  // namespace cuda_bindings
}  // namespace pyfastnn
