// Op registration: signatures and docstrings; the checks live in csrc/ops.
#include <pybind11/pybind11.h>

#include "ops/activation.h"
#include "ops/affine_warp.h"
#include "ops/attention.h"
#include "ops/bias_activation.h"
#include "ops/conv2d.h"
#include "ops/cumsum.h"
#include "ops/group_norm.h"
#include "ops/index_ops.h"
#include "ops/lstm.h"
#include "ops/matmul.h"
#include "ops/optim_step.h"
#include "ops/pool2d.h"
#include "ops/rowwise_ops.h"
#include "ops/sort.h"
#include "runtime/thread_pool.h"

namespace py = pybind11;

namespace pyfastnn {

namespace {
// Every op binds to one thread pool for its whole run (runtime/thread_pool.h):
// the thread count it starts with is the one all its parallel regions get.
const py::call_guard<OpScope> kOpGuard{};
}  // namespace

void bind_ops(py::module_& m) {
  m.def("matmul", &ops::matmul, kOpGuard, py::arg("a"), py::arg("b"), py::arg("bias") = py::none(),
        py::arg("activation") = py::none(), py::arg("trans_a") = false, py::arg("trans_b") = false,
        "act(a @ b + bias) on the CPU; a (M,K)|(B,M,K), b (K,N)|(B,K,N), float32 or float64");
  m.def("bias_activation", &ops::bias_activation, kOpGuard, py::arg("x"), py::arg("bias") = py::none(),
        py::arg("activation") = py::none(), "act(x + bias) for a 2-D float array x and bias (cols,)");
  m.def("conv2d", &ops::conv2d, kOpGuard, py::arg("x"), py::arg("w"), py::arg("bias") = py::none(), py::arg("stride") = 1,
        py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
        "2-D convolution (cross-correlation), NCHW input, OIHW weights, like torch.nn.functional.conv2d");
  m.def("conv2d_backward", &ops::conv2d_backward, kOpGuard, py::arg("grad_y"), py::arg("x"), py::arg("w"),
        py::arg("stride") = 1, py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
        py::arg("need_grad_x") = true, py::arg("need_grad_w") = true,
        "Gradients of conv2d: (grad_x, grad_w, grad_b); a gradient not needed is None");
  m.def("activation", &ops::activation, kOpGuard, py::arg("x"), py::arg("kind"));
  m.def("activation_backward", &ops::activation_backward, kOpGuard, py::arg("grad_y"), py::arg("saved"), py::arg("kind"));
  m.def("dropout", &ops::dropout, kOpGuard, py::arg("x"), py::arg("p"), py::arg("seed"));
  m.def("dropout_backward", &ops::dropout_backward, kOpGuard, py::arg("grad_y"), py::arg("mask"), py::arg("p"));
  m.def("softmax", &ops::softmax, kOpGuard, py::arg("x"), py::arg("log"));
  m.def("softmax_backward", &ops::softmax_backward, kOpGuard, py::arg("grad_y"), py::arg("y"), py::arg("log"));
  m.def("layer_norm", &ops::layer_norm, kOpGuard, py::arg("x"), py::arg("normalized_size"), py::arg("weight"), py::arg("bias"),
        py::arg("eps"));
  m.def("layer_norm_backward", &ops::layer_norm_backward, kOpGuard, py::arg("grad_y"), py::arg("x"), py::arg("mean"),
        py::arg("rstd"), py::arg("weight"), py::arg("normalized_size"), py::arg("weight_grads"));
  m.def("cross_entropy", &ops::cross_entropy, kOpGuard, py::arg("logits"), py::arg("target"), py::arg("ignore_index"),
        py::arg("label_smoothing"));
  m.def("cross_entropy_backward", &ops::cross_entropy_backward, kOpGuard, py::arg("logits"), py::arg("target"),
        py::arg("grad"), py::arg("ignore_index"), py::arg("label_smoothing"));
  m.def("attention", &ops::attention, kOpGuard, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("causal"), py::arg("mask"),
        py::arg("scale"));
  m.def("attention_backward", &ops::attention_backward, kOpGuard, py::arg("grad_out"), py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("out"), py::arg("lse"), py::arg("causal"), py::arg("mask"), py::arg("scale"));
  m.def("lstm", &ops::lstm, kOpGuard, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih"), py::arg("b_hh"));
  m.def("lstm_backward", &ops::lstm_backward, kOpGuard, py::arg("grad_y"), py::arg("grad_hT"), py::arg("grad_cT"), py::arg("x"),
        py::arg("hs"), py::arg("cs"), py::arg("gates"), py::arg("w_ih"), py::arg("w_hh"));
  m.def("max_pool2d", &ops::max_pool2d, kOpGuard, py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(),
        py::arg("padding") = 0, "Max pooling: (y, indices), indices flat in each input plane (int64)");
  m.def("max_pool2d_backward", &ops::max_pool2d_backward, kOpGuard, py::arg("grad_y"), py::arg("indices"),
        py::arg("x_shape"));
  m.def("avg_pool2d", &ops::avg_pool2d, kOpGuard, py::arg("x"), py::arg("kernel_size"), py::arg("stride") = py::none(),
        py::arg("padding") = 0, "Average pooling, padding counted in the divisor (PyTorch's default)");
  m.def("avg_pool2d_backward", &ops::avg_pool2d_backward, kOpGuard, py::arg("grad_y"), py::arg("x_shape"),
        py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0);
  m.def("embedding", &ops::embedding, kOpGuard, py::arg("weight"), py::arg("indices"), py::arg("padding_idx") = py::none(),
        "Rows of weight (V, D) at indices (any shape, int64): indices.shape + (D,)");
  m.def("embedding_backward", &ops::embedding_backward, kOpGuard, py::arg("grad_y"), py::arg("indices"),
        py::arg("num_weights"), py::arg("padding_idx") = py::none(),
        "Dense gradient of embedding (num_weights, D): a deterministic scatter-add of grad_y's rows");
  m.def("index_select", &ops::index_select, kOpGuard, py::arg("x"), py::arg("dim"), py::arg("index"),
        "x's slices at a 1-D int64 index along dim, like torch.index_select");
  m.def("gather", &ops::gather, kOpGuard, py::arg("x"), py::arg("dim"), py::arg("index"), "torch.gather(x, dim, index)");
  m.def("scatter_add", &ops::scatter_add, kOpGuard, py::arg("x"), py::arg("dim"), py::arg("index"), py::arg("src"),
        "torch.scatter_add on a copy of x (or on zeros of shape x, a tuple); deterministic");
  m.def("adaptive_avg_pool2d", &ops::adaptive_avg_pool2d, kOpGuard, py::arg("x"), py::arg("output_size"),
        "Adaptive average pooling to output_size with torch's bins; (1, 1) is a mean per plane");
  m.def("adaptive_avg_pool2d_backward", &ops::adaptive_avg_pool2d_backward, kOpGuard, py::arg("grad_y"), py::arg("x_shape"));
  m.def("adaptive_max_pool2d", &ops::adaptive_max_pool2d, kOpGuard, py::arg("x"), py::arg("output_size"),
        "Adaptive max pooling: (y, indices), indices flat in each input plane (int64)");
  m.def("adaptive_max_pool2d_backward", &ops::adaptive_max_pool2d_backward, kOpGuard, py::arg("grad_y"), py::arg("indices"),
        py::arg("x_shape"));
  m.def("group_norm", &ops::group_norm, kOpGuard, py::arg("x"), py::arg("num_groups"), py::arg("weight") = py::none(),
        py::arg("bias") = py::none(), py::arg("eps") = 1e-5,
        "Group normalization of an (N, C, *) array like torch.native_group_norm: (y, mean, rstd)");
  m.def("group_norm_backward", &ops::group_norm_backward, kOpGuard, py::arg("grad_y"), py::arg("x"), py::arg("mean"),
        py::arg("rstd"), py::arg("num_groups"), py::arg("weight") = py::none(),
        "Gradients of group_norm: (grad_x, grad_weight, grad_bias)");
  m.def("cumsum", &ops::cumsum, kOpGuard, py::arg("x"), py::arg("dim"), py::arg("reverse") = false,
        "Cumulative sum along dim like torch.cumsum (reverse: from the end); floats accumulate in double");
  m.def("topk", &ops::topk, kOpGuard, py::arg("x"), py::arg("k"), py::arg("dim") = -1, py::arg("largest") = true,
        "The k largest (or smallest) along dim, best first: (values, int64 indices); ties: lower index first");
  m.def("sort", &ops::sort, kOpGuard, py::arg("x"), py::arg("dim") = -1, py::arg("descending") = false,
        "Stable sort along dim: (values, int64 indices)");
  m.def("sgd_step", &ops::sgd_step, kOpGuard, py::arg("param"), py::arg("grad"), py::arg("momentum_buf") = py::none(),
        py::kw_only(), py::arg("lr"), py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
        py::arg("nesterov") = false, py::arg("weight_decay") = 0.0, py::arg("first_step") = false,
        "One torch.optim.SGD step in place (param, momentum_buf)");
  m.def("adam_step", &ops::adam_step, kOpGuard, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
        py::kw_only(), py::arg("step"), py::arg("lr") = 1e-3, py::arg("beta1") = 0.9, py::arg("beta2") = 0.999,
        py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0, py::arg("decoupled_weight_decay") = false,
        py::arg("amsgrad") = false, py::arg("max_exp_avg_sq") = py::none(),
        "One torch.optim.Adam (or AdamW, decoupled_weight_decay=True) step in place");
  m.def("rmsprop_step", &ops::rmsprop_step, kOpGuard, py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::kw_only(),
        py::arg("lr") = 1e-2, py::arg("alpha") = 0.99, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
        py::arg("momentum") = 0.0, py::arg("momentum_buf") = py::none(), py::arg("centered") = false,
        py::arg("grad_avg") = py::none(), "One torch.optim.RMSprop step in place");
  m.def("affine_warp", &ops::affine_warp, kOpGuard, py::arg("x"), py::arg("matrix"), py::arg("output_size") = py::none(),
        py::arg("order") = 1, py::arg("fill_mode") = "nearest", py::arg("cval") = 0.0,
        py::arg("flip_cols") = py::none(), py::arg("flip_rows") = py::none(),
        "Affine resampling of channels-last images, scipy.ndimage.affine_transform's semantics (order 0/1)");
}

}  // namespace pyfastnn
