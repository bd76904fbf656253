// The CUDA extension module. It takes raw device pointers and a stream from
// the Python layer (which owns the CuPy arrays and all argument checks) and
// only launches; errors come back as RuntimeError naming the op.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings/cuda_common.h"
#include "cuda/activation/bias_act.h"

namespace py = pybind11;

namespace {

using pyfastnn::cuda_bindings::check;

py::dict device_info() {
  py::dict d;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  d["device_count"] = err == cudaSuccess ? count : 0;
  d["error"] = err == cudaSuccess ? (count > 0 ? std::string() : std::string("no CUDA device"))
                                  : std::string(cudaGetErrorString(err));
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  d["runtime_version"] = runtime;
  d["driver_version"] = driver;
  if (err == cudaSuccess && count > 0) {
    int dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
      d["name"] = std::string(prop.name);
      d["compute_capability"] = std::to_string(prop.major) + "." + std::to_string(prop.minor);
      d["multiprocessors"] = prop.multiProcessorCount;
    }
  }
  return d;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pyfastnn CUDA kernels (launched on the caller's stream)";
  m.def("device_info", &device_info);
  m.def(
      "bias_act_f32",
      [](std::uintptr_t x, std::uintptr_t bias, std::uintptr_t y, std::int64_t rows, std::int64_t cols, int act,
         std::uintptr_t stream) {
        py::gil_scoped_release release;
        check(pyfastnn::cuda::bias_act_f32(reinterpret_cast<const float*>(x), reinterpret_cast<const float*>(bias),
                                           reinterpret_cast<float*>(y), rows, cols, act,
                                           reinterpret_cast<cudaStream_t>(stream)),
              "bias_act");
      },
      py::arg("x"), py::arg("bias"), py::arg("y"), py::arg("rows"), py::arg("cols"), py::arg("act"),
      py::arg("stream"));
  pyfastnn::cuda_bindings::bind_gemm(m);
  pyfastnn::cuda_bindings::bind_attention(m);
  pyfastnn::cuda_bindings::bind_nn(m);
  pyfastnn::cuda_bindings::bind_conv(m);
}
