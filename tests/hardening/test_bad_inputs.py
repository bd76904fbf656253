"""A catalogue of bad inputs across the public surface (SPEC "Bad input").

Every case is (id, call, expected exception type, words the message must
contain: the op / module / API name and the argument at fault). All cases run
in this one process, so a case that crashed the interpreter (a segfault, an
abort in the native code) instead of raising would take the whole module down
with it; the last test checks that the process is still healthy afterwards.
"""
import gc
import os
import tempfile

import numpy as np
import pytest

import pyfastnn
import pyfastnn.distributed as dist
from pyfastnn import keras, metrics, models, nn, ops, optim
from pyfastnn.keras import Sequential as KSequential
from pyfastnn.keras import layers as klayers
from pyfastnn.keras import optimizers as koptimizers
from pyfastnn.keras.saving import load_weights_h5, save_weights_h5

from conftest import assert_raises_naming


def f32(*shape):
    return np.ones(shape, np.float32)


def _arr(shape, dtype):
    return np.ones(shape, dtype)


def _lstm_cache():
    return ops.lstm(f32(3, 2, 4), f32(2, 6), f32(2, 6), f32(24, 4), f32(24, 6))[3]


def _pool_indices():
    return ops.max_pool2d(f32(1, 1, 4, 4), 2)[1]


def _ln_stats():
    _, mean, rstd = ops.layer_norm(f32(3, 4), 4)
    return mean, rstd


def _attn_out():
    return ops.attention(f32(1, 2, 3, 4), f32(1, 2, 5, 4), f32(1, 2, 5, 4))


def _param(*shape):
    p = nn.Parameter(f32(*shape))
    return p


def _compiled_mlp():
    m = nn.Sequential(nn.Linear(4, 3))
    m.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    return m


def _step_with_bad_grad():
    p = _param(3)
    opt = optim.SGD([p], lr=0.1)
    p.grad = pyfastnn.tensor(f32(4))
    opt.step()


def _keras_dense_built():
    layer = klayers.Dense(3)
    layer(f32(2, 4))
    return layer


def _built(layer, shape):
    layer(np.zeros(shape, np.float32))
    return layer


def _keras_model():
    model = KSequential([klayers.Dense(3, input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _with_file(content, suffix, call):
    """call(path) on a temporary file holding content (removed afterwards)."""
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        return call(path)
    finally:
        os.remove(path)


def _mha_forward(**kwargs):
    mha = nn.MultiheadAttention(6, 2)
    q = f32(3, 2, 6)
    return mha(q, q, q, need_weights=False, **kwargs)


def _lstm_with_hx(h0, c0):
    return nn.LSTM(4, 5)(f32(3, 2, 4), (h0, c0))


def _load_state(sd_fn):
    m = nn.Linear(4, 3)
    sd = sd_fn(dict(m.state_dict()))
    m.load_state_dict(sd)


def _drop(d, key):
    d.pop(key)
    return d


def _reshape_entry(d, key, shape):
    d[key] = np.zeros(shape, np.float32)
    return d


CASES = [
    # ------------------------------------------------------------ ops.matmul / bias_activation
    ("matmul-int32", lambda: ops.matmul(_arr((2, 3), np.int32), f32(3, 4)), TypeError,
     ["matmul", "'a'", "int32"]),
    ("matmul-complex", lambda: ops.matmul(f32(2, 3), _arr((3, 4), np.complex64)), TypeError,
     ["matmul", "'b'", "complex64"]),
    ("matmul-1d", lambda: ops.matmul(f32(3), f32(3, 4)), ValueError, ["matmul", "'a'"]),
    ("matmul-inner-mismatch", lambda: ops.matmul(f32(2, 3), f32(5, 4)), ValueError, ["matmul", "'a'", "'b'"]),
    ("matmul-list", lambda: ops.matmul([[1.0, 2.0]], f32(2, 2)), TypeError, ["matmul", "'a'", "list"]),
    ("matmul-none", lambda: ops.matmul(None, f32(2, 2)), TypeError, ["matmul", "'a'"]),
    ("matmul-bias-shape", lambda: ops.matmul(f32(2, 3), f32(3, 4), f32(5)), ValueError, ["matmul", "'bias'"]),
    ("matmul-activation", lambda: ops.matmul(f32(2, 3), f32(3, 4), activation="swish"), ValueError,
     ["matmul", "'activation'", "swish"]),
    ("bias_activation-float16", lambda: ops.bias_activation(_arr((2, 3), np.float16)), TypeError,
     ["bias_activation", "'x'", "float16"]),
    ("bias_activation-3d", lambda: ops.bias_activation(f32(2, 3, 4)), ValueError, ["bias_activation", "'x'"]),
    ("bias_activation-bias-shape", lambda: ops.bias_activation(f32(2, 3), f32(4)), ValueError,
     ["bias_activation", "'bias'"]),
    ("bias_activation-activation", lambda: ops.bias_activation(f32(2, 3), activation="elu"), ValueError,
     ["bias_activation", "'activation'"]),
    # ------------------------------------------------------------ ops.conv2d (+backward)
    ("conv2d-int32", lambda: ops.conv2d(_arr((1, 1, 4, 4), np.int32), f32(1, 1, 3, 3)), TypeError,
     ["conv2d", "'x'", "int32"]),
    ("conv2d-w-3d", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(1, 3, 3)), ValueError, ["conv2d", "'w'"]),
    ("conv2d-channels", lambda: ops.conv2d(f32(1, 2, 4, 4), f32(1, 3, 3, 3)), ValueError, ["conv2d", "'w'"]),
    ("conv2d-stride-zero", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), stride=0), ValueError,
     ["conv2d", "'stride'"]),
    ("conv2d-stride-negative", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), stride=-1), ValueError,
     ["conv2d", "'stride'"]),
    ("conv2d-padding-negative", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), padding=-1), ValueError,
     ["conv2d", "'padding'"]),
    ("conv2d-padding-string", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), padding="full"), ValueError,
     ["conv2d", "'padding'"]),
    ("conv2d-dilation-zero", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), dilation=0), ValueError,
     ["conv2d", "'dilation'"]),
    ("conv2d-kernel-too-large", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 7, 7), padding=1), ValueError,
     ["conv2d", "kernel", "'x'", "(6x6)"]),
    ("conv2d-groups", lambda: ops.conv2d(f32(1, 3, 4, 4), f32(2, 1, 3, 3), groups=2), ValueError,
     ["conv2d", "'x'", "groups=2"]),
    ("conv2d-groups-zero", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(1, 1, 3, 3), groups=0), ValueError,
     ["conv2d", "'groups'"]),
    ("conv2d-bias-shape", lambda: ops.conv2d(f32(1, 1, 4, 4), f32(2, 1, 3, 3), f32(3)), ValueError,
     ["conv2d", "'bias'"]),
    ("conv2d-string", lambda: ops.conv2d("image", f32(1, 1, 3, 3)), TypeError, ["conv2d", "'x'", "str"]),
    ("conv2d-none", lambda: ops.conv2d(None, f32(1, 1, 3, 3)), TypeError, ["conv2d", "'x'"]),
    ("conv2d-empty", lambda: ops.conv2d(f32(1, 1, 0, 4), f32(1, 1, 3, 3)), ValueError, ["conv2d", "'x'"]),
    ("conv2d_backward-grad_y", lambda: ops.conv2d_backward(f32(1, 2, 5, 5), f32(1, 1, 4, 4), f32(2, 1, 3, 3)),
     ValueError, ["conv2d_backward", "'grad_y'"]),
    ("conv2d_backward-dtype", lambda: ops.conv2d_backward(_arr((1, 2, 2, 2), np.float16), f32(1, 1, 4, 4),
                                                          f32(2, 1, 3, 3)),
     TypeError, ["conv2d_backward", "'grad_y'", "float16"]),
    # ------------------------------------------------------------ ops pooling
    ("max_pool2d-kernel-zero", lambda: ops.max_pool2d(f32(1, 1, 4, 4), 0), ValueError,
     ["max_pool2d", "'kernel_size'"]),
    ("max_pool2d-kernel-too-large", lambda: ops.max_pool2d(f32(1, 1, 4, 4), 5), ValueError, ["max_pool2d"]),
    ("max_pool2d-padding", lambda: ops.max_pool2d(f32(1, 1, 4, 4), 2, padding=2), ValueError,
     ["max_pool2d", "'padding'"]),
    ("max_pool2d-stride-negative", lambda: ops.max_pool2d(f32(1, 1, 4, 4), 2, stride=-1), ValueError,
     ["max_pool2d", "'stride'"]),
    ("max_pool2d-2d", lambda: ops.max_pool2d(f32(4, 4), 2), ValueError, ["max_pool2d", "'x'"]),
    ("max_pool2d-complex", lambda: ops.max_pool2d(_arr((1, 1, 4, 4), np.complex64), 2), TypeError,
     ["max_pool2d", "'x'", "complex64"]),
    ("max_pool2d_backward-indices-dtype",
     lambda: ops.max_pool2d_backward(f32(1, 1, 2, 2), _pool_indices().astype(np.float32), (1, 1, 4, 4)),
     TypeError, ["max_pool2d_backward", "'indices'", "float32"]),
    ("max_pool2d_backward-indices-range",
     lambda: ops.max_pool2d_backward(f32(1, 1, 2, 2), np.full((1, 1, 2, 2), 100, np.int64), (1, 1, 4, 4)),
     ValueError, ["max_pool2d_backward", "'indices'"]),
    ("max_pool2d_backward-x_shape",
     lambda: ops.max_pool2d_backward(f32(1, 1, 2, 2), _pool_indices(), (1, 2, 4, 4)),
     ValueError, ["max_pool2d_backward", "'x_shape'"]),
    ("avg_pool2d-stride-zero", lambda: ops.avg_pool2d(f32(1, 1, 4, 4), 2, stride=0), ValueError,
     ["avg_pool2d", "'stride'"]),
    ("avg_pool2d-int64", lambda: ops.avg_pool2d(_arr((1, 1, 4, 4), np.int64), 2), TypeError,
     ["avg_pool2d", "'x'", "int64"]),
    ("avg_pool2d_backward-grad_y", lambda: ops.avg_pool2d_backward(f32(1, 1, 3, 3), (1, 1, 4, 4), 2), ValueError,
     ["avg_pool2d_backward", "'grad_y'"]),
    ("avg_pool2d_backward-x_shape", lambda: ops.avg_pool2d_backward(f32(1, 1, 2, 2), (1, 1), 2), ValueError,
     ["avg_pool2d_backward", "'x_shape'"]),
    # ------------------------------------------------------------ ops activations
    ("relu-int32", lambda: ops.relu(_arr(4, np.int32)), TypeError, ["relu", "'x'", "int32"]),
    ("gelu-float16", lambda: ops.gelu(_arr(4, np.float16)), TypeError, ["gelu", "'x'", "float16"]),
    ("sigmoid-string", lambda: ops.sigmoid("x"), TypeError, ["sigmoid", "'x'", "str"]),
    ("tanh-none", lambda: ops.tanh(None), TypeError, ["tanh", "'x'"]),
    ("relu_backward-shape", lambda: ops.relu_backward(f32(3), f32(4)), ValueError, ["relu_backward", "'x'"]),
    ("gelu_backward-dtype", lambda: ops.gelu_backward(f32(3), np.ones(3, np.float64)), TypeError,
     ["gelu_backward", "'x'"]),
    ("sigmoid_backward-shape", lambda: ops.sigmoid_backward(f32(2, 3), f32(3, 2)), ValueError,
     ["sigmoid_backward", "'y'"]),
    ("tanh_backward-list", lambda: ops.tanh_backward([1.0], f32(1)), TypeError, ["tanh_backward", "'grad_y'"]),
    # ------------------------------------------------------------ ops softmax family
    ("softmax-axis", lambda: ops.softmax(f32(2, 3), axis=2), ValueError, ["softmax", "'axis'"]),
    ("softmax-int", lambda: ops.softmax(_arr((2, 3), np.int64)), TypeError, ["softmax", "'x'", "int64"]),
    ("log_softmax-axis-float", lambda: ops.log_softmax(f32(2, 3), axis=1.0), TypeError,
     ["log_softmax", "'axis'"]),
    ("softmax_backward-shape", lambda: ops.softmax_backward(f32(2, 3), f32(2, 4)), ValueError,
     ["softmax_backward", "'y'"]),
    ("log_softmax_backward-dtype", lambda: ops.log_softmax_backward(f32(2, 3), _arr((2, 3), np.float64)),
     TypeError, ["log_softmax_backward", "'y'"]),
    # ------------------------------------------------------------ ops layer norm
    ("layer_norm-shape", lambda: ops.layer_norm(f32(3, 4), 5), ValueError, ["layer_norm", "'normalized_shape'"]),
    ("layer_norm-weight", lambda: ops.layer_norm(f32(3, 4), 4, f32(5)), ValueError, ["layer_norm", "'weight'"]),
    ("layer_norm-eps", lambda: ops.layer_norm(f32(3, 4), 4, eps="tiny"), TypeError,
     ["layer_norm", "'eps'", "str"]),
    ("layer_norm-eps-negative", lambda: ops.layer_norm(f32(3, 4), 4, eps=-1.0), ValueError,
     ["layer_norm", "'eps'"]),
    ("layer_norm-complex", lambda: ops.layer_norm(_arr((3, 4), np.complex128), 4), TypeError,
     ["layer_norm", "'x'", "complex128"]),
    ("layer_norm_backward-mean", lambda: ops.layer_norm_backward(f32(3, 4), f32(3, 4), f32(2), _ln_stats()[1], 4),
     ValueError, ["layer_norm_backward", "'mean'"]),
    # ------------------------------------------------------------ ops cross entropy
    ("cross_entropy-target-float", lambda: ops.cross_entropy(f32(3, 4), np.array([0.0, 1.0, 2.0])), TypeError,
     ["cross_entropy", "'target'", "float64"]),
    ("cross_entropy-target-range", lambda: ops.cross_entropy(f32(3, 4), np.array([0, 1, 7])), ValueError,
     ["cross_entropy", "'target'", "7"]),
    ("cross_entropy-target-negative", lambda: ops.cross_entropy(f32(3, 4), np.array([0, -3, 1])), ValueError,
     ["cross_entropy", "'target'", "-3"]),
    ("cross_entropy-target-length", lambda: ops.cross_entropy(f32(3, 4), np.array([0, 1])), ValueError,
     ["cross_entropy", "'target'"]),
    ("cross_entropy-logits-1d", lambda: ops.cross_entropy(f32(4), np.array([0])), ValueError,
     ["cross_entropy", "'logits'"]),
    ("cross_entropy-label_smoothing", lambda: ops.cross_entropy(f32(3, 4), np.array([0, 1, 2]),
                                                                label_smoothing=1.5),
     ValueError, ["cross_entropy", "'label_smoothing'"]),
    ("cross_entropy-ignore_index", lambda: ops.cross_entropy(f32(3, 4), np.array([0, 1, 2]), ignore_index="none"),
     TypeError, ["cross_entropy", "'ignore_index'", "str"]),
    ("cross_entropy_backward-grad", lambda: ops.cross_entropy_backward(f32(3, 4), np.array([0, 1, 2]), "one"),
     TypeError, ["cross_entropy_backward", "'grad'", "str"]),
    ("cross_entropy_backward-range", lambda: ops.cross_entropy_backward(f32(3, 4), np.array([0, 1, 4])),
     ValueError, ["cross_entropy_backward", "'target'"]),
    # ------------------------------------------------------------ ops dropout
    ("dropout-p-high", lambda: ops.dropout(f32(4), p=1.5), ValueError, ["dropout", "'p'", "1.5"]),
    ("dropout-p-negative", lambda: ops.dropout(f32(4), p=-0.1), ValueError, ["dropout", "'p'"]),
    ("dropout-int32", lambda: ops.dropout(_arr(4, np.int32), p=0.5, seed=1), TypeError,
     ["dropout", "'x'", "int32"]),
    ("dropout-list", lambda: ops.dropout([1.0, 2.0], p=0.5), TypeError, ["dropout", "'x'", "list"]),
    ("dropout_backward-mask-shape", lambda: ops.dropout_backward(f32(3, 4), np.ones((2, 2), np.uint8)),
     ValueError, ["dropout_backward", "'mask'"]),
    ("dropout_backward-mask-dtype", lambda: ops.dropout_backward(f32(3, 4), f32(3, 4)), TypeError,
     ["dropout_backward", "'mask'", "float32"]),
    # ------------------------------------------------------------ ops gelu_tanh/silu, indexing, pools, norms, scans
    ("gelu_tanh-int32", lambda: ops.gelu_tanh(_arr(4, np.int32)), TypeError, ["gelu_tanh", "'x'", "int32"]),
    ("gelu_tanh_backward-shape", lambda: ops.gelu_tanh_backward(f32(3), f32(4)), ValueError,
     ["gelu_tanh_backward", "'x'"]),
    ("silu-list", lambda: ops.silu([1.0]), TypeError, ["silu", "'x'", "list"]),
    ("silu_backward-dtype", lambda: ops.silu_backward(f32(3), np.ones(3)), TypeError, ["silu_backward", "'x'"]),
    ("embedding-index-range", lambda: ops.embedding(f32(5, 2), np.array([5])), IndexError,
     ["embedding", "index 5", "'indices'"]),
    ("embedding_backward-num_weights", lambda: ops.embedding_backward(f32(1, 2), np.array([0]), -2), ValueError,
     ["embedding_backward", "'num_weights'"]),
    ("index_select-index-2d", lambda: ops.index_select(f32(3, 2), 0, np.zeros((2, 2), np.int64)), ValueError,
     ["index_select", "'index'"]),
    ("gather-index-float", lambda: ops.gather(f32(3, 2), 0, f32(3, 2)), TypeError, ["gather", "'index'", "float32"]),
    ("scatter_add-src-shape", lambda: ops.scatter_add(f32(3, 2), 0, np.zeros((3, 2), np.int64), f32(2, 2)),
     ValueError, ["scatter_add", "'index'", "'src'"]),
    ("adaptive_avg_pool2d-output_size", lambda: ops.adaptive_avg_pool2d(f32(1, 1, 4, 4), -1), ValueError,
     ["adaptive_avg_pool2d", "'output_size'"]),
    ("adaptive_avg_pool2d_backward-shape", lambda: ops.adaptive_avg_pool2d_backward(f32(1, 2, 1, 1), (1, 3, 4, 4)),
     ValueError, ["adaptive_avg_pool2d_backward", "'grad_y'"]),
    ("adaptive_max_pool2d-2d", lambda: ops.adaptive_max_pool2d(f32(4, 4), 1), ValueError,
     ["adaptive_max_pool2d", "'x'"]),
    ("adaptive_max_pool2d_backward-indices", lambda: ops.adaptive_max_pool2d_backward(
        f32(1, 1, 1, 1), np.full((1, 1, 1, 1), 99), (1, 1, 4, 4)), ValueError,
     ["adaptive_max_pool2d_backward", "'indices'"]),
    ("group_norm-groups", lambda: ops.group_norm(f32(2, 6, 3), 4), ValueError, ["group_norm", "'num_groups'"]),
    ("group_norm_backward-mean", lambda: ops.group_norm_backward(f32(2, 4), f32(2, 4), f32(3), f32(4), 2),
     ValueError, ["group_norm_backward", "'mean'"]),
    ("cumsum-dim", lambda: ops.cumsum(f32(3), 1), ValueError, ["cumsum", "'dim'"]),
    ("topk-k", lambda: ops.topk(f32(3), 4), ValueError, ["topk", "'k'"]),
    ("sort-dtype", lambda: ops.sort(_arr(3, np.int8)), TypeError, ["sort", "'x'", "int8"]),
    ("dropout_backward-p", lambda: ops.dropout_backward(f32(3), np.ones(3, np.uint8), p=1.5), ValueError,
     ["dropout_backward", "'p'"]),
    ("dropout-p-eval", lambda: ops.dropout(f32(4), p=1.5, training=False), ValueError, ["dropout", "'p'"]),
    ("dropout-seed-string", lambda: ops.dropout(f32(4), p=0.5, seed="abc"), TypeError, ["dropout", "'seed'", "str"]),
    ("dropout-p-string", lambda: ops.dropout(f32(4), p="half"), TypeError, ["dropout", "'p'", "str"]),
    # ------------------------------------------------------------ ops LSTM
    ("lstm-h0-shape", lambda: ops.lstm(f32(3, 2, 4), f32(2, 5), f32(2, 6), f32(24, 4), f32(24, 6)), ValueError,
     ["lstm", "'h0'"]),
    ("lstm-x-2d", lambda: ops.lstm(f32(2, 4), f32(2, 6), f32(2, 6), f32(24, 4), f32(24, 6)), ValueError,
     ["lstm", "'x'"]),
    ("lstm-w_ih-shape", lambda: ops.lstm(f32(3, 2, 4), f32(2, 6), f32(2, 6), f32(24, 5), f32(24, 6)), ValueError,
     ["lstm", "'w_ih'"]),
    ("lstm-b_hh-shape", lambda: ops.lstm(f32(3, 2, 4), f32(2, 6), f32(2, 6), f32(24, 4), f32(24, 6), f32(24),
                                         f32(23)),
     ValueError, ["lstm", "'b_hh'"]),
    ("lstm-dtype-mix", lambda: ops.lstm(_arr((3, 2, 4), np.float64), f32(2, 6), f32(2, 6), f32(24, 4),
                                        f32(24, 6)),
     TypeError, ["lstm", "dtype"]),
    ("lstm_backward-cache", lambda: ops.lstm_backward(None, None, None, (1, 2, 3)), TypeError,
     ["lstm_backward", "'cache'"]),
    ("lstm_backward-grad_y", lambda: ops.lstm_backward(f32(5, 5, 5), None, None, _lstm_cache()), ValueError,
     ["lstm_backward", "'grad_y'"]),
    ("lstm_cell-x-3d", lambda: ops.lstm_cell(f32(1, 2, 4), f32(2, 6), f32(2, 6), f32(24, 4), f32(24, 6)),
     ValueError, ["lstm_cell", "'x'"]),
    ("lstm_cell-c-shape", lambda: ops.lstm_cell(f32(2, 4), f32(2, 6), f32(3, 6), f32(24, 4), f32(24, 6)),
     ValueError, ["lstm_cell", "'c'"]),
    ("lstm_cell-h-shape", lambda: ops.lstm_cell(f32(2, 4), f32(2, 7), f32(2, 6), f32(24, 4), f32(24, 6)),
     ValueError, ["lstm_cell", "'h'"]),
    # ------------------------------------------------------------ ops optimizer steps
    ("sgd_step-lr-negative", lambda: ops.sgd_step(f32(3), f32(3), lr=-0.1), ValueError, ["sgd_step", "'lr'"]),
    ("sgd_step-grad-shape", lambda: ops.sgd_step(f32(3), f32(4), lr=0.1), ValueError, ["sgd_step", "'grad'"]),
    ("sgd_step-momentum-buf", lambda: ops.sgd_step(f32(3), f32(3), lr=0.1, momentum=0.9), ValueError,
     ["sgd_step", "'momentum_buf'"]),
    ("sgd_step-int-param", lambda: ops.sgd_step(_arr(3, np.int32), _arr(3, np.int32), lr=0.1), TypeError,
     ["sgd_step", "'param'", "int32"]),
    ("adam_step-beta1", lambda: ops.adam_step(f32(3), f32(3), f32(3), f32(3), step=1, beta1=1.5), ValueError,
     ["adam_step", "'beta1'"]),
    ("adam_step-step-zero", lambda: ops.adam_step(f32(3), f32(3), f32(3), f32(3), step=0), ValueError,
     ["adam_step", "'step'"]),
    ("adam_step-exp_avg-shape", lambda: ops.adam_step(f32(3), f32(3), f32(4), f32(3), step=1), ValueError,
     ["adam_step", "'exp_avg'"]),
    ("adam_step-amsgrad", lambda: ops.adam_step(f32(3), f32(3), f32(3), f32(3), step=1, amsgrad=True),
     ValueError, ["adam_step", "'max_exp_avg_sq'"]),
    ("rmsprop_step-alpha", lambda: ops.rmsprop_step(f32(3), f32(3), f32(3), alpha=-0.5), ValueError,
     ["rmsprop_step", "'alpha'"]),
    ("rmsprop_step-centered", lambda: ops.rmsprop_step(f32(3), f32(3), f32(3), centered=True), ValueError,
     ["rmsprop_step", "'grad_avg'"]),
    ("rmsprop_step-square_avg-dtype", lambda: ops.rmsprop_step(f32(3), f32(3), _arr(3, np.float64)), TypeError,
     ["rmsprop_step", "'square_avg'"]),
    # ------------------------------------------------------------ ops attention
    ("attention-mask-shape", lambda: ops.attention(f32(1, 2, 3, 4), f32(1, 2, 5, 4), f32(1, 2, 5, 4),
                                                   mask=np.ones((3, 4), bool)),
     ValueError, ["attention", "'mask'"]),
    ("attention-mask-dtype", lambda: ops.attention(f32(1, 1, 3, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4),
                                                   mask=np.ones((3, 3), np.int32)),
     TypeError, ["attention", "'mask'", "int32"]),
    ("attention-q-3d", lambda: ops.attention(f32(2, 3, 4), f32(1, 2, 3, 4), f32(1, 2, 3, 4)), ValueError,
     ["attention", "'q'"]),
    ("attention-v-shape", lambda: ops.attention(f32(1, 2, 3, 4), f32(1, 2, 5, 4), f32(1, 2, 6, 4)), ValueError,
     ["attention", "'v'"]),
    ("attention-head-dim", lambda: ops.attention(f32(1, 2, 3, 4), f32(1, 2, 5, 8), f32(1, 2, 5, 8)), ValueError,
     ["attention", "'k'"]),
    ("attention-scale", lambda: ops.attention(f32(1, 1, 2, 4), f32(1, 1, 2, 4), f32(1, 1, 2, 4), scale="auto"),
     TypeError, ["attention", "'scale'", "str"]),
    ("attention-scale-negative", lambda: ops.attention(f32(1, 1, 2, 4), f32(1, 1, 2, 4), f32(1, 1, 2, 4),
                                                       scale=-1.0),
     ValueError, ["attention", "'scale'"]),
    ("attention-int64", lambda: ops.attention(*[_arr((1, 1, 2, 4), np.int64)] * 3), TypeError,
     ["attention", "'q'", "int64"]),
    ("attention_backward-lse", lambda: ops.attention_backward(f32(1, 2, 3, 4), f32(1, 2, 3, 4), f32(1, 2, 5, 4),
                                                              f32(1, 2, 5, 4), _attn_out()[0], f32(1, 2, 2)),
     ValueError, ["attention_backward", "'lse'"]),
    ("attention_backward-grad_out", lambda: ops.attention_backward(f32(1, 2, 2, 4), f32(1, 2, 3, 4),
                                                                   f32(1, 2, 5, 4), f32(1, 2, 5, 4),
                                                                   *_attn_out()),
     ValueError, ["attention_backward", "'grad_out'"]),
    ("affine_warp-fill_mode", lambda: ops.affine_warp(f32(4, 4, 3), np.eye(2, 3), fill_mode="mirror"), ValueError,
     ["affine_warp", "'fill_mode'"]),
    ("affine_warp-matrix", lambda: ops.affine_warp(f32(2, 4, 4, 3), np.eye(3)), ValueError, ["affine_warp", "'matrix'"]),
    ("affine_warp-x-dtype", lambda: ops.affine_warp(_arr((4, 4, 3), np.int32), np.eye(2, 3)), TypeError,
     ["affine_warp", "'x'"]),
    # ------------------------------------------------------------ Tensor
    ("tensor-string", lambda: pyfastnn.tensor("abc"), TypeError, ["tensor", "str", "<U3"]),
    ("tensor-string-array", lambda: pyfastnn.tensor(np.array(["a", "b"])), TypeError, ["tensor", "<U1"]),
    ("tensor-object", lambda: pyfastnn.tensor([object()]), TypeError, ["tensor", "list"]),
    ("tensor-ragged", lambda: pyfastnn.tensor([[1.0, 2.0], [3.0]]), TypeError, ["tensor", "list"]),
    ("tensor-dtype", lambda: pyfastnn.tensor([1.0], dtype="complex"), TypeError, ["tensor", "dtype", "complex"]),
    # torch's error types: RuntimeError for shape mismatches, IndexError for dims out of range
    ("tensor-reshape", lambda: pyfastnn.tensor(f32(2, 3)).reshape(4, 2), RuntimeError, ["shape", "[4, 2]", "6"]),
    ("tensor-matmul", lambda: pyfastnn.tensor(f32(2, 3)) @ pyfastnn.tensor(f32(4, 2)), RuntimeError,
     ["mat1 and mat2", "2x3", "4x2"]),
    ("tensor-to", lambda: pyfastnn.tensor(f32(2)).to("tpu"), ValueError, ["to", "tpu"]),
    ("tensor-backward-nonscalar", lambda: (pyfastnn.tensor(f32(2), requires_grad=True) * 2).backward(),
     RuntimeError, ["backward"]),
    # ------------------------------------------------------------ nn modules
    ("Linear-in_features", lambda: nn.Linear(-1, 3), ValueError, ["Linear", "'in_features'"]),
    ("Linear-input-features", lambda: nn.Linear(4, 3)(f32(2, 5)), ValueError, ["Linear", "in_features", "5"]),
    ("Linear-input-int", lambda: nn.Linear(4, 3)(_arr((2, 4), np.int32)), TypeError, ["linear", "int32"]),
    ("Linear-input-none", lambda: nn.Linear(4, 3)(None), TypeError, ["linear", "'input'", "None"]),
    ("functional-relu-none", lambda: nn.functional.relu(None), TypeError, ["relu", "'input'", "None"]),
    ("functional-sdpa-none", lambda: nn.functional.scaled_dot_product_attention(f32(2, 3, 4), None, f32(2, 3, 4)),
     TypeError, ["scaled_dot_product_attention", "'key'", "None"]),
    ("functional-one_hot-float", lambda: nn.functional.one_hot(f32(3)), TypeError, ["one_hot", "'target'"]),
    ("Conv2d-input-none", lambda: nn.Conv2d(1, 1, 3)(None), TypeError, ["conv2d", "'input'", "None"]),
    ("Conv2d-groups", lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, ["Conv2d", "groups"]),
    ("Conv2d-kernel_size", lambda: nn.Conv2d(3, 4, 0), ValueError, ["Conv2d", "'kernel_size'"]),
    ("Conv2d-stride", lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, ["Conv2d", "'stride'"]),
    ("Conv2d-dilation", lambda: nn.Conv2d(3, 4, 3, dilation=(1, 2, 3)), ValueError, ["Conv2d", "'dilation'"]),
    ("Conv2d-padding-negative", lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, ["Conv2d", "'padding'"]),
    ("Conv2d-padding", lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, ["Conv2d", "'padding'", "full"]),
    ("Conv2d-input-channels", lambda: nn.Conv2d(3, 4, 3)(f32(1, 2, 8, 8)), ValueError,
     ["Conv2d", "in_channels"]),
    ("Conv2d-kernel-too-large", lambda: nn.Conv2d(1, 1, 5)(f32(1, 1, 3, 3)), ValueError, ["conv2d"]),
    ("MaxPool2d-kernel", lambda: nn.MaxPool2d(0)(f32(1, 1, 4, 4)), ValueError, ["max_pool2d", "'kernel_size'"]),
    ("AvgPool2d-too-large", lambda: nn.AvgPool2d(9)(f32(1, 1, 4, 4)), ValueError, ["avg_pool2d"]),
    ("Dropout-p", lambda: nn.Dropout(p=1.5), ValueError, ["Dropout", "'p'", "1.5"]),
    ("ReLU-string", lambda: nn.ReLU()("abc"), TypeError, ["relu", "'input'", "str"]),
    ("Sigmoid-string", lambda: nn.Sigmoid()("abc"), TypeError, ["sigmoid", "'input'", "str"]),
    ("Tanh-none", lambda: nn.Tanh()(None), TypeError, ["tanh", "'input'", "None"]),
    ("LogSoftmax-dim", lambda: nn.LogSoftmax(dim=-3)(f32(2, 3)), IndexError, ["log_softmax", "dimension -3"]),
    ("GELU-approximate", lambda: nn.GELU(approximate="fast"), ValueError, ["GELU", "approximate", "fast"]),
    ("Softmax-dim", lambda: nn.Softmax(dim=3)(f32(2, 3)), IndexError, ["softmax", "dimension 3"]),
    ("Flatten-dims", lambda: nn.Flatten(5)(f32(2, 3)), IndexError, ["flatten", "dimension 5"]),
    ("Flatten-none", lambda: nn.Flatten()(None), TypeError, ["Flatten", "'input'", "None"]),
    ("Unflatten-size", lambda: nn.Unflatten(1, (2, 2))(f32(2, 3)), RuntimeError, ["shape", "[2, 2, 2]", "6"]),
    ("LSTM-hidden_size", lambda: nn.LSTM(4, 0), ValueError, ["LSTM", "'hidden_size'"]),
    ("LSTM-input", lambda: nn.LSTM(4, 5)(f32(3, 2, 6)), ValueError, ["LSTM", "input_size"]),
    ("LSTM-input-none", lambda: nn.LSTM(4, 5)(None), TypeError, ["LSTM", "'input'", "None"]),
    ("LSTM-hx", lambda: _lstm_with_hx(f32(1, 3, 5), f32(1, 2, 5)), ValueError, ["LSTM", "hx"]),
    ("LSTMCell-hx", lambda: nn.LSTMCell(4, 5)(f32(3, 4), (f32(2, 5), f32(2, 5))), ValueError, ["LSTMCell", "hx"]),
    ("MultiheadAttention-heads", lambda: nn.MultiheadAttention(10, 3), ValueError,
     ["MultiheadAttention", "num_heads"]),
    ("MultiheadAttention-query-none", lambda: nn.MultiheadAttention(6, 2)(None, f32(3, 2, 6), f32(3, 2, 6)),
     TypeError, ["MultiheadAttention", "'query'", "None"]),
    ("MultiheadAttention-attn_mask", lambda: _mha_forward(attn_mask=np.zeros((2, 2), bool)), ValueError,
     ["MultiheadAttention", "attn_mask"]),
    ("MultiheadAttention-key_padding_mask", lambda: _mha_forward(key_padding_mask=np.zeros((3, 3), bool)),
     ValueError, ["MultiheadAttention", "key_padding_mask"]),
    ("Embedding-index-range", lambda: nn.Embedding(5, 3)(np.array([1, 5])), IndexError, ["embedding", "5"]),
    ("Embedding-float-index", lambda: nn.Embedding(5, 3)(np.array([0.5])), TypeError, ["embedding", "input"]),
    ("Embedding-padding_idx", lambda: nn.Embedding(5, 3, padding_idx=7), ValueError, ["Embedding", "padding_idx"]),
    ("Embedding-num_embeddings", lambda: nn.Embedding(-2, 3), ValueError, ["Embedding", "'num_embeddings'"]),
    ("LayerNorm-normalized_shape", lambda: nn.LayerNorm(-3), ValueError, ["LayerNorm", "'normalized_shape'"]),
    ("LayerNorm-shape", lambda: nn.LayerNorm(4)(f32(2, 5)), ValueError, ["LayerNorm", "input"]),
    ("BatchNorm2d-channels", lambda: nn.BatchNorm2d(3)(f32(2, 4, 4, 4)), ValueError, ["BatchNorm2d", "channels"]),
    ("BatchNorm1d-ndim", lambda: nn.BatchNorm1d(3)(f32(2, 3, 4, 4)), ValueError, ["BatchNorm1d", "dims"]),
    ("BatchNorm2d-num_features", lambda: nn.BatchNorm2d(-1), ValueError, ["BatchNorm2d", "'num_features'"]),
    ("CrossEntropyLoss-reduction", lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError,
     ["CrossEntropyLoss", "'reduction'"]),
    ("CrossEntropyLoss-target-range", lambda: nn.CrossEntropyLoss()(f32(4, 3), np.array([0, 1, 3, 2])),
     IndexError, ["cross_entropy", "3"]),
    ("CrossEntropyLoss-label_smoothing", lambda: nn.CrossEntropyLoss(label_smoothing=2.0), ValueError,
     ["CrossEntropyLoss", "label_smoothing"]),
    ("NLLLoss-target-dtype", lambda: nn.NLLLoss()(f32(4, 3), f32(4)), TypeError, ["nll_loss", "'target'"]),
    ("MSELoss-target-none", lambda: nn.MSELoss()(f32(3), None), TypeError, ["mse_loss", "'target'", "None"]),
    ("MSELoss-shape", lambda: nn.MSELoss()(f32(4, 3), f32(4, 2)), ValueError, ["mse_loss", "target"]),
    ("L1Loss-shape", lambda: nn.L1Loss()(f32(4), f32(5)), ValueError, ["l1_loss", "target"]),
    ("BCELoss-range", lambda: nn.BCELoss()(np.full(3, 2.0, np.float32), f32(3)), ValueError,
     ["binary_cross_entropy", "'input'"]),
    ("BCEWithLogitsLoss-shape", lambda: nn.BCEWithLogitsLoss()(f32(4), f32(3)), ValueError,
     ["binary_cross_entropy_with_logits", "target"]),
    ("Sequential-non-module", lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, ["Sequential", "str"]),
    ("ModuleList-non-module", lambda: nn.ModuleList([3]), TypeError, ["ModuleList", "int"]),
    ("ModuleDict-non-module", lambda: nn.ModuleDict({"a": 3}), TypeError, ["ModuleDict", "'a'", "int"]),
    ("Parameter-string", lambda: nn.Parameter("abc"), TypeError, ["Parameter", "str"]),
    ("Module-assign-parameter", lambda: setattr(nn.Linear(2, 2), "weight", f32(2, 2)), TypeError,
     ["Linear", "'weight'", "ndarray"]),
    # torch's error type and wording ("Error(s) in loading state_dict for Linear: ...")
    ("load_state_dict-missing", lambda: _load_state(lambda d: _drop(d, "bias")), RuntimeError,
     ["state_dict", "Linear", "Missing key", "bias"]),
    ("load_state_dict-shape", lambda: _load_state(lambda d: _reshape_entry(d, "weight", (4, 3))), RuntimeError,
     ["state_dict", "size mismatch for weight", "[4, 3]"]),
    ("load_state_dict-unexpected", lambda: _load_state(lambda d: {**d, "extra": f32(1)}), RuntimeError,
     ["state_dict", "Unexpected key", "extra"]),
    ("load_state_dict-string", lambda: _load_state(lambda d: {**d, "bias": np.array(["a", "b", "c"])}), RuntimeError,
     ["state_dict", "'bias'", "numbers"]),
    ("Module.to-device", lambda: nn.Linear(2, 2).to("tpu"), ValueError, ["Linear.to", "device", "tpu"]),
    ("Module.to-dtype", lambda: nn.Linear(2, 2).to(dtype=np.int32), TypeError, ["Linear.to", "dtype"]),
    # ------------------------------------------------------------ optimizers and schedulers
    ("SGD-lr", lambda: optim.SGD([_param(3)], lr=-0.1), ValueError, ["SGD", "'lr'", "-0.1"]),
    ("SGD-nesterov", lambda: optim.SGD([_param(3)], lr=0.1, nesterov=True), ValueError, ["SGD", "nesterov"]),
    ("SGD-empty", lambda: optim.SGD([], lr=0.1), ValueError, ["SGD", "empty"]),
    ("SGD-single-tensor", lambda: optim.SGD(_param(3), lr=0.1), TypeError, ["SGD", "params"]),
    ("SGD-non-tensor", lambda: optim.SGD([f32(3)], lr=0.1), TypeError, ["SGD", "ndarray"]),
    ("Adam-betas", lambda: optim.Adam([_param(3)], betas=(1.5, 0.9)), ValueError, ["Adam", "betas"]),
    ("AdamW-eps", lambda: optim.AdamW([_param(3)], eps=-1.0), ValueError, ["AdamW", "'eps'"]),
    ("RMSprop-alpha", lambda: optim.RMSprop([_param(3)], alpha=-0.9), ValueError, ["RMSprop", "'alpha'"]),
    ("RMSprop-momentum", lambda: optim.RMSprop([_param(3)], momentum=-1), ValueError, ["RMSprop", "'momentum'"]),
    ("Optimizer.step-grad-shape", _step_with_bad_grad, ValueError, ["SGD.step", "gradient"]),
    ("StepLR-step_size", lambda: optim.lr_scheduler.StepLR(optim.SGD([_param(3)], lr=0.1), step_size=0),
     ValueError, ["StepLR", "step_size"]),
    ("CosineAnnealingLR-T_max", lambda: optim.lr_scheduler.CosineAnnealingLR(optim.SGD([_param(3)], lr=0.1), 0),
     ValueError, ["CosineAnnealingLR", "T_max"]),
    ("StepLR-not-optimizer", lambda: optim.lr_scheduler.StepLR("sgd", 1), TypeError, ["StepLR", "Optimizer"]),
    *[(f"{name}-lr", lambda name=name: getattr(optim, name)([_param(3)], lr=-1.0), ValueError, [name, "'lr'"])
      for name in ("Adadelta", "Adagrad", "Adamax", "NAdam", "RAdam")],
    ("LambdaLR-lambdas", lambda: optim.lr_scheduler.LambdaLR(optim.SGD([_param(3)], lr=0.1), [abs, abs]),
     ValueError, ["LambdaLR", "lr_lambda"]),
    ("MultiplicativeLR-lambdas", lambda: optim.lr_scheduler.MultiplicativeLR(optim.SGD([_param(3)], lr=0.1), []),
     ValueError, ["MultiplicativeLR", "lr_lambda"]),
    *[(f"{name}-not-optimizer", lambda name=name, args=args: getattr(optim.lr_scheduler, name)("sgd", *args), TypeError,
       [name, "Optimizer"])
      for name, args in (("MultiStepLR", ([1],)), ("ExponentialLR", (0.9,)), ("PolynomialLR", ()))],
    ("ConstantLR-factor", lambda: optim.lr_scheduler.ConstantLR(optim.SGD([_param(3)], lr=0.1), factor=2.0),
     ValueError, ["ConstantLR", "factor"]),
    ("LinearLR-start_factor", lambda: optim.lr_scheduler.LinearLR(optim.SGD([_param(3)], lr=0.1), start_factor=0),
     ValueError, ["LinearLR", "start_factor"]),
    ("CosineAnnealingWarmRestarts-T_0",
     lambda: optim.lr_scheduler.CosineAnnealingWarmRestarts(optim.SGD([_param(3)], lr=0.1), 0), ValueError,
     ["CosineAnnealingWarmRestarts", "T_0"]),
    ("OneCycleLR-steps", lambda: optim.lr_scheduler.OneCycleLR(optim.SGD([_param(3)], lr=0.1), 1.0), ValueError,
     ["OneCycleLR", "total_steps"]),
    ("SequentialLR-milestones", lambda: (lambda o: optim.lr_scheduler.SequentialLR(
        o, [optim.lr_scheduler.StepLR(o, 1), optim.lr_scheduler.StepLR(o, 1)], []))(optim.SGD([_param(3)], lr=0.1)),
     ValueError, ["SequentialLR", "milestone"]),
    ("ChainedScheduler-empty", lambda: optim.lr_scheduler.ChainedScheduler([]), ValueError,
     ["ChainedScheduler", "schedulers"]),
    ("ReduceLROnPlateau-factor", lambda: optim.lr_scheduler.ReduceLROnPlateau(optim.SGD([_param(3)], lr=0.1),
                                                                               factor=2.0), ValueError,
     ["ReduceLROnPlateau", "Factor"]),
    # ------------------------------------------------------------ compile / fit / evaluate / predict
    ("compile-optimizer", lambda: nn.Linear(4, 3).compile("adamax", "mse"), ValueError,
     ["compile", "optimizer", "adamax"]),
    ("compile-loss", lambda: nn.Linear(4, 3).compile("adam", "hinge_loss"), ValueError,
     ["compile", "loss", "hinge_loss"]),
    ("compile-metric", lambda: nn.Linear(4, 3).compile("adam", "mse", ["top5"]), ValueError,
     ["compile", "metric", "top5"]),
    ("compile-no-loss", lambda: nn.Linear(4, 3).compile("adam"), ValueError, ["compile", "loss"]),
    ("compile-optimizer-type", lambda: nn.Linear(4, 3).compile(3.0, "mse"), TypeError,
     ["compile", "optimizer", "float"]),
    ("fit-not-compiled", lambda: nn.Linear(4, 3).fit(f32(4, 4), np.zeros(4, np.int64), verbose=0), RuntimeError,
     ["fit", "compile"]),
    ("fit-lengths", lambda: _compiled_mlp().fit(f32(10, 4), np.zeros(9, np.int64), verbose=0), ValueError,
     ["fit", "'x'", "'y'", "10", "9"]),
    ("fit-batch_size", lambda: _compiled_mlp().fit(f32(10, 4), np.zeros(10, np.int64), batch_size=0, verbose=0),
     ValueError, ["fit", "batch_size"]),
    ("fit-validation_data", lambda: _compiled_mlp().fit(f32(10, 4), np.zeros(10, np.int64), verbose=0,
                                                        validation_data=f32(2, 4)),
     ValueError, ["fit", "validation_data"]),
    ("fit-no-y", lambda: _compiled_mlp().fit(f32(10, 4), verbose=0), ValueError, ["fit", "'y'"]),
    ("compile-metrics-string", lambda: nn.Linear(4, 3).compile("adam", "mse", "accuracy"), TypeError,
     ["compile", "'metrics'", "str"]),
    ("fit-callbacks", lambda: _compiled_mlp().fit(f32(10, 4), np.zeros(10, np.int64), verbose=0, callbacks=[3]),
     TypeError, ["fit", "'callbacks'", "int"]),
    ("fit-wrong-features", lambda: _compiled_mlp().fit(f32(10, 5), np.zeros(10, np.int64), verbose=0), ValueError,
     ["Linear", "in_features"]),
    ("evaluate-lengths", lambda: _compiled_mlp().evaluate(f32(10, 4), np.zeros(3, np.int64)), ValueError,
     ["evaluate", "'x'", "'y'"]),
    ("predict-scalar", lambda: _compiled_mlp().predict(np.float32(1.0)), ValueError, ["predict", "'x'"]),
    # ------------------------------------------------------------ metrics
    ("accuracy-lengths", lambda: metrics.accuracy([0, 1, 1], [0, 1]), ValueError, ["accuracy", "'y_true'", "'y_pred'"]),
    ("accuracy-none", lambda: metrics.accuracy(None, [0, 1]), TypeError, ["accuracy", "'y_true'"]),
    ("precision-average", lambda: metrics.precision([0, 1], [0, 1], average="mean"), ValueError,
     ["precision", "'average'", "mean"]),
    ("recall-2d-target", lambda: metrics.recall(np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64)),
     ValueError, ["recall", "'y_true'"]),
    ("f1_score-object", lambda: metrics.f1_score([0, 1], [object(), object()]), TypeError,
     ["f1_score", "'y_pred'"]),
    ("accuracy-empty", lambda: metrics.accuracy([], []), ValueError, ["accuracy", "empty"]),
    ("accuracy-logits", lambda: metrics.accuracy([0, 1, 1], [0.3, -1.7, 2.5]), ValueError, ["accuracy", "'y_pred'"]),
    ("roc_auc-one-class", lambda: metrics.roc_auc([1, 1, 1], [0.2, 0.4, 0.9]), ValueError, ["roc_auc", "'y_true'"]),
    ("roc_auc-lengths", lambda: metrics.roc_auc([0, 1, 1], [0.2, 0.4]), ValueError, ["roc_auc", "'y_score'"]),
    # ------------------------------------------------------------ keras front-end
    ("keras-Dense-activation", lambda: klayers.Dense(3, activation="swishy"), ValueError,
     ["Dense", "activation", "swishy"]),
    ("keras-Dense-units", lambda: klayers.Dense(0), ValueError, ["Dense", "'units'"]),
    ("keras-Dense-kwarg", lambda: klayers.Dense(3, kernel_size=3), TypeError, ["Dense", "kernel_size"]),
    ("keras-Dense-input", lambda: _keras_dense_built()(f32(2, 5)), ValueError, ["Dense", "input features"]),
    ("keras-Dense-input-none", lambda: klayers.Dense(3)(None), TypeError, ["Dense", "'input'", "None"]),
    ("keras-Dense-unbuilt-set_weights", lambda: klayers.Dense(3).set_weights([f32(4, 3), f32(3)]), ValueError,
     ["Dense", "set_weights", "not built"]),
    ("keras-Conv2D-filters", lambda: klayers.Conv2D(0, 3), ValueError, ["Conv2D", "'filters'"]),
    ("keras-Conv2D-strides", lambda: klayers.Conv2D(4, 3, strides=0), ValueError, ["Conv2D", "'strides'"]),
    ("keras-Conv2D-kernel_size", lambda: klayers.Conv2D(4, (3, 0)), ValueError, ["Conv2D", "'kernel_size'"]),
    ("keras-MaxPooling2D-pool_size", lambda: klayers.MaxPooling2D(0), ValueError, ["MaxPooling2D", "'pool_size'"]),
    ("keras-AveragePooling2D-strides", lambda: klayers.AveragePooling2D(2, strides=-1), ValueError,
     ["AveragePooling2D", "'strides'"]),
    ("keras-GlobalAveragePooling2D-ndim", lambda: klayers.GlobalAveragePooling2D()(f32(2, 3, 4)), ValueError,
     ["GlobalAveragePooling2D", "(batch, H, W, C)"]),
    ("keras-GlobalAveragePooling1D-ndim", lambda: klayers.GlobalAveragePooling1D()(f32(2, 3)), ValueError,
     ["GlobalAveragePooling1D", "(batch, steps, features)"]),
    ("keras-Embedding-input_dim", lambda: klayers.Embedding(0, 3), ValueError, ["Embedding", "'input_dim'"]),
    ("keras-MultiHeadAttention-num_heads", lambda: klayers.MultiHeadAttention(0, 4), ValueError,
     ["MultiHeadAttention", "'num_heads'"]),
    ("keras-LSTM-units", lambda: klayers.LSTM(0), ValueError, ["LSTM", "'units'"]),
    ("keras-Activation", lambda: klayers.Activation("swish7"), ValueError, ["Activation", "swish7"]),
    ("keras-Flatten-none", lambda: klayers.Flatten()(None), TypeError, ["Flatten", "'input'", "None"]),
    ("keras-Lambda-function", lambda: klayers.Lambda("not callable"), TypeError, ["Lambda", "'function'"]),
    *[(f"keras-{name}-one-input", lambda name=name: getattr(klayers, name)()([np.zeros((2, 3), np.float32)]),
       ValueError, [name, "at least 2 inputs"])
      for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")],
    *[(f"keras-{name}-not-a-list", lambda name=name: getattr(klayers, name)(np.zeros((2, 3), np.float32)),
       ValueError, [name, "list of"])
      for name in ("add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate")],
    ("keras-Dot-three", lambda: klayers.Dot(1)([np.zeros((2, 3), np.float32)] * 3), ValueError, ["Dot", "2 inputs"]),
    ("keras-dot-three", lambda: klayers.dot([np.zeros((2, 3), np.float32)] * 3, axes=1), ValueError,
     ["Dot", "2 inputs"]),
    ("keras-Attention-inputs", lambda: klayers.Attention()([f32(2, 3, 4)]), ValueError, ["Attention", "inputs"]),
    ("keras-Attention-none", lambda: klayers.Attention()([f32(2, 3, 4), None]), TypeError,
     ["Attention", "'value'", "None"]),
    ("keras-Attention-shapes", lambda: klayers.Attention()([f32(2, 3, 4), f32(2, 5, 6)]), ValueError,
     ["scaled_dot_product_attention", "query", "key"]),
    ("keras-Attention-score_mode", lambda: klayers.Attention(score_mode="concat"), ValueError,
     ["Attention", "score_mode"]),
    ("keras-MultiHeadAttention-none", lambda: klayers.MultiHeadAttention(2, 4)(None), TypeError,
     ["MultiHeadAttention", "'query'", "None"]),
    ("keras-LayerNormalization-axis", lambda: klayers.LayerNormalization(axis=1), ValueError,
     ["LayerNormalization", "axis"]),
    ("keras-BatchNormalization-axis", lambda: klayers.BatchNormalization(axis=1)(f32(2, 3, 4, 5)), ValueError,
     ["BatchNormalization", "axis=1", "channels"]),
    ("keras-BatchNormalization-axis-type", lambda: klayers.BatchNormalization(axis="last"), ValueError,
     ["BatchNormalization", "axis"]),
    # the layers of issue 19
    ("keras-Reshape-size", lambda: klayers.Reshape((5,))(f32(2, 3, 2)), ValueError,
     ["Reshape", "total size", "target_shape=(5,)"]),
    ("keras-Reshape-two-unknown", lambda: klayers.Reshape((-1, -1)), ValueError, ["Reshape", "target_shape"]),
    ("keras-Permute-dims", lambda: klayers.Permute((0, 1)), ValueError, ["Permute", "`dims`"]),
    ("keras-Permute-rank", lambda: klayers.Permute((2, 1))(f32(2, 3, 4, 5)), ValueError, ["Permute", "rank 2"]),
    ("keras-RepeatVector-n", lambda: klayers.RepeatVector(0), ValueError, ["RepeatVector", "'n'"]),
    ("keras-RepeatVector-input", lambda: klayers.RepeatVector(2)(f32(2, 3, 4)), ValueError,
     ["RepeatVector", "(batch, features)"]),
    ("keras-Rescaling-scale", lambda: klayers.Rescaling("half"), TypeError, ["Rescaling", "'scale'"]),
    ("keras-ZeroPadding2D-padding", lambda: klayers.ZeroPadding2D((1, 2, 3)), ValueError,
     ["ZeroPadding2D", "`padding`"]),
    ("keras-ZeroPadding2D-input", lambda: klayers.ZeroPadding2D()(f32(2, 3, 4)), ValueError,
     ["ZeroPadding2D", "(H, W, C)", "(3, 4)"]),
    ("keras-Cropping2D-too-much", lambda: klayers.Cropping2D(3)(f32(1, 5, 5, 1)), ValueError,
     ["Cropping2D", "`cropping`", "smaller"]),
    ("keras-UpSampling2D-interpolation", lambda: klayers.UpSampling2D(interpolation="bicubic"), ValueError,
     ["UpSampling2D", "interpolation", "bicubic"]),
    ("keras-UpSampling2D-size", lambda: klayers.UpSampling2D(0), ValueError, ["UpSampling2D", "'size'"]),
    ("keras-GlobalMaxPooling2D-ndim", lambda: klayers.GlobalMaxPooling2D()(f32(2, 3, 4)), ValueError,
     ["GlobalMaxPooling2D", "(batch, H, W, C)"]),
    ("keras-GlobalMaxPooling1D-ndim", lambda: klayers.GlobalMaxPooling1D()(f32(2, 3)), ValueError,
     ["GlobalMaxPooling1D", "(batch, steps, features)"]),
    ("keras-Conv1D-padding", lambda: klayers.Conv1D(4, 3, padding="full"), ValueError, ["Conv1D", "padding", "full"]),
    ("keras-Conv1D-kernel_size", lambda: klayers.Conv1D(4, (3, 3)), ValueError, ["Conv1D", "'kernel_size'"]),
    ("keras-Conv1D-causal-strides", lambda: klayers.Conv1D(4, 3, strides=2, padding="causal"), ValueError,
     ["Conv1D", "causal", "strides"]),
    ("keras-Conv1D-input", lambda: klayers.Conv1D(4, 3)(f32(2, 5)), ValueError, ["Conv1D", "(steps, channels)"]),
    ("keras-MaxPooling1D-pool_size", lambda: klayers.MaxPooling1D(0), ValueError, ["MaxPooling1D", "'pool_size'"]),
    ("keras-AveragePooling1D-strides", lambda: klayers.AveragePooling1D(2, strides=-1), ValueError,
     ["AveragePooling1D", "'strides'"]),
    ("keras-AveragePooling1D-input", lambda: klayers.AveragePooling1D(2)(f32(2, 3, 4, 5)), ValueError,
     ["AveragePooling1D", "(batch, steps, channels)"]),
    ("keras-DepthwiseConv2D-depth_multiplier", lambda: klayers.DepthwiseConv2D(3, depth_multiplier=0), ValueError,
     ["DepthwiseConv2D", "'depth_multiplier'"]),
    ("keras-DepthwiseConv2D-channels", lambda: _built(klayers.DepthwiseConv2D(3), (1, 5, 5, 2))(f32(1, 5, 5, 3)),
     ValueError, ["DepthwiseConv2D", "2 input channels", "3"]),
    ("keras-SeparableConv2D-filters", lambda: klayers.SeparableConv2D(0, 3), ValueError,
     ["SeparableConv2D", "'filters'"]),
    ("keras-SeparableConv2D-input", lambda: klayers.SeparableConv2D(2, 3)(f32(2, 5, 5)), ValueError,
     ["SeparableConv2D", "(H, W, C)"]),
    ("keras-GRU-units", lambda: klayers.GRU(0), ValueError, ["GRU", "'units'"]),
    ("keras-GRU-reset_after", lambda: klayers.GRU(3, reset_after=False), NotImplementedError,
     ["GRU", "reset_after=False"]),
    ("keras-GRU-activation", lambda: klayers.GRU(3, activation="relu"), ValueError, ["GRU", "activation", "relu"]),
    ("keras-GRU-input", lambda: klayers.GRU(3)(f32(2, 4)), ValueError, ["GRU", "(timesteps, features)"]),
    ("keras-GRU-dropout", lambda: klayers.GRU(3, dropout=1.5), ValueError, ["GRU", "'dropout'"]),
    ("keras-GRU-initial_state", lambda: klayers.GRU(3)(f32(2, 4, 5), initial_state=[f32(2, 4)]), ValueError,
     ["GRU", "initial state", "(2, 3)"]),
    ("keras-SimpleRNN-activation", lambda: klayers.SimpleRNN(3, activation="sigmoid"), ValueError,
     ["SimpleRNN", "activation", "sigmoid"]),
    ("keras-SimpleRNN-stateful", lambda: klayers.SimpleRNN(3, stateful=True), NotImplementedError,
     ["SimpleRNN", "stateful"]),
    ("keras-Bidirectional-layer", lambda: klayers.Bidirectional(klayers.Dense(3)), ValueError,
     ["Bidirectional", "recurrent layer"]),
    ("keras-Bidirectional-merge_mode", lambda: klayers.Bidirectional(klayers.GRU(3), merge_mode="max"), ValueError,
     ["Bidirectional", "merge mode", "max"]),
    ("keras-Bidirectional-backward_layer", lambda: klayers.Bidirectional(klayers.GRU(3), backward_layer=klayers.GRU(3)),
     ValueError, ["Bidirectional", "go_backwards"]),
    ("keras-TimeDistributed-layer", lambda: klayers.TimeDistributed("dense"), ValueError,
     ["TimeDistributed", "Layer"]),
    ("keras-TimeDistributed-input", lambda: klayers.TimeDistributed(klayers.Dense(2))(f32(2, 3)), ValueError,
     ["TimeDistributed", "at least 3 dimensions"]),
    ("keras-ReLU-max_value", lambda: klayers.ReLU(max_value=-1.0), ValueError, ["ReLU", "max_value"]),
    ("keras-ReLU-negative_slope", lambda: klayers.ReLU(negative_slope=None), ValueError,
     ["ReLU", "negative_slope"]),
    ("keras-ReLU-threshold", lambda: klayers.ReLU(threshold=-0.5), ValueError, ["ReLU", "threshold"]),
    ("keras-LeakyReLU-negative_slope", lambda: klayers.LeakyReLU(negative_slope=-0.1), ValueError,
     ["LeakyReLU", "negative_slope"]),
    ("keras-Softmax-axis", lambda: klayers.Softmax(axis="last"), TypeError, ["Softmax", "'axis'"]),
    ("keras-Softmax-mask", lambda: klayers.Softmax()(f32(2, 3), mask=np.ones((2, 4), bool)), ValueError,
     ["Softmax", "mask", "broadcastable"]),
    ("keras-MaxPooling2D-padding", lambda: klayers.MaxPooling2D(2, padding="full"), ValueError,
     ["MaxPooling2D", "padding", "full"]),
    ("keras-load_model-missing", lambda: keras.load_model("/nonexistent/model.keras"), ValueError,
     ["load_model", "File not found", "/nonexistent/model.keras"]),
    ("keras-load_model-path", lambda: keras.load_model(42), TypeError, ["load_model", "'filepath'", "int"]),
    ("keras-save-kwarg", lambda: _keras_model().save("/tmp/unused.keras", save_format="tf"), TypeError,
     ["save", "save_format"]),
    ("keras-from_config-unknown", lambda: klayers.Bidirectional.from_config(
        {"layer": {"class_name": "NoSuchLayer", "config": {}}}), ValueError, ["unknown layer class", "NoSuchLayer"]),
    ("keras-Conv2D-padding", lambda: klayers.Conv2D(4, 3, padding="full"), ValueError, ["Conv2D", "padding"]),
    ("keras-Dropout-rate", lambda: klayers.Dropout(1.5), ValueError, ["Dropout", "'rate'"]),
    ("keras-LSTM-activation", lambda: klayers.LSTM(4, activation="relu"), ValueError, ["LSTM", "activation"]),
    ("keras-Input-shape", lambda: klayers.Input(), ValueError, ["Input", "'shape'"]),
    ("keras-set_weights-count", lambda: _keras_dense_built().set_weights([f32(4, 3)]), ValueError,
     ["Dense", "set_weights", "2"]),
    ("keras-set_weights-shape", lambda: _keras_dense_built().set_weights([f32(3, 4), f32(3)]), ValueError,
     ["Dense", "weight 0", "(4, 3)"]),
    ("keras-Sequential-add", lambda: KSequential().add(nn.Linear(2, 2)), TypeError, ["Sequential.add", "Linear"]),
    ("keras-compile-loss", lambda: KSequential([klayers.Dense(2)]).compile("adam", "hinge_loss"), ValueError,
     ["compile", "loss", "hinge_loss"]),
    ("keras-compile-optimizer", lambda: KSequential([klayers.Dense(2)]).compile("nadamx", "mse"), ValueError,
     ["compile", "optimizer", "nadamx"]),
    ("keras-optimizer-lr-type", lambda: koptimizers.SGD(learning_rate="fast"), TypeError,
     ["SGD", "learning_rate", "str"]),
    ("keras-compile-metrics-string", lambda: KSequential([klayers.Dense(2)]).compile("adam", "mse", "accuracy"),
     TypeError, ["compile", "'metrics'", "str"]),
    ("keras-fit-callbacks", lambda: _keras_model().fit(f32(8, 4), np.zeros(8, np.int64), verbose=0,
                                                       callbacks=["early_stopping"]),
     TypeError, ["fit", "'callbacks'", "str"]),
    ("keras-optimizer-lr", lambda: koptimizers.Adam(learning_rate=-1e-3), ValueError, ["Adam", "learning_rate"]),
    ("keras-fit-lengths", lambda: _keras_model().fit(f32(8, 4), np.zeros(7, np.int64), verbose=0), ValueError,
     ["fit", "'x'", "'y'"]),
    ("keras-fit-validation_split", lambda: _keras_model().fit(f32(8, 4), np.zeros(8, np.int64), verbose=0,
                                                              validation_split=1.5),
     ValueError, ["fit", "validation_split"]),
    ("keras-fit-not-compiled", lambda: KSequential([klayers.Dense(2)]).fit(f32(4, 4), f32(4, 2), verbose=0),
     RuntimeError, ["fit", "compile"]),
    ("keras-summary-unbuilt", lambda: KSequential([klayers.Dense(2)]).summary(), ValueError,
     ["Sequential", "built"]),
    # ------------------------------------------------------------ keras HDF5 weight files
    ("load_weights_h5-model", lambda: load_weights_h5(klayers.Dense(2), "w.weights.h5"), TypeError,
     ["load_weights_h5", "'model'", "Dense"]),
    ("load_weights_h5-filepath", lambda: load_weights_h5(_keras_model(), 3.5), TypeError,
     ["load_weights_h5", "'filepath'", "float"]),
    ("load_weights_h5-skip_mismatch", lambda: load_weights_h5(_keras_model(), "w.h5", skip_mismatch="no"),
     TypeError, ["load_weights_h5", "'skip_mismatch'", "str"]),
    ("load_weights_h5-by_name", lambda: load_weights_h5(_keras_model(), "w.h5", by_name=None), TypeError,
     ["load_weights_h5", "'by_name'", "NoneType"]),
    ("load_weights_h5-unbuilt", lambda: load_weights_h5(KSequential([klayers.Dense(2)]), "w.h5"), ValueError,
     ["load_weights_h5", "not yet been built"]),
    ("load_weights_h5-missing", lambda: load_weights_h5(_keras_model(), "/nonexistent/w.weights.h5"),
     FileNotFoundError, ["load_weights_h5", "/nonexistent/w.weights.h5"]),
    ("load_weights_h5-not-hdf5", lambda: _with_file(b"hello" * 40, ".h5", lambda p: load_weights_h5(
        _keras_model(), p)), ValueError, ["load_weights_h5", ".h5'", "not an HDF5 file"]),
    ("load_weights_h5-bad-signature", lambda: _with_file(b"\x89HDF\r\n\x1a\n" + b"\0" * 100, ".weights.h5",
                                                         lambda p: load_weights_h5(_keras_model(), p)),
     (ValueError, ImportError), ["load_weights_h5"]),
    ("save_weights_h5-model", lambda: save_weights_h5(nn.Linear(2, 2), "w.weights.h5"), TypeError,
     ["save_weights_h5", "'model'", "Linear"]),
    ("save_weights_h5-suffix", lambda: save_weights_h5(_keras_model(), "w.safetensors"), ValueError,
     ["save_weights_h5", "w.safetensors", ".weights.h5"]),
    ("save_weights_h5-unbuilt", lambda: save_weights_h5(KSequential([klayers.Dense(2)]), "w.h5"), ValueError,
     ["save_weights_h5", "not yet been built"]),
    ("save_weights_h5-folder", lambda: save_weights_h5(_keras_model(), "/nonexistent/dir/w.h5"),
     FileNotFoundError, ["save_weights_h5", "/nonexistent/dir/w.h5"]),
    # ------------------------------------------------------------ distributed (not initialized)
    ("distributed-all_reduce", lambda: dist.all_reduce(f32(3)), RuntimeError, ["all_reduce", "init"]),
    ("distributed-broadcast", lambda: dist.broadcast(f32(3)), RuntimeError, ["broadcast", "init"]),
    ("distributed-barrier", lambda: dist.barrier(), RuntimeError, ["barrier", "init"]),
    ("distributed-all_gather_object", lambda: dist.all_gather_object(1), RuntimeError,
     ["all_gather_object", "init"]),
    ("distributed-DDP", lambda: dist.DistributedDataParallel(nn.Linear(2, 2)), RuntimeError,
     ["DistributedDataParallel", "init"]),
    ("distributed-init-backend", lambda: dist.init(backend="gloo"), ValueError, ["init", "backend", "gloo"]),
    # ------------------------------------------------------------ the wider torch.nn surface
    *[(f"{name}-string", lambda name=name: getattr(nn, name)()("abc"), TypeError, [fn, "'input'", "str"])
      for name, fn in [("ReLU6", "hardtanh"), ("LeakyReLU", "leaky_relu"), ("ELU", "elu"), ("SELU", "selu"),
                       ("CELU", "celu"), ("SiLU", "silu"), ("Mish", "mish"), ("Hardswish", "hardswish"),
                       ("Hardsigmoid", "hardsigmoid"), ("Hardtanh", "hardtanh"), ("Softplus", "softplus"),
                       ("Softsign", "softsign"), ("Tanhshrink", "tanhshrink"), ("LogSigmoid", "logsigmoid"),
                       ("GLU", "glu"), ("Softmin", "softmin"), ("PReLU", "prelu")]],
    ("Threshold-string", lambda: nn.Threshold("a", 0.0)(f32(3)), TypeError, ["threshold", "'threshold'", "str"]),
    ("Softplus-beta", lambda: nn.Softplus(beta="x")(f32(3)), TypeError, ["softplus", "'beta'"]),
    ("Buffer-string", lambda: nn.Buffer("abc"), TypeError, ["Buffer", "str"]),
    ("ParameterList-string", lambda: nn.ParameterList(["abc"]), TypeError, ["Parameter", "str"]),
    ("ParameterDict-string", lambda: nn.ParameterDict({"a": "abc"}), TypeError, ["Parameter", "str"]),
    ("Bilinear-size", lambda: nn.Bilinear(-1, 2, 3), ValueError, ["Bilinear", "'in1_features'"]),
    ("Conv1d-input", lambda: nn.Conv1d(3, 4, 3)(f32(2, 5, 7)), ValueError, ["Conv1d", "in_channels=3", "(2, 5, 7)"]),
    ("Conv1d-kernel", lambda: nn.Conv1d(3, 4, 0), ValueError, ["Conv1d", "'kernel_size'"]),
    ("ConvTranspose2d-channels", lambda: nn.ConvTranspose2d(3, 4, 3)(f32(1, 2, 5, 5)), ValueError,
     ["conv_transpose2d", "channels"]),
    ("ConvTranspose2d-output_padding", lambda: nn.ConvTranspose2d(3, 4, 3, output_padding=2)(f32(1, 3, 5, 5)),
     ValueError, ["conv_transpose2d", "output_padding"]),
    ("ConvTranspose1d-padding_mode", lambda: nn.ConvTranspose1d(3, 4, 3, padding_mode="reflect"), ValueError,
     ["ConvTranspose1d", "zeros"]),
    ("MaxPool1d-kernel", lambda: nn.MaxPool1d(0)(f32(1, 2, 8)), ValueError, ["max_pool2d", "'kernel_size'"]),
    ("AvgPool1d-kernel", lambda: nn.AvgPool1d("a")(f32(1, 2, 8)), TypeError, ["avg_pool1d", "'kernel_size'"]),
    ("AdaptiveAvgPool2d-size", lambda: nn.AdaptiveAvgPool2d(0)(f32(1, 2, 8, 8)), ValueError,
     ["adaptive_avg_pool2d", "output_size"]),
    ("AdaptiveAvgPool2d-input", lambda: nn.AdaptiveAvgPool2d(2)(f32(8, 8)), ValueError,
     ["adaptive_avg_pool2d", "3-D or 4-D"]),
    ("AdaptiveAvgPool1d-size", lambda: nn.AdaptiveAvgPool1d("a")(f32(1, 2, 8)), TypeError,
     ["adaptive_avg_pool1d", "'output_size'"]),
    ("AdaptiveMaxPool2d-size", lambda: nn.AdaptiveMaxPool2d(-1)(f32(1, 2, 8, 8)), ValueError,
     ["adaptive_max_pool2d", "output_size"]),
    ("AdaptiveMaxPool1d-size", lambda: nn.AdaptiveMaxPool1d(0)(f32(1, 2, 8)), ValueError,
     ["adaptive_max_pool2d", "output_size"]),
    *[(f"{name}-p", lambda name=name: getattr(nn, name)(p=2.0), ValueError, [name, "'p'"])
      for name in ("Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout")],
    ("GRU-input", lambda: nn.GRU(4, 5)(f32(3, 2, 6)), ValueError, ["GRU", "input_size"]),
    ("GRU-hidden_size", lambda: nn.GRU(4, 0), ValueError, ["GRU", "'hidden_size'"]),
    ("GRUCell-hidden_size", lambda: nn.GRUCell(4, -1), ValueError, ["GRUCell", "'hidden_size'"]),
    ("RNN-nonlinearity", lambda: nn.RNN(4, 5, nonlinearity="sigmoid"), ValueError, ["RNN", "nonlinearity"]),
    ("RNNCell-input_size", lambda: nn.RNNCell(0, 5), ValueError, ["RNNCell", "'input_size'"]),
    ("RMSNorm-shape", lambda: nn.RMSNorm((2, "a")), ValueError, ["RMSNorm", "'normalized_shape'"]),
    ("GroupNorm-groups", lambda: nn.GroupNorm(3, 4), ValueError, ["GroupNorm", "num_groups"]),
    ("GroupNorm-input", lambda: nn.GroupNorm(2, 4)(f32(2, 6, 3)), ValueError, ["group_norm", "weight", "[2, 6, 3]"]),
    ("BatchNorm3d-input", lambda: nn.BatchNorm3d(3)(f32(2, 3, 4)), ValueError, ["BatchNorm3d", "dims"]),
    *[(f"{name}-features", lambda name=name: getattr(nn, name)(-1), ValueError, [name, "'num_features'"])
      for name in ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")],
    ("LocalResponseNorm-input", lambda: nn.LocalResponseNorm(2)(None), TypeError, ["LocalResponseNorm", "None"]),
    *[(f"{name}-padding", lambda name=name: getattr(nn, name)((1, 2, 3)), ValueError, [name, "padding"])
      for name in ("ZeroPad2d", "ReflectionPad2d", "ReplicationPad2d", "CircularPad2d")],
    *[(f"{name}-padding", lambda name=name: getattr(nn, name)((1, 2, 3)), ValueError, [name, "padding"])
      for name in ("ZeroPad1d", "ReflectionPad1d", "ReplicationPad1d", "CircularPad1d")],
    ("ConstantPad2d-padding", lambda: nn.ConstantPad2d((1, 2, 3), 0.0), ValueError, ["ConstantPad2d", "padding"]),
    ("ConstantPad1d-padding", lambda: nn.ConstantPad1d((1, 2, 3), 0.0), ValueError, ["ConstantPad1d", "padding"]),
    ("Upsample-mode", lambda: nn.Upsample(scale_factor=2, mode="lanczos")(f32(1, 1, 4, 4)), ValueError,
     ["interpolate", "lanczos"]),
    ("Upsample-both", lambda: nn.Upsample(size=4, scale_factor=2)(f32(1, 1, 4, 4)), ValueError,
     ["interpolate", "size", "scale_factor"]),
    ("UpsamplingNearest2d-none", lambda: nn.UpsamplingNearest2d()(f32(1, 1, 4, 4)), ValueError,
     ["interpolate", "size"]),
    ("UpsamplingBilinear2d-input", lambda: nn.UpsamplingBilinear2d(scale_factor=2)(f32(4)), ValueError,
     ["interpolate", "spatial"]),
    ("PixelShuffle-channels", lambda: nn.PixelShuffle(2)(f32(1, 3, 4, 4)), ValueError,
     ["pixel_shuffle", "upscale_factor"]),
    ("PixelUnshuffle-size", lambda: nn.PixelUnshuffle(2)(f32(1, 1, 3, 4)), ValueError,
     ["pixel_unshuffle", "downscale_factor"]),
    ("Unfold-kernel", lambda: nn.Unfold("a")(f32(1, 1, 4, 4)), TypeError, ["unfold", "'kernel_size'"]),
    ("Fold-blocks", lambda: nn.Fold((4, 4), 2)(f32(1, 4, 3)), ValueError, ["fold", "blocks"]),
    ("Transformer-activation", lambda: nn.Transformer(8, 2, activation="swish"), ValueError,
     ["Transformer", "activation", "swish"]),
    ("TransformerEncoderLayer-heads", lambda: nn.TransformerEncoderLayer(8, 3), ValueError,
     ["MultiheadAttention", "num_heads"]),
    ("TransformerEncoder-src", lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 1)(None), TypeError,
     ["TransformerEncoderLayer", "'src'"]),
    ("TransformerDecoderLayer-activation", lambda: nn.TransformerDecoderLayer(8, 2, activation="tanh"), ValueError,
     ["TransformerDecoderLayer", "activation"]),
    ("TransformerDecoder-tgt", lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2), 1)(None, f32(2, 8)),
     TypeError, ["TransformerDecoderLayer", "'tgt'"]),
    ("SmoothL1Loss-shape", lambda: nn.SmoothL1Loss()(f32(4), f32(5)), ValueError, ["smooth_l1_loss", "'target'"]),
    ("SmoothL1Loss-beta", lambda: nn.SmoothL1Loss(beta=-1.0)(f32(4), f32(4)), ValueError, ["smooth_l1_loss", "'beta'"]),
    ("HuberLoss-delta", lambda: nn.HuberLoss(delta="x")(f32(4), f32(4)), TypeError, ["huber_loss", "'delta'"]),
    ("KLDivLoss-reduction", lambda: nn.KLDivLoss(reduction="avg"), ValueError, ["KLDivLoss", "'reduction'"]),
    ("CosineEmbeddingLoss-none", lambda: nn.CosineEmbeddingLoss()(f32(2, 3), f32(2, 3), None), TypeError,
     ["cosine_embedding_loss", "'target'"]),
    ("MarginRankingLoss-none", lambda: nn.MarginRankingLoss()(f32(2), f32(2), None), TypeError,
     ["margin_ranking_loss", "'target'"]),
    ("HingeEmbeddingLoss-none", lambda: nn.HingeEmbeddingLoss()(f32(2), None), TypeError,
     ["hinge_embedding_loss", "'target'"]),
    ("TripletMarginLoss-none", lambda: nn.TripletMarginLoss()(f32(2, 3), None, f32(2, 3)), TypeError,
     ["pairwise_distance", "'x2'"]),
    ("SoftMarginLoss-shape", lambda: nn.SoftMarginLoss()(f32(4), f32(3)), ValueError, ["soft_margin_loss", "'target'"]),
    ("MultiLabelSoftMarginLoss-shape", lambda: nn.MultiLabelSoftMarginLoss()(f32(2, 4), f32(2, 3)), ValueError,
     ["multilabel_soft_margin_loss", "'target'"]),
    ("PoissonNLLLoss-shape", lambda: nn.PoissonNLLLoss()(f32(4), f32(3)), ValueError, ["poisson_nll_loss", "'target'"]),
    ("GaussianNLLLoss-var", lambda: nn.GaussianNLLLoss()(f32(4), f32(4), None), TypeError,
     ["gaussian_nll_loss", "'var'"]),
]


def _tiny_gpt2():
    return models.GPT2LMHeadModel(models.GPT2Config(vocab_size=20, n_embd=8, n_layer=1, n_head=2, n_positions=16))


def _tiny_bert(cls=models.BertForSequenceClassification):
    return cls(models.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=8, max_position_embeddings=16))


MODEL_CASES = [
    ("models.resnet18-pretrained", lambda: models.resnet18(pretrained=True), ValueError,
     ["resnet18", "pretrained=True"]),
    ("models.resnet50-weights", lambda: models.resnet50(weights=42), TypeError, ["resnet50", "weights"]),
    ("models.ResNet-layers", lambda: models.ResNet(models.resnet.BasicBlock, [2, 2]), ValueError,
     ["ResNet", "'layers'"]),
    ("models.vgg16-num_classes", lambda: models.vgg16(num_classes=0), ValueError, ["vgg16", "'num_classes'"]),
    ("models.VGG-features", lambda: models.VGG(None), TypeError, ["VGG", "'features'"]),
    ("models.mobilenet_v2-width_mult", lambda: models.mobilenet_v2(width_mult=-1), ValueError,
     ["MobileNetV2", "'width_mult'"]),
    ("models.BertConfig-num_labels", lambda: models.BertConfig(num_labels=0), ValueError, ["BertConfig", "num_labels"]),
    ("models.BertModel-config", lambda: models.BertModel(models.GPT2Config()), TypeError, ["BertModel", "config"]),
    ("models.BertForSequenceClassification-labels", lambda: _tiny_bert()(np.array([[1, 2]]), labels=np.array([5])),
     ValueError, ["BertForSequenceClassification", "'labels'"]),
    ("models.BertForMaskedLM-input_ids", lambda: _tiny_bert(models.BertForMaskedLM)(np.array([[1.5]])), TypeError,
     ["BertModel", "'input_ids'"]),
    ("models.GPT2Config-n_head", lambda: models.GPT2Model(models.GPT2Config(n_embd=10, n_head=3)), ValueError,
     ["GPT2Config", "n_head"]),
    ("models.GPT2Model-attention_mask", lambda: _tiny_gpt2()(np.array([[1, 2]]), attention_mask=np.ones((1, 5))),
     ValueError, ["GPT2Model", "'attention_mask'"]),
    ("models.GPT2LMHeadModel-temperature",
     lambda: _tiny_gpt2().generate(np.array([[1, 2]]), do_sample=True, temperature=-1.0), ValueError,
     ["GPT2LMHeadModel.generate", "'temperature'"]),
    ("models.from_pretrained-directory", lambda: models.GPT2LMHeadModel.from_pretrained("/nonexistent/model-dir"),
     FileNotFoundError, ["GPT2LMHeadModel.from_pretrained", "/nonexistent/model-dir"]),
    ("models.AutoConfig-path", lambda: models.AutoConfig.from_pretrained(123), TypeError,
     ["AutoConfig.from_pretrained", "'path'"]),
    ("models.AutoModel-directory", lambda: models.AutoModel.from_pretrained("/nonexistent/model-dir"),
     FileNotFoundError, ["/nonexistent/model-dir"]),
    ("models.KVCache-max_length", lambda: models.KVCache(max_length=0), ValueError, ["KVCache", "max_length"]),
    ("models.SequenceClassifierOutput-field", lambda: models.SequenceClassifierOutput(logit=1), TypeError,
     ["SequenceClassifierOutput", "'logit'"]),
]
CASES += MODEL_CASES

IDS = [case[0] for case in CASES]


def test_catalogue_is_large_and_unique():
    assert len(CASES) >= 60
    assert len(set(IDS)) == len(IDS), [i for i in IDS if IDS.count(i) > 1]


@pytest.mark.parametrize("case_id,call,exc,words", CASES, ids=IDS)
def test_bad_input_raises_clearly(case_id, call, exc, words):
    assert not dist.is_initialized()
    assert_raises_naming(call, exc, words)


def test_every_public_op_is_covered():
    covered = {case_id.split("-")[0] for case_id in IDS}
    ops_in_catalogue = {name for name in ops.__all__ if name != "LSTMCache"}
    assert ops_in_catalogue <= covered, sorted(ops_in_catalogue - covered)


def _covered(name):
    return any(case_id == name or case_id.startswith((name + "-", name + ".")) for case_id in IDS)


def test_every_nn_module_type_is_covered():
    skip = {"functional", "init", "utils", "Identity"}     # Identity takes anything, as torch's does
    missing = [name for name in nn.__all__ if name not in skip and not _covered(name)]
    assert not missing, missing


def test_every_keras_layer_is_covered():
    skip = {"Layer", "InputLayer"}                # the base class; InputLayer is made by Input
    missing = [name for name in klayers.__all__ if name not in skip and not _covered("keras-" + name)]
    assert not missing, missing


def test_every_optimizer_is_covered():
    names = [n for n in optim.__all__ if n not in ("Optimizer", "lr_scheduler")]
    names += [n for n in optim.lr_scheduler.__all__ if n != "LRScheduler"]
    missing = [name for name in names if not _covered(name)]
    assert not missing, missing


def test_process_survives_the_whole_catalogue():
    """Runs every case again back to back in this process, then checks the
    library still computes correctly (no corrupted state, no crash)."""
    for case_id, call, exc, _ in CASES:
        with pytest.raises(exc):
            call()
    gc.collect()
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(ops.matmul(a, a.T), a @ a.T, rtol=1e-6)
    np.testing.assert_allclose(ops.relu(a - 2), np.maximum(a - 2, 0))
    assert not dist.is_initialized()


def test_every_model_constructor_is_covered():
    """One case per constructor family and per text class of pyfastnn.models (the tokenizers have their own)."""
    names = ["resnet18", "ResNet", "vgg16", "VGG", "mobilenet_v2", "BertConfig", "BertModel",
             "BertForSequenceClassification", "BertForMaskedLM", "GPT2Config", "GPT2Model", "GPT2LMHeadModel",
             "AutoConfig", "AutoModel", "KVCache"]
    missing = [name for name in names if not _covered("models." + name)]
    assert not missing, missing
