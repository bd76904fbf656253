// CUDA nn bindings: activations, dropout, softmax, layer_norm, cross_entropy,
// optimizer steps, pooling and the LSTM step kernels. Each takes device
// pointers (uintptr_t), sizes and the caller's stream, releases the GIL,
// launches, and turns a launch error into a RuntimeError naming the op. All
// argument checks live in pyfastnn/cuda_ops/nn.py; names carry an "nn_"
// prefix to stay apart from the other families in the shared module.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings/cuda_common.h"
#include "cuda/elementwise/elementwise.h"
#include "cuda/loss/cross_entropy.h"
#include "cuda/lstm/lstm_cell.h"
#include "cuda/norm/norm.h"
#include "cuda/optim/optim.h"
#include "cuda/pool/pool.h"

namespace pyfastnn {
namespace cuda_bindings {

namespace {

namespace py = pybind11;
using std::int64_t;
using std::uintptr_t;
namespace cu = pyfastnn::cuda;

const char* activation_name(int act, bool backward) {
  static const char* fwd[] = {"activation", "relu", "gelu", "sigmoid", "tanh", "gelu_tanh", "silu"};
  static const char* bwd[] = {"activation_backward", "relu_backward", "gelu_backward", "sigmoid_backward",
                              "tanh_backward", "gelu_tanh_backward", "silu_backward"};
  const int i = act >= 1 && act <= 6 ? act : 0;
  return backward ? bwd[i] : fwd[i];
}

cu::StorageType storage(int dtype) { return static_cast<cu::StorageType>(dtype); }
cu::RowImpl row_impl(int impl) { return static_cast<cu::RowImpl>(impl); }

// (planes, H, W, KH, KW, SH, SW, PH, PW, OH, OW), as nn.py packs it.
cu::PoolShape pool_shape(const std::vector<int64_t>& g, const char* op) {
  if (g.size() != 11) throw std::invalid_argument(std::string(op) + ": pool geometry must have 11 entries");
  return cu::PoolShape{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10]};
}

}  // namespace

void bind_nn(pybind11::module_& m) {
  // ------------------------------------------------------------ activations
  m.def(
      "nn_activation_forward",
      [](uintptr_t x, uintptr_t y, int64_t n, int act, int dtype, bool reference, uintptr_t stream) {
        py::gil_scoped_release release;
        const cudaError_t err =
            reference ? cu::activation_forward_reference(dev_ptr<const void>(x), dev_ptr<void>(y), n, act,
                                                         storage(dtype), stream_of(stream))
                      : cu::activation_forward(dev_ptr<const void>(x), dev_ptr<void>(y), n, act, storage(dtype),
                                               stream_of(stream));
        check(err, activation_name(act, false));
      },
      py::arg("x"), py::arg("y"), py::arg("n"), py::arg("act"), py::arg("dtype"), py::arg("reference"),
      py::arg("stream"));
  m.def(
      "nn_activation_backward",
      [](uintptr_t g, uintptr_t saved, uintptr_t gx, int64_t n, int act, int dtype, bool reference, uintptr_t stream) {
        py::gil_scoped_release release;
        const cudaError_t err =
            reference ? cu::activation_backward_reference(dev_ptr<const void>(g), dev_ptr<const void>(saved),
                                                          dev_ptr<void>(gx), n, act, storage(dtype), stream_of(stream))
                      : cu::activation_backward(dev_ptr<const void>(g), dev_ptr<const void>(saved), dev_ptr<void>(gx),
                                                n, act, storage(dtype), stream_of(stream));
        check(err, activation_name(act, true));
      },
      py::arg("grad_y"), py::arg("saved"), py::arg("gx"), py::arg("n"), py::arg("act"), py::arg("dtype"),
      py::arg("reference"), py::arg("stream"));

  // ---------------------------------------------------------------- dropout
  m.def(
      "nn_dropout_forward",
      [](uintptr_t x, uintptr_t y, uintptr_t mask, int64_t n, std::uint64_t seed, std::uint64_t threshold, float scale,
         int dtype, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::dropout_forward(dev_ptr<const void>(x), dev_ptr<void>(y), dev_ptr<std::uint8_t>(mask), n, seed,
                                  threshold, scale, storage(dtype), stream_of(stream)),
              "dropout");
      },
      py::arg("x"), py::arg("y"), py::arg("mask"), py::arg("n"), py::arg("seed"), py::arg("threshold"),
      py::arg("scale"), py::arg("dtype"), py::arg("stream"));
  m.def(
      "nn_dropout_backward",
      [](uintptr_t g, uintptr_t mask, uintptr_t gx, int64_t n, float scale, int dtype, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::dropout_backward(dev_ptr<const void>(g), dev_ptr<const std::uint8_t>(mask), dev_ptr<void>(gx), n,
                                   scale, storage(dtype), stream_of(stream)),
              "dropout_backward");
      },
      py::arg("grad_y"), py::arg("mask"), py::arg("gx"), py::arg("n"), py::arg("scale"), py::arg("dtype"),
      py::arg("stream"));

  // ---------------------------------------------------------------- softmax
  m.def(
      "nn_softmax_forward",
      [](uintptr_t x, uintptr_t y, int64_t rows, int64_t n, bool log, int dtype, int impl, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::softmax_forward(dev_ptr<const void>(x), dev_ptr<void>(y), rows, n, log, storage(dtype),
                                  row_impl(impl), stream_of(stream)),
              log ? "log_softmax" : "softmax");
      },
      py::arg("x"), py::arg("y"), py::arg("rows"), py::arg("n"), py::arg("log"), py::arg("dtype"), py::arg("impl"),
      py::arg("stream"));
  m.def(
      "nn_softmax_backward",
      [](uintptr_t g, uintptr_t y, uintptr_t gx, int64_t rows, int64_t n, bool log, int dtype, int impl,
         uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::softmax_backward(dev_ptr<const void>(g), dev_ptr<const void>(y), dev_ptr<void>(gx), rows, n, log,
                                   storage(dtype), row_impl(impl), stream_of(stream)),
              log ? "log_softmax_backward" : "softmax_backward");
      },
      py::arg("grad_y"), py::arg("y"), py::arg("gx"), py::arg("rows"), py::arg("n"), py::arg("log"), py::arg("dtype"),
      py::arg("impl"), py::arg("stream"));

  // ------------------------------------------------------------- layer norm
  m.def(
      "nn_layer_norm_forward",
      [](uintptr_t x, uintptr_t w, uintptr_t b, uintptr_t y, uintptr_t mean, uintptr_t rstd, int64_t rows, int64_t n,
         double eps, int impl, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::layer_norm_forward(dev_ptr<const float>(x), dev_ptr<const float>(w), dev_ptr<const float>(b),
                                     dev_ptr<float>(y), dev_ptr<float>(mean), dev_ptr<float>(rstd), rows, n, eps,
                                     row_impl(impl), stream_of(stream)),
              "layer_norm");
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("y"), py::arg("mean"), py::arg("rstd"),
      py::arg("rows"), py::arg("n"), py::arg("eps"), py::arg("impl"), py::arg("stream"));
  m.def(
      "nn_layer_norm_backward",
      [](uintptr_t g, uintptr_t x, uintptr_t mean, uintptr_t rstd, uintptr_t w, uintptr_t gx, uintptr_t gw,
         uintptr_t gb, uintptr_t workspace, int64_t rows, int64_t n, int impl, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::layer_norm_backward_input(dev_ptr<const float>(g), dev_ptr<const float>(x),
                                            dev_ptr<const float>(mean), dev_ptr<const float>(rstd),
                                            dev_ptr<const float>(w), dev_ptr<float>(gx), rows, n, row_impl(impl),
                                            stream_of(stream)),
              "layer_norm_backward");
        check(cu::layer_norm_backward_params(dev_ptr<const float>(g), dev_ptr<const float>(x),
                                             dev_ptr<const float>(mean), dev_ptr<const float>(rstd),
                                             dev_ptr<float>(gw), dev_ptr<float>(gb), rows, n,
                                             dev_ptr<float>(workspace), stream_of(stream)),
              "layer_norm_backward");
      },
      py::arg("grad_y"), py::arg("x"), py::arg("mean"), py::arg("rstd"), py::arg("weight"), py::arg("gx"),
      py::arg("gw"), py::arg("gb"), py::arg("workspace"), py::arg("rows"), py::arg("n"), py::arg("impl"),
      py::arg("stream"));
  m.def("nn_column_sum_workspace", &cu::column_sum_workspace, py::arg("rows"), py::arg("n"),
        "floats of workspace column sums over (rows, n) need (twice that for layer_norm_backward)");
  m.def(
      "nn_column_sums",
      [](uintptr_t a, uintptr_t out, int64_t rows, int64_t n, uintptr_t workspace, const std::string& op,
         uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::column_sums(dev_ptr<const float>(a), dev_ptr<float>(out), rows, n, dev_ptr<float>(workspace),
                              stream_of(stream)),
              op.c_str());
      },
      py::arg("a"), py::arg("out"), py::arg("rows"), py::arg("n"), py::arg("workspace"), py::arg("op"),
      py::arg("stream"));

  // ---------------------------------------------------------- cross entropy
  m.def(
      "nn_cross_entropy_forward",
      [](uintptr_t logits, uintptr_t target, int64_t rows, int64_t n, int64_t ignore, double smoothing,
         uintptr_t row_loss, uintptr_t totals, int impl, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::cross_entropy_rows(dev_ptr<const float>(logits), dev_ptr<const int64_t>(target), rows, n, ignore,
                                     smoothing, dev_ptr<double>(row_loss), row_impl(impl), stream_of(stream)),
              "cross_entropy");
        check(cu::cross_entropy_totals(dev_ptr<const double>(row_loss), dev_ptr<const int64_t>(target), rows, n,
                                       ignore, dev_ptr<double>(totals), stream_of(stream)),
              "cross_entropy");
      },
      py::arg("logits"), py::arg("target"), py::arg("rows"), py::arg("n"), py::arg("ignore_index"),
      py::arg("label_smoothing"), py::arg("row_loss"), py::arg("totals"), py::arg("impl"), py::arg("stream"));
  m.def(
      "nn_cross_entropy_count",
      [](uintptr_t target, int64_t rows, int64_t n, int64_t ignore, uintptr_t totals, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::cross_entropy_totals(nullptr, dev_ptr<const int64_t>(target), rows, n, ignore,
                                       dev_ptr<double>(totals), stream_of(stream)),
              "cross_entropy_backward");
      },
      py::arg("target"), py::arg("rows"), py::arg("n"), py::arg("ignore_index"), py::arg("totals"), py::arg("stream"));
  m.def(
      "nn_cross_entropy_backward",
      [](uintptr_t logits, uintptr_t target, int64_t rows, int64_t n, int64_t ignore, double smoothing, double scale,
         uintptr_t grad, int impl, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::cross_entropy_backward(dev_ptr<const float>(logits), dev_ptr<const int64_t>(target), rows, n,
                                         ignore, smoothing, scale, dev_ptr<float>(grad), row_impl(impl),
                                         stream_of(stream)),
              "cross_entropy_backward");
      },
      py::arg("logits"), py::arg("target"), py::arg("rows"), py::arg("n"), py::arg("ignore_index"),
      py::arg("label_smoothing"), py::arg("scale"), py::arg("grad"), py::arg("impl"), py::arg("stream"));

  // -------------------------------------------------------- optimizer steps
  m.def(
      "nn_sgd_step",
      [](uintptr_t param, uintptr_t grad, uintptr_t buf, int64_t n, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov, bool first_step, uintptr_t stream) {
        cu::SgdHyper h;
        h.lr = lr;
        h.momentum = momentum;
        h.dampening = dampening;
        h.weight_decay = weight_decay;
        h.nesterov = nesterov;
        h.first_step = first_step;
        py::gil_scoped_release release;
        check(cu::sgd_step(dev_ptr<float>(param), dev_ptr<const float>(grad), dev_ptr<float>(buf), n, h,
                           stream_of(stream)),
              "sgd_step");
      },
      py::arg("param"), py::arg("grad"), py::arg("momentum_buf"), py::arg("n"), py::arg("lr"), py::arg("momentum"),
      py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("first_step"), py::arg("stream"));
  m.def(
      "nn_adam_step",
      [](uintptr_t param, uintptr_t grad, uintptr_t exp_avg, uintptr_t exp_avg_sq, uintptr_t max_exp_avg_sq, int64_t n,
         double step, double lr, double beta1, double beta2, double eps, double weight_decay,
         bool decoupled_weight_decay, bool amsgrad, uintptr_t stream) {
        cu::AdamHyper h;
        h.step = step;
        h.lr = lr;
        h.beta1 = beta1;
        h.beta2 = beta2;
        h.eps = eps;
        h.weight_decay = weight_decay;
        h.decoupled_weight_decay = decoupled_weight_decay;
        h.amsgrad = amsgrad;
        py::gil_scoped_release release;
        check(cu::adam_step(dev_ptr<float>(param), dev_ptr<const float>(grad), dev_ptr<float>(exp_avg),
                            dev_ptr<float>(exp_avg_sq), dev_ptr<float>(max_exp_avg_sq), n, h, stream_of(stream)),
              "adam_step");
      },
      py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
      py::arg("n"), py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
      py::arg("weight_decay"), py::arg("decoupled_weight_decay"), py::arg("amsgrad"), py::arg("stream"));
  m.def(
      "nn_rmsprop_step",
      [](uintptr_t param, uintptr_t grad, uintptr_t square_avg, uintptr_t grad_avg, uintptr_t buf, int64_t n,
         double lr, double alpha, double eps, double weight_decay, double momentum, bool centered, uintptr_t stream) {
        cu::RmspropHyper h;
        h.lr = lr;
        h.alpha = alpha;
        h.eps = eps;
        h.weight_decay = weight_decay;
        h.momentum = momentum;
        h.centered = centered;
        py::gil_scoped_release release;
        check(cu::rmsprop_step(dev_ptr<float>(param), dev_ptr<const float>(grad), dev_ptr<float>(square_avg),
                               dev_ptr<float>(grad_avg), dev_ptr<float>(buf), n, h, stream_of(stream)),
              "rmsprop_step");
      },
      py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("grad_avg"), py::arg("momentum_buf"),
      py::arg("n"), py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"), py::arg("momentum"),
      py::arg("centered"), py::arg("stream"));

  // ---------------------------------------------------------------- pooling
  m.def(
      "nn_max_pool2d_forward",
      [](uintptr_t x, uintptr_t y, uintptr_t indices, const std::vector<int64_t>& geometry, uintptr_t stream) {
        const cu::PoolShape s = pool_shape(geometry, "max_pool2d");
        py::gil_scoped_release release;
        check(cu::max_pool2d_forward(s, dev_ptr<const float>(x), dev_ptr<float>(y), dev_ptr<int64_t>(indices),
                                     stream_of(stream)),
              "max_pool2d");
      },
      py::arg("x"), py::arg("y"), py::arg("indices"), py::arg("geometry"), py::arg("stream"));
  m.def(
      "nn_avg_pool2d_forward",
      [](uintptr_t x, uintptr_t y, const std::vector<int64_t>& geometry, uintptr_t stream) {
        const cu::PoolShape s = pool_shape(geometry, "avg_pool2d");
        py::gil_scoped_release release;
        check(cu::avg_pool2d_forward(s, dev_ptr<const float>(x), dev_ptr<float>(y), stream_of(stream)), "avg_pool2d");
      },
      py::arg("x"), py::arg("y"), py::arg("geometry"), py::arg("stream"));
  m.def(
      "nn_max_pool2d_backward",
      [](uintptr_t gy, uintptr_t indices, uintptr_t gx, uintptr_t bad_index, bool deterministic,
         const std::vector<int64_t>& geometry, uintptr_t stream) {
        const cu::PoolShape s = pool_shape(geometry, "max_pool2d_backward");
        py::gil_scoped_release release;
        check(cu::max_pool2d_backward(s, dev_ptr<const float>(gy), dev_ptr<const int64_t>(indices), dev_ptr<float>(gx),
                                      dev_ptr<int>(bad_index), deterministic, stream_of(stream)),
              "max_pool2d_backward");
      },
      py::arg("grad_y"), py::arg("indices"), py::arg("gx"), py::arg("bad_index"), py::arg("deterministic"),
      py::arg("geometry"), py::arg("stream"));
  m.def(
      "nn_avg_pool2d_backward",
      [](uintptr_t gy, uintptr_t gx, const std::vector<int64_t>& geometry, uintptr_t stream) {
        const cu::PoolShape s = pool_shape(geometry, "avg_pool2d_backward");
        py::gil_scoped_release release;
        check(cu::avg_pool2d_backward(s, dev_ptr<const float>(gy), dev_ptr<float>(gx), stream_of(stream)),
              "avg_pool2d_backward");
      },
      py::arg("grad_y"), py::arg("gx"), py::arg("geometry"), py::arg("stream"));

  // ------------------------------------------------------------------- LSTM
  m.def(
      "nn_lstm_cell_forward",
      [](uintptr_t gates, uintptr_t hproj, uintptr_t c_prev, uintptr_t c, uintptr_t h, int64_t B, int64_t H,
         const std::string& op, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::lstm_cell_forward(dev_ptr<float>(gates), dev_ptr<const float>(hproj), dev_ptr<const float>(c_prev),
                                    dev_ptr<float>(c), dev_ptr<float>(h), B, H, stream_of(stream)),
              op.c_str());
      },
      py::arg("gates"), py::arg("hproj"), py::arg("c_prev"), py::arg("c"), py::arg("h"), py::arg("B"), py::arg("H"),
      py::arg("op"), py::arg("stream"));
  m.def(
      "nn_lstm_cell_backward",
      [](uintptr_t dh_next, uintptr_t grad_y, uintptr_t dc, uintptr_t gates, uintptr_t c_prev, uintptr_t c,
         uintptr_t dG, int64_t B, int64_t H, uintptr_t stream) {
        py::gil_scoped_release release;
        check(cu::lstm_cell_backward(dev_ptr<const float>(dh_next), dev_ptr<const float>(grad_y), dev_ptr<float>(dc),
                                     dev_ptr<const float>(gates), dev_ptr<const float>(c_prev),
                                     dev_ptr<const float>(c), dev_ptr<float>(dG), B, H, stream_of(stream)),
              "lstm_backward");
      },
      py::arg("dh_next"), py::arg("grad_y"), py::arg("dc"), py::arg("gates"), py::arg("c_prev"), py::arg("c"),
      py::arg("dG"), py::arg("B"), py::arg("H"), py::arg("stream"));
}

}  // namespace cuda_bindings
}  // namespace pyfastnn
