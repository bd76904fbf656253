// CUDA conv2d bindings: raw device pointers + the caller's stream; checks
// live in pyfastnn/cuda_ops/conv.py. The geometry travels as one list
// (N, C, H, W, K, R, S, SH, SW, PH, PW, DH, DW, groups, P, Q); `algo` is a
// ConvAlgo, `tile` a ConvTile (0: automatic), `splits` the grad-w pixel
// slices (0: automatic). Workspaces are allocated by the caller from the
// size the matching *_workspace_bytes function returns.
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/cuda_common.h"
#include "cuda/conv/conv.h"

namespace pyfastnn {
namespace cuda_bindings {

namespace {

namespace py = pybind11;
using std::int64_t;
using std::uintptr_t;
namespace cu = pyfastnn::cuda;

cu::ConvShape conv_shape(const std::vector<int64_t>& g, const char* op) {
  if (g.size() != 16) throw std::invalid_argument(std::string(op) + ": conv geometry must have 16 entries");
  return cu::ConvShape{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13],
                       g[14], g[15]};
}

}  // namespace

void bind_conv(pybind11::module_& m) {
  m.def(
      "conv2d_forward_workspace_bytes",
      [](const std::vector<int64_t>& geometry, int algo) {
        return cu::conv2d_forward_workspace_bytes(conv_shape(geometry, "conv2d"), algo);
      },
      py::arg("geometry"), py::arg("algo"), "scratch bytes conv2d_forward_f32 needs for this geometry and algorithm");
  m.def(
      "conv2d_backward_data_workspace_bytes",
      [](const std::vector<int64_t>& geometry, int algo) {
        return cu::conv2d_backward_data_workspace_bytes(conv_shape(geometry, "conv2d_backward"), algo);
      },
      py::arg("geometry"), py::arg("algo"));
  m.def(
      "conv2d_backward_filter_workspace_bytes",
      [](const std::vector<int64_t>& geometry, int algo, int tile, int splits) {
        const cu::ConvShape s = conv_shape(geometry, "conv2d_backward");
        std::size_t bytes;
        {
          py::gil_scoped_release release;  // may query the device
          bytes = cu::conv2d_backward_filter_workspace_bytes(s, algo, tile, splits);
        }
        return bytes;
      },
      py::arg("geometry"), py::arg("algo"), py::arg("tile"), py::arg("splits"));

  m.def(
      "conv2d_forward_f32",
      [](uintptr_t x, uintptr_t w, uintptr_t bias, uintptr_t y, uintptr_t workspace, std::size_t workspace_bytes,
         const std::vector<int64_t>& geometry, int algo, int tile, uintptr_t stream) {
        const cu::ConvShape s = conv_shape(geometry, "conv2d");
        cudaError_t err;
        {
          py::gil_scoped_release release;
          err = cu::conv2d_forward_f32(s, dev_ptr<const float>(x), dev_ptr<const float>(w), dev_ptr<const float>(bias),
                                       dev_ptr<float>(y), dev_ptr<void>(workspace), workspace_bytes, algo, tile,
                                       stream_of(stream));
        }
        check(err, "conv2d");
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("y"), py::arg("workspace"), py::arg("workspace_bytes"),
      py::arg("geometry"), py::arg("algo"), py::arg("tile"), py::arg("stream"),
      "float32 conv2d: implicit GEMM (or the direct depthwise kernel), bias fused");
  m.def(
      "conv2d_backward_data_f32",
      [](uintptr_t grad_y, uintptr_t w, uintptr_t grad_x, uintptr_t workspace, std::size_t workspace_bytes,
         const std::vector<int64_t>& geometry, int algo, int tile, uintptr_t stream) {
        const cu::ConvShape s = conv_shape(geometry, "conv2d_backward");
        cudaError_t err;
        {
          py::gil_scoped_release release;
          err = cu::conv2d_backward_data_f32(s, dev_ptr<const float>(grad_y), dev_ptr<const float>(w),
                                             dev_ptr<float>(grad_x), dev_ptr<void>(workspace), workspace_bytes, algo,
                                             tile, stream_of(stream));
        }
        check(err, "conv2d_backward");
      },
      py::arg("grad_y"), py::arg("w"), py::arg("grad_x"), py::arg("workspace"), py::arg("workspace_bytes"),
      py::arg("geometry"), py::arg("algo"), py::arg("tile"), py::arg("stream"),
      "float32 gradient of conv2d with respect to x (implicit GEMM over grad_y)");
  m.def(
      "conv2d_backward_filter_f32",
      [](uintptr_t grad_y, uintptr_t x, uintptr_t grad_w, uintptr_t workspace, std::size_t workspace_bytes,
         const std::vector<int64_t>& geometry, int algo, int tile, int splits, uintptr_t stream) {
        const cu::ConvShape s = conv_shape(geometry, "conv2d_backward");
        cudaError_t err;
        {
          py::gil_scoped_release release;
          err = cu::conv2d_backward_filter_f32(s, dev_ptr<const float>(grad_y), dev_ptr<const float>(x),
                                               dev_ptr<float>(grad_w), dev_ptr<void>(workspace), workspace_bytes,
                                               algo, tile, splits, stream_of(stream));
        }
        check(err, "conv2d_backward");
      },
      py::arg("grad_y"), py::arg("x"), py::arg("grad_w"), py::arg("workspace"), py::arg("workspace_bytes"),
      py::arg("geometry"), py::arg("algo"), py::arg("tile"), py::arg("splits"), py::arg("stream"),
      "float32 gradient of conv2d with respect to w (split-K implicit GEMM, deterministic)");
  m.def(
      "conv2d_backward_bias_f32",
      [](uintptr_t grad_y, uintptr_t grad_b, const std::vector<int64_t>& geometry, uintptr_t stream) {
        const cu::ConvShape s = conv_shape(geometry, "conv2d_backward");
        cudaError_t err;
        {
          py::gil_scoped_release release;
          err = cu::conv2d_backward_bias_f32(s, dev_ptr<const float>(grad_y), dev_ptr<float>(grad_b),
                                             stream_of(stream));
        }
        check(err, "conv2d_backward");
      },
      py::arg("grad_y"), py::arg("grad_b"), py::arg("geometry"), py::arg("stream"),
      "float32 gradient of conv2d with respect to the bias (per-channel sums of grad_y)");

  m.def(
      "conv2d_forward_reference_f32",
      [](uintptr_t x, uintptr_t w, uintptr_t bias, uintptr_t y, const std::vector<int64_t>& geometry,
         uintptr_t stream) {
        const cu::ConvShape s = conv_shape(geometry, "conv2d");
        cudaError_t err;
        {
          py::gil_scoped_release release;
          err = cu::conv2d_forward_reference_f32(s, dev_ptr<const float>(x), dev_ptr<const float>(w),
                                                 dev_ptr<const float>(bias), dev_ptr<float>(y), stream_of(stream));
        }
        check(err, "conv2d");
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("y"), py::arg("geometry"), py::arg("stream"),
      "float32 reference conv2d (one thread per output)");
  m.def(
      "conv2d_backward_data_reference_f32",
      [](uintptr_t grad_y, uintptr_t w, uintptr_t grad_x, const std::vector<int64_t>& geometry, uintptr_t stream) {
        const cu::ConvShape s = conv_shape(geometry, "conv2d_backward");
        cudaError_t err;
        {
          py::gil_scoped_release release;
          err = cu::conv2d_backward_data_reference_f32(s, dev_ptr<const float>(grad_y), dev_ptr<const float>(w),
                                                       dev_ptr<float>(grad_x), stream_of(stream));
        }
        check(err, "conv2d_backward");
      },
      py::arg("grad_y"), py::arg("w"), py::arg("grad_x"), py::arg("geometry"), py::arg("stream"));
  m.def(
      "conv2d_backward_filter_reference_f32",
      [](uintptr_t grad_y, uintptr_t x, uintptr_t grad_w, const std::vector<int64_t>& geometry, uintptr_t stream) {
        const cu::ConvShape s = conv_shape(geometry, "conv2d_backward");
        cudaError_t err;
        {
          py::gil_scoped_release release;
          err = cu::conv2d_backward_filter_reference_f32(s, dev_ptr<const float>(grad_y), dev_ptr<const float>(x),
                                                         dev_ptr<float>(grad_w), stream_of(stream));
        }
        check(err, "conv2d_backward");
      },
      py::arg("grad_y"), py::arg("x"), py::arg("grad_w"), py::arg("geometry"), py::arg("stream"));
}

}  // namespace cuda_bindings
}  // namespace pyfastnn
