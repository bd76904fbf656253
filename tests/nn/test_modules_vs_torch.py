"""Every pyfastnn.nn module against PyTorch with copied weights.

Each check builds the torch module and ours with the same constructor
arguments, copies torch's state_dict into ours with exactly the call the SPEC
promises (``load_state_dict({k: v.detach().numpy() ...})``), runs the same
random input and compares the forward outputs, then backpropagates the same
random-weighted sum of the outputs and compares every parameter gradient and
every input gradient.
"""
import math
import warnings

import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn
from conftest import assert_raises_naming, rel_error

torch = pytest.importorskip("torch")

# torch's own advisory warnings about inputs these tests use on purpose
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
              pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")]

from module_check import (F64_TOL, FWD_TOL, GRAD_TOL, Const, _np, check, copy_weights, pair,  # noqa: E402
                          randomize, rnd)


# ---------------------------------------------------- state_dict keys/shapes
DEFAULT_BUILDS = {
    "Linear": lambda m: m.Linear(7, 5),
    "Linear-nobias": lambda m: m.Linear(7, 5, bias=False),
    "Conv2d": lambda m: m.Conv2d(3, 5, 3),
    "Conv2d-groups-nobias": lambda m: m.Conv2d(4, 6, (3, 2), groups=2, bias=False),
    "MaxPool2d": lambda m: m.MaxPool2d(2),
    "AvgPool2d": lambda m: m.AvgPool2d(3, 2, 1),
    "Flatten": lambda m: m.Flatten(),
    "Identity": lambda m: m.Identity(),
    "ReLU": lambda m: m.ReLU(),
    "Dropout": lambda m: m.Dropout(0.3),
    "LSTM": lambda m: m.LSTM(5, 7),
    "LSTM-2layer-bidir-nobias": lambda m: m.LSTM(5, 7, num_layers=2, bidirectional=True, bias=False),
    "LSTMCell": lambda m: m.LSTMCell(5, 7),
    "MultiheadAttention": lambda m: m.MultiheadAttention(12, 3),
    "MultiheadAttention-kdim-vdim": lambda m: m.MultiheadAttention(12, 4, kdim=5, vdim=7),
    "MultiheadAttention-nobias": lambda m: m.MultiheadAttention(6, 2, bias=False),
    "Embedding": lambda m: m.Embedding(11, 4, padding_idx=2),
    "LayerNorm": lambda m: m.LayerNorm((3, 5)),
    "LayerNorm-noaffine": lambda m: m.LayerNorm(5, elementwise_affine=False),
    "LayerNorm-nobias": lambda m: m.LayerNorm(5, bias=False),
    "BatchNorm1d": lambda m: m.BatchNorm1d(7),
    "BatchNorm2d": lambda m: m.BatchNorm2d(3),
    "BatchNorm2d-noaffine-nostats": lambda m: m.BatchNorm2d(3, affine=False, track_running_stats=False),
    "Sequential": lambda m: m.Sequential(m.Conv2d(3, 4, 3), m.BatchNorm2d(4), m.ReLU(), m.Flatten(),
                                         m.Linear(4, 2)),
    "CrossEntropyLoss-weight": lambda m: m.CrossEntropyLoss(weight=torch.ones(3) if m is torch.nn else np.ones(3,
                                                                                                        np.float32)),
    "BCEWithLogitsLoss-weights": lambda m: m.BCEWithLogitsLoss(
        weight=torch.ones(3) if m is torch.nn else np.ones(3, np.float32),
        pos_weight=torch.ones(3) if m is torch.nn else np.ones(3, np.float32)),
    "MSELoss": lambda m: m.MSELoss(),
}


@pytest.mark.parametrize("name", list(DEFAULT_BUILDS))
def test_state_dict_keys_and_shapes_match_torch(name):
    t, o = pair(DEFAULT_BUILDS[name])
    t_sd, o_sd = t.state_dict(), o.state_dict()
    assert list(o_sd) == list(t_sd)
    for k in t_sd:
        assert tuple(o_sd[k].shape) == tuple(t_sd[k].shape), k
        assert np.dtype(o_sd[k].dtype) == t_sd[k].numpy().dtype, (k, o_sd[k].dtype, t_sd[k].dtype)
    assert [n for n, _ in o.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in o.named_buffers()] == [n for n, _ in t.named_buffers()]
    copy_weights(t, o)     # the promised call works unchanged
    for k, v in o.state_dict().items():
        np.testing.assert_array_equal(v, t_sd[k].numpy())


# --------------------------------------------------------- default init
def _uniform_bound_check(w, bound):
    """w looks like n draws of U(-bound, bound): within the bound, its max close
    to it, mean and std within 5 standard errors."""
    w = np.asarray(w, np.float64).ravel()
    n = w.size
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() >= (1 - 12 / n) * bound          # P(fail) ~ e^-12
    assert abs(w.mean()) < 5 * bound / math.sqrt(3 * n)
    assert abs(w.std() - bound / math.sqrt(3)) < 5 * bound / math.sqrt(15 * n)


def test_default_init_linear_and_conv():
    pyfastnn.manual_seed(0)
    lin = nn.Linear(1000, 300)
    _uniform_bound_check(lin.weight.numpy(), 1 / math.sqrt(1000))
    _uniform_bound_check(lin.bias.numpy(), 1 / math.sqrt(1000))
    conv = nn.Conv2d(16, 32, 3)
    _uniform_bound_check(conv.weight.numpy(), 1 / math.sqrt(16 * 9))
    _uniform_bound_check(conv.bias.numpy(), 1 / math.sqrt(16 * 9))
    grouped = nn.Conv2d(32, 64, 5, groups=4)
    _uniform_bound_check(grouped.weight.numpy(), 1 / math.sqrt(8 * 25))


def test_default_init_lstm_embedding_norms_mha():
    pyfastnn.manual_seed(1)
    lstm = nn.LSTM(20, 50, num_layers=2, bidirectional=True)
    for name, p in lstm.named_parameters():
        _uniform_bound_check(p.numpy(), 1 / math.sqrt(50))
    cell = nn.LSTMCell(20, 64)
    for name, p in cell.named_parameters():
        _uniform_bound_check(p.numpy(), 1 / math.sqrt(64))
    emb = nn.Embedding(500, 64, padding_idx=3)
    w = emb.weight.numpy()
    assert not np.any(w[3])
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02
    bn = nn.BatchNorm2d(5)
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(5))
    np.testing.assert_array_equal(bn.bias.numpy(), np.zeros(5))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(5))
    np.testing.assert_array_equal(bn.running_var, np.ones(5))
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.dtype == np.int64
    assert int(bn.num_batches_tracked) == 0
    ln = nn.LayerNorm((2, 3))
    np.testing.assert_array_equal(ln.weight.numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(ln.bias.numpy(), np.zeros((2, 3)))
    E = 64
    mha = nn.MultiheadAttention(E, 4)
    assert not np.any(mha.in_proj_bias.numpy())
    assert not np.any(mha.out_proj.bias.numpy())
    _uniform_bound_check(mha.in_proj_weight.numpy(), math.sqrt(6 / (E + 3 * E)))   # xavier on (3E, E)
    _uniform_bound_check(mha.out_proj.weight.numpy(), 1 / math.sqrt(E))
    mha2 = nn.MultiheadAttention(E, 4, kdim=40, vdim=24)
    _uniform_bound_check(mha2.k_proj_weight.numpy(), math.sqrt(6 / (E + 40)))
    _uniform_bound_check(mha2.v_proj_weight.numpy(), math.sqrt(6 / (E + 24)))


def test_manual_seed_reproduces_init():
    pyfastnn.manual_seed(5)
    a = nn.Linear(9, 4).weight.numpy().copy()
    b = nn.Linear(9, 4).weight.numpy().copy()
    pyfastnn.manual_seed(5)
    c = nn.Linear(9, 4).weight.numpy().copy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


# ----------------------------------------------------------------- Linear
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 7), (13, 7), (2, 3, 7), (7,)])
def test_linear(bias, shape):
    t, o = pair(lambda m: m.Linear(7, 5, bias=bias))
    check(t, o, [rnd(*shape)])


def test_module_accepts_plain_arrays():
    t, o = pair(lambda m: m.Linear(4, 3))
    copy_weights(t, o)
    x = rnd(5, 4)
    y = o(x)
    assert isinstance(y, pyfastnn.Tensor)
    assert rel_error(y.numpy(), t(torch.from_numpy(x)).detach().numpy()) < FWD_TOL


# ----------------------------------------------------------------- Conv2d
CONV_CASES = [
    dict(args=(3, 5, 3), kw={}, x=(1, 3, 7, 9)),
    dict(args=(3, 5, 3), kw=dict(stride=2, padding=1), x=(2, 3, 11, 8)),
    dict(args=(4, 6, (3, 2)), kw=dict(stride=(2, 1), padding=(1, 0), dilation=2), x=(2, 4, 13, 7)),
    dict(args=(3, 5, 3), kw=dict(padding="same"), x=(2, 3, 7, 5)),
    dict(args=(3, 5, 3), kw=dict(padding="same", dilation=2), x=(1, 3, 9, 6)),
    dict(args=(3, 5, 4), kw=dict(padding="same"), x=(1, 3, 7, 6)),
    dict(args=(3, 5, 3), kw=dict(padding="valid"), x=(1, 3, 5, 5)),
    dict(args=(4, 6, 3), kw=dict(groups=2, padding=1), x=(2, 4, 5, 7)),
    dict(args=(5, 5, 3), kw=dict(groups=5, padding=1), x=(3, 5, 7, 7)),          # depthwise
    dict(args=(5, 10, 3), kw=dict(groups=5, stride=2), x=(1, 5, 9, 11)),         # depthwise multiplier 2
    dict(args=(3, 7, 1), kw=dict(bias=False), x=(2, 3, 5, 3)),
    dict(args=(3, 5, 3), kw=dict(padding=2, bias=False), x=(3, 7, 5)),           # unbatched
    dict(args=(3, 4, (2, 4)), kw=dict(padding="same", dilation=(1, 3)), x=(3, 6, 13)),   # unbatched, even 'same'
    dict(args=(17, 33, 3), kw=dict(padding=1), x=(2, 17, 13, 11)),
    dict(args=(6, 9, 5), kw=dict(groups=3, stride=3, padding=2, dilation=(2, 1)), x=(2, 6, 17, 10)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c['args']}-{c['kw']}-{c['x']}")
def test_conv2d(case):
    t, o = pair(lambda m: m.Conv2d(*case["args"], **case["kw"]))
    check(t, o, [rnd(*case["x"])])


# ---------------------------------------------------------------- pooling
POOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=2, stride=1),
]


@pytest.mark.parametrize("kind", ["MaxPool2d", "AvgPool2d"])
@pytest.mark.parametrize("kw", POOL_CASES, ids=str)
def test_pooling(kind, kw):
    t, o = pair(lambda m: getattr(m, kind)(**kw))
    check(t, o, [rnd(2, 3, 7, 9)])


@pytest.mark.parametrize("kind", ["MaxPool2d", "AvgPool2d"])
def test_pooling_unbatched_and_batch1(kind):
    t, o = pair(lambda m: getattr(m, kind)(3, 2, 1))
    check(t, o, [rnd(3, 11, 6)])
    check(t, o, [rnd(1, 1, 5, 5)])


def test_maxpool_return_indices():
    t, o = pair(lambda m: m.MaxPool2d(3, 2, 1, return_indices=True))
    x = rnd(2, 3, 7, 8)
    ty, ti = t(torch.from_numpy(x))
    oy, oi = o(x)
    assert rel_error(oy.numpy(), ty.numpy()) < FWD_TOL
    np.testing.assert_array_equal(_np(oi), ti.numpy())


# ------------------------------------------ Flatten, Identity, activations
@pytest.mark.parametrize("build", [
    lambda m: m.Flatten(),
    lambda m: m.Flatten(0, 2),
    lambda m: m.Flatten(2),
    lambda m: m.Identity(),
    lambda m: m.ReLU(),
    lambda m: m.GELU(),
    lambda m: m.Sigmoid(),
    lambda m: m.Tanh(),
    lambda m: m.Softmax(dim=-1),
    lambda m: m.Softmax(dim=1),
    lambda m: m.Softmax(dim=0),
    lambda m: m.LogSoftmax(dim=-1),
    lambda m: m.LogSoftmax(dim=1),
], ids=["Flatten", "Flatten(0,2)", "Flatten(2)", "Identity", "ReLU", "GELU", "Sigmoid", "Tanh", "Softmax(-1)",
        "Softmax(1)", "Softmax(0)", "LogSoftmax(-1)", "LogSoftmax(1)"])
def test_shape_and_activation_modules(build):
    t, o = pair(build)
    x = rnd(3, 5, 2, 7) * 3
    check(t, o, [x])


def test_activation_tails():
    x = np.linspace(-30, 30, 241, dtype=np.float32).reshape(1, -1)
    for build in (lambda m: m.GELU(), lambda m: m.Sigmoid(), lambda m: m.Tanh(), lambda m: m.Softmax(-1),
                  lambda m: m.LogSoftmax(-1)):
        t, o = pair(build)
        check(t, o, [x])


# ---------------------------------------------------------------- Dropout
def test_dropout_eval_is_identity():
    d = nn.Dropout(0.5).eval()
    x = rnd(4, 9)
    np.testing.assert_array_equal(d(x).numpy(), x)
    t, o = pair(lambda m: m.Dropout(0.5))
    t.eval()
    o.eval()
    check(t, o, [x])


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_dropout_train_statistics_and_gradient(p):
    pyfastnn.manual_seed(3)
    d = nn.Dropout(p)
    assert d.training
    x = np.abs(rnd(200, 501)) + 0.5      # no zeros in the input
    xt = pyfastnn.tensor(x, requires_grad=True)
    y = d(xt)
    Y = y.numpy()
    zero = Y == 0
    frac = zero.mean()
    assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / x.size) + 1e-3, frac
    np.testing.assert_allclose(Y[~zero], x[~zero] / (1 - p), rtol=1e-6)
    g = rnd(200, 501, seed=4)
    (y * g).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), np.where(zero, 0, g / (1 - p)), rtol=1e-6, atol=1e-7)


def test_dropout_extremes_and_fresh_masks():
    x = rnd(50, 40) + 10
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x)
    one = nn.Dropout(1.0)
    xt = pyfastnn.tensor(x, requires_grad=True)
    y = one(xt)
    assert not np.any(y.numpy())
    y.sum().backward()
    assert not np.any(xt.grad.numpy())
    d = nn.Dropout(0.5)
    assert not np.array_equal(d(x).numpy(), d(x).numpy())
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


# ------------------------------------------------------------- Sequential
def _mlp(m, last_act):
    acts = {"relu": m.ReLU, "sigmoid": m.Sigmoid, "tanh": m.Tanh, "gelu": m.GELU, "silu": m.SiLU,
            "gelu_tanh": lambda: m.GELU(approximate="tanh")}
    return m.Sequential(m.Linear(7, 11), m.ReLU(), m.Linear(11, 5), m.Sigmoid(), m.Linear(5, 6), m.Tanh(),
                        m.Linear(6, 3), acts[last_act]())


@pytest.mark.parametrize("last_act", ["relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu"])
@pytest.mark.parametrize("shape", [(1, 7), (17, 7), (2, 3, 7)])
def test_sequential_fused_linear_activation(last_act, shape):
    t, o = pair(lambda m: _mlp(m, last_act))
    check(t, o, [rnd(*shape) * 2])


@pytest.mark.parametrize("last_act", ["gelu", "gelu_tanh", "silu"])
def test_gemm_epilogue_activation_in_inference_matches_torch(last_act):
    """Without autograd the GEMM applies gelu/gelu_tanh/silu in its epilogue; with it, the GEMM keeps the
    pre-activation for the backward pass. Both agree with torch, and with each other to rounding."""
    t, o = pair(lambda m: _mlp(m, last_act))
    copy_weights(t, o)
    x = rnd(37, 7) * 2
    with torch.no_grad():
        want = t(torch.from_numpy(x)).numpy()
    with pyfastnn.no_grad():
        fused = o(x).numpy()
    recorded = o(pyfastnn.tensor(x, requires_grad=True))
    assert recorded.grad_fn is not None
    assert rel_error(fused, want) < FWD_TOL
    assert rel_error(recorded.detach().numpy(), fused) < FWD_TOL


@pytest.mark.parametrize("act", ["ReLU", "Sigmoid", "Tanh"])
def test_sequential_fusion_equals_unfused_bitwise(act):
    pyfastnn.manual_seed(2)
    seq = nn.Sequential(nn.Linear(37, 29), getattr(nn, act)(), nn.Linear(29, 3))
    x = rnd(13, 37)
    results = []
    for fused in (True, False):
        seq.zero_grad()
        xt = pyfastnn.tensor(x.copy(), requires_grad=True)
        y = seq(xt) if fused else seq[2](seq[1](seq[0](xt)))
        (y * rnd(13, 3, seed=1)).sum().backward()
        results.append([y.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in seq.parameters()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_sequential_fused_relu_matches_exactly_at_zero_preactivation():
    # rows that give pre-activations of exactly 0 (zero input, zero bias): torch's relu grad there is 0
    t, o = pair(lambda m: m.Sequential(m.Linear(4, 3), m.ReLU(), m.Linear(3, 2)))
    with torch.no_grad():
        t[0].bias.zero_()
    x = rnd(5, 4)
    x[1] = 0
    check(t, o, [x])


def test_sequential_cnn_and_indexing():
    build = lambda m: m.Sequential(m.Conv2d(3, 5, 3, padding=1), m.ReLU(), m.MaxPool2d(2), m.Conv2d(5, 4, 3),
                                   m.Tanh(), m.AvgPool2d(2), m.Flatten(), m.Linear(4, 3), m.Dropout(0.2),
                                   m.Linear(3, 2), m.LogSoftmax(dim=1))
    t, o = pair(build)
    t.eval()
    o.eval()
    check(t, o, [rnd(2, 3, 9, 8)])
    assert len(o) == len(t)
    assert isinstance(o[0], nn.Conv2d) and isinstance(o[-1], nn.LogSoftmax)
    sub = o[6:8]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2
    assert [type(m).__name__ for m in o] == [type(m).__name__ for m in t]


def _stack(m, base):
    class Stack(base):
        def __init__(self):
            super().__init__()
            self.layers = m.ModuleList([m.Linear(5, 5) for _ in range(3)])
            self.layers.append(m.Linear(5, 4))
            self.head = m.Linear(4, 2)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x).tanh()
            return self.head(x)
    return Stack()


def test_modulelist_in_custom_module():
    torch.manual_seed(0)
    t = _stack(torch.nn, torch.nn.Module)
    o = _stack(nn, nn.Module)
    assert list(o.state_dict()) == list(t.state_dict())
    assert len(o.layers) == 4
    check(t, o, [rnd(3, 5)])


# ------------------------------------------------------------------- LSTM
LSTM_CASES = [
    dict(kw=dict(), x=(5, 3, 4), hx=False),
    dict(kw=dict(), x=(1, 1, 4), hx=True),
    dict(kw=dict(num_layers=2), x=(7, 2, 4), hx=True),
    dict(kw=dict(batch_first=True), x=(3, 5, 4), hx=True),
    dict(kw=dict(bidirectional=True), x=(6, 3, 4), hx=False),
    dict(kw=dict(num_layers=2, bidirectional=True, batch_first=True), x=(2, 5, 4), hx=True),
    dict(kw=dict(bias=False), x=(4, 2, 4), hx=False),
    dict(kw=dict(), x=(5, 4), hx=True),                                   # unbatched
    dict(kw=dict(num_layers=2, bidirectional=True), x=(3, 4), hx=False),  # unbatched
    dict(kw=dict(bidirectional=True, batch_first=True), x=(1, 4), hx=True),  # unbatched, batch_first ignored
]


@pytest.mark.parametrize("case", LSTM_CASES, ids=lambda c: f"{c['kw']}-{c['x']}-hx{c['hx']}")
def test_lstm(case):
    I, H = 4, 7
    kw = case["kw"]
    t, o = pair(lambda m: m.LSTM(I, H, **kw))
    x = rnd(*case["x"])
    inputs = [x]
    if case["hx"]:
        L = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
        B = None if len(case["x"]) == 2 else case["x"][0 if kw.get("batch_first") else 1]
        shape = (L, H) if B is None else (L, B, H)
        inputs.append((rnd(*shape, seed=1), rnd(*shape, seed=2)))
    t_out, o_out = check(t, o, inputs)
    assert len(o_out) == 3     # output, h_n, c_n


def test_lstm_dropout_eval_matches():
    t, o = pair(lambda m: m.LSTM(3, 5, num_layers=3, dropout=0.4))
    t.eval()
    o.eval()
    check(t, o, [rnd(4, 2, 3)])


@pytest.mark.parametrize("hx", [False, True])
@pytest.mark.parametrize("shape", [(3, 5), (1, 5), (5,)])
def test_lstm_cell(hx, shape):
    t, o = pair(lambda m: m.LSTMCell(5, 6))
    inputs = [rnd(*shape)]
    if hx:
        hshape = shape[:-1] + (6,)
        inputs.append((rnd(*hshape, seed=1), rnd(*hshape, seed=2)))
    check(t, o, inputs)


def test_lstm_cell_no_bias():
    t, o = pair(lambda m: m.LSTMCell(3, 4, bias=False))
    check(t, o, [rnd(2, 3), (rnd(2, 4, seed=1), rnd(2, 4, seed=2))])


# -------------------------------------------------------------------- MHA
def _causal(L, S):
    return np.triu(np.ones((L, S), bool), 1)      # True = masked, torch's MHA convention


def _mha_case(E=12, H=3, L=5, S=5, N=2, batch_first=False, same=True, kdim=None, vdim=None, need_weights=True,
              average=True, attn_mask=None, kpm=None, is_causal=False, unbatched=False, bias=True, seed=0):
    t, o = pair(lambda m: m.MultiheadAttention(E, H, kdim=kdim, vdim=vdim, batch_first=batch_first, bias=bias),
                seed=seed)
    randomize(t, seed)      # non-zero in_proj_bias so that bias slicing is checked

    def shape(n, d):
        if unbatched:
            return (n, d)
        return (N, n, d) if batch_first else (n, N, d)
    q = rnd(*shape(L, E), seed=seed + 1)
    if same:
        k = v = q
    else:
        k = rnd(*shape(S, kdim or E), seed=seed + 2)
        v = rnd(*shape(S, vdim or E), seed=seed + 3)
    kwargs = dict(need_weights=need_weights, average_attn_weights=average)
    if attn_mask is not None:
        kwargs["attn_mask"] = Const(attn_mask)
    if kpm is not None:
        kwargs["key_padding_mask"] = Const(kpm)
    if is_causal:
        kwargs["is_causal"] = True
    t_out, o_out = check(t, o, [q, k, v], kwargs)
    if need_weights:
        assert len(o_out) == 2
    else:
        assert len(o_out) == 1      # (out, None): None is flattened away
    return t_out, o_out


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_self_attention(batch_first, need_weights):
    _mha_case(batch_first=batch_first, need_weights=need_weights, L=7, N=3)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_cross_attention(batch_first, need_weights):
    _mha_case(batch_first=batch_first, need_weights=need_weights, same=False, L=3, S=7, N=2)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_kdim_vdim(need_weights):
    _mha_case(E=8, H=2, kdim=5, vdim=3, same=False, L=4, S=6, N=1, need_weights=need_weights)


def test_mha_per_head_weights_and_no_bias():
    _mha_case(same=False, L=4, S=5, average=False)
    _mha_case(E=6, H=2, same=False, L=3, S=2, bias=False)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("kind", ["bool", "float", "bool3d"])
def test_mha_attn_mask(kind, need_weights):
    L, S, N, H = 5, 7, 2, 3
    rng = np.random.default_rng(7)
    if kind == "bool":
        mask = rng.random((L, S)) < 0.3
        mask[:, 0] = False          # no fully masked row (torch gives NaN there)
    elif kind == "float":
        mask = (rng.standard_normal((L, S)) * 2).astype(np.float32)
        mask[1, 2:] = -np.inf
    else:
        mask = rng.random((N * H, L, S)) < 0.3
        mask[..., 1] = False
    _mha_case(L=L, S=S, N=N, H=H, same=False, attn_mask=mask, need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_attn_mask", [None, "bool", "float"])
def test_mha_key_padding_mask(need_weights, with_attn_mask):
    L, S, N = 4, 6, 3
    kpm = np.zeros((N, S), bool)
    kpm[0, 4:] = True
    kpm[2, 1] = True
    am = None
    if with_attn_mask == "bool":
        am = _causal(L, S)
    elif with_attn_mask == "float":
        am = rnd(L, S, seed=9)
    _mha_case(L=L, S=S, N=N, same=False, kpm=kpm, attn_mask=am, need_weights=need_weights, batch_first=True)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_is_causal_with_causal_mask(need_weights):
    L = 6
    _mha_case(L=L, S=L, N=2, attn_mask=_causal(L, L), is_causal=True, need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("same", [True, False])
def test_mha_unbatched(need_weights, same):
    kpm = np.zeros(5, bool)
    kpm[3] = True
    _mha_case(L=5 if same else 3, S=5, unbatched=True, same=same, need_weights=need_weights, kpm=kpm)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_larger_sequences_and_odd_head_dim(need_weights):
    # several kernel tiles along L and S, head_dim 5 and 16, masks on the tile edges
    L, S, N = 67, 131, 2
    kpm = np.zeros((N, S), bool)
    kpm[0, 64:] = True
    kpm[1, ::7] = True
    am = _causal(L, S)
    am[:, :3] = False
    _mha_case(E=15, H=3, L=L, S=S, N=N, same=False, kpm=kpm, attn_mask=am, need_weights=need_weights,
              batch_first=True)
    _mha_case(E=48, H=3, L=L, S=L, N=1, need_weights=need_weights)


def test_mha_dropout_in_eval_matches():
    t, o = pair(lambda m: m.MultiheadAttention(8, 2, dropout=0.5))
    t.eval()
    o.eval()
    q = rnd(3, 2, 8)
    check(t, o, [q, q, q])


# -------------------------------------------------------------- Embedding
@pytest.mark.parametrize("padding_idx", [None, 0, -2])
def test_embedding(padding_idx):
    t, o = pair(lambda m: m.Embedding(11, 5, padding_idx=padding_idx))
    randomize(t)
    idx = np.array([[0, 3, 9, 3, 0], [1, 2, 10, 9, 4], [0, 0, 0, 5, 7]], np.int64)
    check(t, o, [idx])
    if padding_idx is not None:
        row = padding_idx % 11
        assert not np.any(o.weight.grad.numpy()[row])
        assert np.any(o.weight.grad.numpy()[(row + 3) % 11])


def test_embedding_scalar_and_1d_indices():
    t, o = pair(lambda m: m.Embedding(7, 3))
    check(t, o, [np.array([6, 0, 6], np.int64)])
    check(t, o, [np.array(4, np.int64)])


# -------------------------------------------------------------- LayerNorm
@pytest.mark.parametrize("normalized_shape,x,kw", [
    (7, (3, 7), {}),
    (7, (1, 7), {}),
    ((3, 5), (2, 4, 3, 5), {}),
    ((4, 3, 5), (2, 4, 3, 5), {}),
    (6, (2, 3, 6), dict(elementwise_affine=False)),
    (6, (5, 6), dict(bias=False)),
    (5, (5,), {}),
])
def test_layer_norm(normalized_shape, x, kw):
    t, o = pair(lambda m: m.LayerNorm(normalized_shape, **kw))
    randomize(t)
    check(t, o, [rnd(*x) * 3 + 1])


# -------------------------------------------------------------- BatchNorm
BN_CASES = [
    ("BatchNorm1d", dict(), (6, 5)),
    ("BatchNorm1d", dict(), (3, 5, 7)),
    ("BatchNorm1d", dict(momentum=None), (4, 5)),
    ("BatchNorm2d", dict(), (2, 3, 5, 7)),
    ("BatchNorm2d", dict(), (1, 3, 4, 3)),
    ("BatchNorm2d", dict(momentum=None), (3, 3, 2, 5)),
    ("BatchNorm2d", dict(momentum=0.3, eps=1e-3), (2, 3, 3, 3)),
    ("BatchNorm2d", dict(affine=False), (2, 3, 5, 2)),
    ("BatchNorm2d", dict(track_running_stats=False), (2, 3, 5, 2)),
]


@pytest.mark.parametrize("kind,kw,x", BN_CASES, ids=str)
def test_batch_norm_train_then_eval(kind, kw, x):
    t, o = pair(lambda m: getattr(m, kind)(x[1], **kw))
    randomize(t)
    copy_weights(t, o)
    for step in range(3):
        t.zero_grad()
        o.zero_grad()
        check(t, o, [rnd(*x, seed=step) * (step + 1) + step], copy=False, seed=step)
    t_sd, o_sd = t.state_dict(), o.state_dict()
    assert list(o_sd) == list(t_sd)
    for k, v in t_sd.items():
        if k == "num_batches_tracked" or k.endswith(".num_batches_tracked"):
            assert int(o_sd[k]) == int(v) == 3
        else:
            assert rel_error(o_sd[k], v.numpy()) < FWD_TOL, k
    t.eval()
    o.eval()
    t.zero_grad()
    o.zero_grad()
    check(t, o, [rnd(*x, seed=10) * 2 - 1], copy=False)
    if kw.get("track_running_stats", True):
        assert int(o.state_dict()["num_batches_tracked"]) == 3     # eval does not count


def test_batch_norm_eval_with_loaded_statistics():
    t, o = pair(lambda m: m.BatchNorm2d(4))
    randomize(t)
    with torch.no_grad():
        t.running_mean.copy_(torch.randn(4))
        t.running_var.copy_(torch.rand(4) + 0.5)
    t.eval()
    o.eval()
    check(t, o, [rnd(2, 4, 3, 5)])


def test_batch_norm1d_single_sample_train_raises():
    with pytest.raises(ValueError):
        nn.BatchNorm1d(3)(rnd(1, 3))


# ----------------------------------------------------------------- losses
def _targets(N, C, seed=0, shape=None):
    return np.random.default_rng(seed).integers(0, C, shape or (N,)).astype(np.int64)


def _loss_pair(name, **kw):
    t_kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    return getattr(torch.nn, name)(**t_kw), getattr(nn, name)(**kw)


CE_CASES = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(weight=True),
    dict(weight=True, reduction="sum"),
    dict(weight=True, reduction="none"),
    dict(ignore_index=2),
    dict(ignore_index=2, weight=True),
    dict(ignore_index=2, reduction="none"),
    dict(label_smoothing=0.1),
    dict(label_smoothing=0.2, weight=True),
    dict(label_smoothing=0.15, ignore_index=1, weight=True),
    dict(label_smoothing=0.1, ignore_index=1, reduction="sum"),
    dict(label_smoothing=0.1, reduction="none"),
    dict(label_smoothing=0.1, ignore_index=3),
]


@pytest.mark.parametrize("N,C", [(1, 5), (13, 7)])
@pytest.mark.parametrize("case", CE_CASES, ids=str)
def test_cross_entropy_class_targets(case, N, C):
    kw = dict(case)
    if kw.pop("weight", False):
        kw["weight"] = np.random.default_rng(5).random(C).astype(np.float32) + 0.2
    target = _targets(N, C, seed=N)
    if "ignore_index" in kw:
        target[target == kw["ignore_index"]] = kw["ignore_index"] + 1
        if N > 1:
            target[::3] = kw["ignore_index"]
    t, o = _loss_pair("CrossEntropyLoss", **kw)
    check(t, o, [rnd(N, C) * 2, Const(target)])


def test_cross_entropy_ignore_index_default_minus_100():
    t, o = _loss_pair("CrossEntropyLoss")
    target = _targets(6, 4)
    target[2] = -100
    check(t, o, [rnd(6, 4), Const(target)])


@pytest.mark.parametrize("case", [dict(), dict(reduction="none"), dict(weight=True), dict(label_smoothing=0.1),
                                  dict(ignore_index=0, weight=True, label_smoothing=0.05)], ids=str)
def test_cross_entropy_spatial(case):
    kw = dict(case)
    if kw.pop("weight", False):
        kw["weight"] = np.random.default_rng(5).random(5).astype(np.float32) + 0.2
    t, o = _loss_pair("CrossEntropyLoss", **kw)
    check(t, o, [rnd(2, 5, 3, 4), Const(_targets(0, 5, shape=(2, 3, 4)))])
    check(t, o, [rnd(3, 5, 7), Const(_targets(0, 5, shape=(3, 7)))])


@pytest.mark.parametrize("case", [dict(), dict(reduction="sum"), dict(reduction="none"), dict(weight=True),
                                  dict(label_smoothing=0.2), dict(label_smoothing=0.1, weight=True)], ids=str)
def test_cross_entropy_probability_targets(case):
    kw = dict(case)
    C = 5
    if kw.pop("weight", False):
        kw["weight"] = np.random.default_rng(5).random(C).astype(np.float32) + 0.2
    t, o = _loss_pair("CrossEntropyLoss", **kw)
    rng = np.random.default_rng(3)
    p = rng.random((7, C)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    check(t, o, [rnd(7, C), Const(p)])
    p4 = rng.random((2, C, 3, 2)).astype(np.float32)
    p4 /= p4.sum(1, keepdims=True)
    check(t, o, [rnd(2, C, 3, 2), Const(p4)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_nll_unbatched(reduction):
    t, o = _loss_pair("CrossEntropyLoss", reduction=reduction)
    check(t, o, [rnd(5), Const(np.array(3, np.int64))])
    p = np.random.default_rng(0).random(5).astype(np.float32)
    check(t, o, [rnd(5), Const(p / p.sum())])
    t, o = _loss_pair("NLLLoss", reduction=reduction)
    check(t, o, [rnd(5), Const(np.array(1, np.int64))])


@pytest.mark.parametrize("name", ["CrossEntropyLoss", "NLLLoss"])
def test_all_targets_ignored_gives_nan_like_torch(name):
    t, o = _loss_pair(name, ignore_index=1)
    x = rnd(3, 4)
    y = np.ones(3, np.int64)
    ref = t(torch.from_numpy(x), torch.from_numpy(y))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = o(x, y)
    assert math.isnan(float(ref)) and math.isnan(float(got.numpy()))


@pytest.mark.parametrize("case", [dict(), dict(reduction="sum"), dict(reduction="none"), dict(weight=True),
                                  dict(ignore_index=1), dict(ignore_index=1, weight=True, reduction="sum")],
                         ids=str)
def test_nll_loss(case):
    kw = dict(case)
    C = 6
    if kw.pop("weight", False):
        kw["weight"] = np.random.default_rng(5).random(C).astype(np.float32) + 0.2
    target = _targets(9, C, seed=2)
    target[::4] = kw.get("ignore_index", -100)
    t, o = _loss_pair("NLLLoss", **kw)
    logp = rnd(9, C)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    check(t, o, [logp, Const(target)])


def test_nll_loss_spatial():
    t, o = _loss_pair("NLLLoss")
    check(t, o, [rnd(2, 4, 3, 5), Const(_targets(0, 4, shape=(2, 3, 5)))])


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses(name, reduction):
    t, o = _loss_pair(name, reduction=reduction)
    check(t, o, [rnd(3, 5, 2), rnd(3, 5, 2, seed=1)])      # target requires grad too
    check(t, o, [rnd(1, 7), Const(rnd(1, 7, seed=2))])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_loss(reduction, weighted):
    kw = dict(reduction=reduction)
    if weighted:
        kw["weight"] = np.random.default_rng(2).random(5).astype(np.float32)
    t, o = _loss_pair("BCELoss", **kw)
    rng = np.random.default_rng(1)
    p = (rng.random((4, 5)) * 0.98 + 0.01).astype(np.float32)
    y = (rng.random((4, 5)) < 0.5).astype(np.float32)
    check(t, o, [p, Const(y)])
    soft = rng.random((4, 5)).astype(np.float32)
    check(t, o, [p, Const(soft)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", ["none", "pos_weight", "weight", "both"])
def test_bce_with_logits_loss(reduction, weights):
    C = 5
    kw = dict(reduction=reduction)
    rng = np.random.default_rng(4)
    if weights in ("pos_weight", "both"):
        kw["pos_weight"] = (rng.random(C) * 3).astype(np.float32)
    if weights in ("weight", "both"):
        kw["weight"] = rng.random((3, 1)).astype(np.float32)
    t, o = _loss_pair("BCEWithLogitsLoss", **kw)
    x = rnd(3, C) * 4
    x[0, 0] = 40.0      # saturated logits stay finite
    x[1, 1] = -40.0
    y = (rng.random((3, C)) < 0.5).astype(np.float32)
    check(t, o, [x, Const(y)])
    check(t, o, [x, Const(rng.random((3, C)).astype(np.float32))])


@pytest.mark.parametrize("name,kw", [
    ("BCEWithLogitsLoss", dict()),
    ("BCEWithLogitsLoss", dict(pos_weight=np.array([0.5, 2.0, 1.5, 1.0], np.float32), reduction="sum")),
    ("BCEWithLogitsLoss", dict(weight=np.array([0.3, 1.0, 2.0, 0.5], np.float32))),
    ("BCELoss", dict()),
    ("BCELoss", dict(weight=np.array([0.3, 1.0, 2.0, 0.5], np.float32), reduction="none")),
    ("CrossEntropyLoss", dict()),
    ("CrossEntropyLoss", dict(label_smoothing=0.1, weight=np.array([0.3, 1.0, 2.0, 0.5], np.float32))),
    ("MSELoss", dict()),
    ("L1Loss", dict(reduction="sum")),
])
def test_loss_gradient_wrt_soft_targets(name, kw):
    """torch differentiates these losses in a float target too (distillation, learned targets)."""
    t, o = _loss_pair(name, **kw)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    if name == "BCELoss":
        x = (1 / (1 + np.exp(-x))).astype(np.float32)
    y = rng.random((5, 4)).astype(np.float32)
    if name == "CrossEntropyLoss":
        y /= y.sum(1, keepdims=True)
    check(t, o, [x, y])


def test_l1_loss_gradient_at_zero_difference():
    t, o = _loss_pair("L1Loss")
    x = rnd(4, 3)
    y = x.copy()
    y[::2] += 1
    check(t, o, [x, Const(y)])


def test_losses_in_a_training_step_match():
    """A small model with a loss on top: the whole chain against torch."""
    build = lambda m: m.Sequential(m.Linear(6, 9), m.GELU(), m.LayerNorm(9), m.Linear(9, 4))
    t, o = pair(build)
    copy_weights(t, o)
    x = rnd(8, 6)
    y = _targets(8, 4)
    tl = torch.nn.CrossEntropyLoss(label_smoothing=0.05)(t(torch.from_numpy(x)), torch.from_numpy(y))
    ol = nn.CrossEntropyLoss(label_smoothing=0.05)(o(x), y)
    assert rel_error(ol.numpy(), tl.detach().numpy()) < FWD_TOL
    tl.backward()
    ol.backward()
    for (name, tp), (oname, op) in zip(t.named_parameters(), o.named_parameters()):
        assert name == oname
        assert rel_error(op.grad.numpy(), tp.grad.numpy()) < GRAD_TOL, name


# ------------------------------------------- non-contiguous inputs, frozen params
def test_non_contiguous_inputs():
    x = np.asfortranarray(rnd(6, 5))
    t, o = pair(lambda m: m.Linear(5, 3))
    check(t, o, [x])
    check(t, o, [rnd(5, 8)[:, ::2].T])
    t, o = pair(lambda m: m.Conv2d(3, 4, 3, padding=1))
    check(t, o, [rnd(2, 7, 3, 6).transpose(0, 2, 3, 1)])        # an NHWC buffer viewed as NCHW
    check(t, o, [rnd(2, 3, 10, 12)[:, :, ::2, 1::2]])
    t, o = pair(lambda m: m.MaxPool2d(2))
    check(t, o, [rnd(2, 8, 3, 6).transpose(0, 2, 1, 3)])
    t, o = pair(lambda m: m.LSTM(4, 5))
    check(t, o, [rnd(3, 6, 4).transpose(1, 0, 2)])
    t, o = pair(lambda m: m.LayerNorm(6))
    randomize(t)
    check(t, o, [rnd(6, 4).T])
    t, o = pair(lambda m: m.Softmax(dim=1))
    check(t, o, [rnd(5, 3, 4).transpose(2, 0, 1)])
    t, o = pair(lambda m: m.BatchNorm2d(3))
    check(t, o, [rnd(2, 5, 4, 3).transpose(0, 3, 1, 2)])
    t, o = pair(lambda m: m.MultiheadAttention(6, 2, batch_first=True))
    q = rnd(4, 2, 6).transpose(1, 0, 2)
    check(t, o, [q, q, q])


def test_frozen_parameters_get_no_gradient():
    build = lambda m: m.Sequential(m.Conv2d(2, 3, 3), m.BatchNorm2d(3), m.Sigmoid(), m.Flatten(), m.Linear(24, 4),
                                   m.Tanh(), m.Linear(4, 2))
    t, o = pair(build)
    for mod in (t, o):
        mod[0].weight.requires_grad_(False)
        mod[1].bias.requires_grad_(False)
        mod[4].requires_grad_(False)
        mod.eval()      # (in training mode BatchNorm makes the conv bias gradient exactly 0)
    check(t, o, [rnd(2, 2, 4, 6)])
    assert o[0].weight.grad is None and o[4].weight.grad is None and o[1].bias.grad is None
    assert o[0].bias.grad is not None and o[6].weight.grad is not None


def test_linear_empty_batch():
    t, o = pair(lambda m: m.Linear(4, 3))
    copy_weights(t, o)
    x = pyfastnn.tensor(np.zeros((0, 4), np.float32), requires_grad=True)
    y = o(x)
    assert y.shape == (0, 3)
    y.sum().backward()
    assert o.weight.grad.shape == (3, 4) and not np.any(o.weight.grad.numpy())


def test_sequential_ordered_dict_and_nesting():
    from collections import OrderedDict
    build = lambda m: m.Sequential(OrderedDict([("enc", m.Sequential(m.Linear(5, 6), m.ReLU())),
                                                ("drop", m.Dropout(0.1)), ("head", m.Linear(6, 2))]))
    t, o = pair(build)
    assert list(o.state_dict()) == list(t.state_dict()) == ["enc.0.weight", "enc.0.bias", "head.weight", "head.bias"]
    t.eval()
    o.eval()
    check(t, o, [rnd(3, 5)])
    assert not o.training and not o.enc.training and not o.drop.training
    o.train()
    assert o.enc[1].training


def test_dropout_manual_seed_reproducible():
    d = nn.Dropout(0.5)
    x = rnd(30, 40)
    pyfastnn.manual_seed(11)
    a = d(x).numpy()
    pyfastnn.manual_seed(11)
    b = d(x).numpy()
    np.testing.assert_array_equal(a, b)


def test_lstm_and_mha_dropout_in_training_runs():
    pyfastnn.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = pyfastnn.tensor(rnd(5, 2, 3), requires_grad=True)
    y1, _ = lstm(x)
    y2, _ = lstm(x)
    assert not np.allclose(y1.numpy(), y2.numpy())
    y1.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    lstm.eval()
    np.testing.assert_array_equal(lstm(x)[0].numpy(), lstm(x)[0].numpy())
    mha = nn.MultiheadAttention(6, 2, dropout=0.5)
    q = rnd(4, 2, 6)
    out, w = mha(q, q, q)
    assert out.shape == (4, 2, 6) and w.shape == (2, 4, 4)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_float_key_padding_mask_and_mixed_masks(need_weights):
    L, S, N = 3, 5, 2
    kpm = rnd(N, S, seed=3)
    _mha_case(L=L, S=S, N=N, same=False, kpm=kpm, need_weights=need_weights)
    kpm_bool = np.zeros((N, S), bool)
    kpm_bool[1, 0] = True
    _mha_case(L=L, S=S, N=N, same=False, kpm=kpm_bool, attn_mask=rnd(L, S, seed=4), need_weights=need_weights)


def test_mha_unbatched_batch_first_per_head_weights():
    _mha_case(L=4, S=4, unbatched=True, batch_first=True, average=False)
    _mha_case(L=3, S=5, unbatched=True, same=False, average=False, attn_mask=_causal(3, 5))


def test_representative_modules_on_every_isa_and_thread_count(isa, threads):
    t, o = pair(lambda m: m.Sequential(m.Conv2d(3, 5, 3, padding=1, groups=1), m.ReLU(), m.MaxPool2d(2),
                                       m.Conv2d(5, 5, 3, groups=5), m.AvgPool2d(2, 1), m.Flatten(),
                                       m.Linear(10, 7), m.Sigmoid(), m.LayerNorm(7), m.Linear(7, 3)))
    check(t, o, [rnd(3, 3, 9, 10)])
    t, o = pair(lambda m: m.LSTM(5, 9, num_layers=2, bidirectional=True, batch_first=True))
    check(t, o, [rnd(3, 6, 5), (rnd(4, 3, 9, seed=1), rnd(4, 3, 9, seed=2))])
    t, o = pair(lambda m: m.MultiheadAttention(12, 3, batch_first=True))
    q, kv = rnd(2, 9, 12), rnd(2, 13, 12, seed=1)
    check(t, o, [q, kv, kv], dict(need_weights=False, attn_mask=Const(_causal(9, 13))))


# ------------------------------------------------------------------ float64
F64_BUILDS = {
    "Linear": (lambda m: m.Linear(7, 5), [(3, 7)]),
    "Conv2d": (lambda m: m.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), [(2, 4, 7, 6)]),
    "MaxPool2d": (lambda m: m.MaxPool2d(3, 2, 1), [(2, 3, 7, 6)]),
    "AvgPool2d": (lambda m: m.AvgPool2d(3, 2, 1), [(2, 3, 7, 6)]),
    "Sequential-fused": (lambda m: _mlp(m, "tanh"), [(4, 7)]),
    "GELU-Softmax": (lambda m: m.Sequential(m.GELU(), m.Softmax(-1)), [(4, 7)]),
    "LSTM": (lambda m: m.LSTM(4, 5, num_layers=2, bidirectional=True), [(5, 2, 4)]),
    "LSTMCell": (lambda m: m.LSTMCell(4, 5), [(3, 4)]),
    "MultiheadAttention": (lambda m: m.MultiheadAttention(8, 2), [(4, 2, 8), (6, 2, 8), (6, 2, 8)]),
    "LayerNorm": (lambda m: m.LayerNorm((3, 4)), [(2, 3, 4)]),
    "BatchNorm2d": (lambda m: m.BatchNorm2d(3), [(2, 3, 4, 5)]),
    "BatchNorm1d": (lambda m: m.BatchNorm1d(3), [(4, 3)]),
}


@pytest.mark.parametrize("name", list(F64_BUILDS))
def test_float64_modules(name):
    build, shapes = F64_BUILDS[name]
    t, o = pair(build)
    t.double()
    assert o.double() is o
    for p in o.parameters():
        assert p.dtype == np.float64
    for k, b in o.named_buffers():
        assert b.dtype == (np.int64 if k.endswith("num_batches_tracked") else np.float64), k
    inputs = [rnd(*s, seed=i, dtype=np.float64) for i, s in enumerate(shapes)]
    check(t, o, inputs, fwd_tol=F64_TOL, grad_tol=F64_TOL)


def test_float64_mha_need_weights_false_and_masks():
    t, o = pair(lambda m: m.MultiheadAttention(8, 2, batch_first=True))
    t.double()
    o.double()
    q = rnd(2, 3, 8, dtype=np.float64)
    kv = rnd(2, 5, 8, seed=1, dtype=np.float64)
    kpm = np.zeros((2, 5), bool)
    kpm[1, 3:] = True
    check(t, o, [q, kv, kv], dict(need_weights=False, key_padding_mask=Const(kpm)), fwd_tol=F64_TOL,
          grad_tol=F64_TOL)


@pytest.mark.parametrize("name,kw,target", [
    ("CrossEntropyLoss", dict(label_smoothing=0.1), "int"),
    ("CrossEntropyLoss", dict(), "int"),
    ("CrossEntropyLoss", dict(reduction="none"), "prob"),
    ("CrossEntropyLoss", dict(weight=np.array([0.2, 1.0, 3.0]), ignore_index=0, label_smoothing=0.1), "int"),
    ("CrossEntropyLoss", dict(weight=np.array([0.2, 1.0, 3.0]), label_smoothing=0.1), "prob"),
    ("NLLLoss", dict(), "int"),
    ("MSELoss", dict(), "float"),
    ("L1Loss", dict(reduction="sum"), "float"),
    ("BCEWithLogitsLoss", dict(pos_weight=np.array([0.5, 2.0, 1.0])), "binary"),
    ("BCELoss", dict(), "binary"),
    ("BCELoss", dict(weight=np.array([0.5, 2.0, 1.0]), reduction="sum"), "binary"),
    ("BCEWithLogitsLoss", dict(weight=np.array([0.5, 2.0, 1.0]), reduction="none"), "prob"),
])
def test_float64_losses(name, kw, target):
    t, o = _loss_pair(name, **kw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    if name == "BCELoss":
        x = 1 / (1 + np.exp(-x))
    y = {"int": lambda: np.array([0, 1, 2, 1]), "prob": lambda: np.full((4, 3), 1 / 3),
         "float": lambda: rng.standard_normal((4, 3)),
         "binary": lambda: (rng.random((4, 3)) < 0.5).astype(np.float64)}[target]()
    check(t, o, [x, Const(y)], fwd_tol=F64_TOL, grad_tol=F64_TOL)


def test_embedding_double_and_cast_on_load():
    """A float64 Embedding keeps float64; load from a float32 torch module casts."""
    t, o = pair(lambda m: m.Embedding(5, 3))
    o.double()
    copy_weights(t, o)
    assert o.weight.dtype == np.float64
    np.testing.assert_array_equal(o.weight.numpy(), t.weight.detach().double().numpy())


# ----------------------------------------------------------------- errors
def test_wrong_input_shapes_name_the_module():
    assert_raises_naming(lambda: nn.Linear(4, 3)(rnd(2, 5)), ValueError, ["Linear", "4"])
    assert_raises_naming(lambda: nn.Conv2d(3, 4, 3)(rnd(2, 5, 7, 7)), ValueError, ["Conv2d", "3"])
    assert_raises_naming(lambda: nn.Conv2d(3, 4, 3)(rnd(2, 3, 7, 7, 1)), ValueError, ["Conv2d"])
    assert_raises_naming(lambda: nn.Conv2d(3, 4, 3)(rnd(3, 7)), ValueError, ["Conv2d"])
    assert_raises_naming(lambda: nn.LSTM(4, 5)(rnd(3, 2, 6)), ValueError, ["LSTM", "4"])
    assert_raises_naming(lambda: nn.LSTM(4, 5)(rnd(3, 2, 2, 4)), ValueError, ["LSTM"])
    assert_raises_naming(lambda: nn.LSTM(4, 5)(rnd(3, 2, 4), (rnd(1, 3, 5), rnd(1, 3, 5))), ValueError,
                         ["LSTM", "hx"])
    assert_raises_naming(lambda: nn.LSTMCell(4, 5)(rnd(3, 6)), ValueError, ["LSTMCell"])
    assert_raises_naming(lambda: nn.LSTMCell(4, 5)(rnd(3, 4), (rnd(2, 5), rnd(2, 5))), ValueError, ["LSTMCell"])
    mha = nn.MultiheadAttention(6, 2)
    q = rnd(3, 2, 6)
    assert_raises_naming(lambda: mha(rnd(3, 2, 5), rnd(3, 2, 5), rnd(3, 2, 5)), ValueError, ["MultiheadAttention"])
    assert_raises_naming(lambda: mha(q, rnd(4, 2, 6), rnd(5, 2, 6)), ValueError, ["MultiheadAttention"])
    assert_raises_naming(lambda: mha(q, q, q, attn_mask=np.zeros((2, 2), bool)), ValueError,
                         ["MultiheadAttention", "attn_mask"])
    assert_raises_naming(lambda: mha(q, q, q, key_padding_mask=np.zeros((3, 3), bool)), ValueError,
                         ["MultiheadAttention", "key_padding_mask"])
    assert_raises_naming(lambda: nn.LayerNorm((3, 4))(rnd(2, 4, 3)), ValueError, ["LayerNorm"])
    assert_raises_naming(lambda: nn.BatchNorm2d(3)(rnd(2, 3, 4)), ValueError, ["BatchNorm2d"])
    assert_raises_naming(lambda: nn.BatchNorm2d(3)(rnd(2, 4, 4, 4)), ValueError, ["BatchNorm2d", "3"])
    assert_raises_naming(lambda: nn.BatchNorm1d(3)(rnd(2, 3, 4, 4)), ValueError, ["BatchNorm1d"])
    assert_raises_naming(lambda: nn.MaxPool2d(2)(rnd(5)), ValueError, ["pool"])
    assert_raises_naming(lambda: nn.AvgPool2d(9)(rnd(1, 1, 4, 4)), ValueError, ["pool"])
    with pytest.raises(ValueError, match="(?i)conv2d"):
        nn.Conv2d(3, 4, 5)(rnd(1, 3, 4, 4))          # kernel larger than the input
    assert_raises_naming(lambda: nn.Conv2d(3, 4, 4, stride=2, padding="same"), ValueError,
                         ["Conv2d", "same", "stride"])
    assert_raises_naming(lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, ["Conv2d", "padding", "full"])
    with pytest.raises(IndexError):
        nn.Embedding(5, 3)(np.array([1, 5]))
    with pytest.raises(IndexError):
        nn.Embedding(5, 3)(np.array([-1, 2]))
    assert_raises_naming(lambda: nn.Embedding(5, 3)(np.array([0.5, 1.0])), TypeError, ["mbedding"])


def test_loss_errors():
    assert_raises_naming(lambda: nn.CrossEntropyLoss()(rnd(4, 3), np.array([0, 1, 3, 2])), IndexError, ["3"])
    assert_raises_naming(lambda: nn.CrossEntropyLoss()(rnd(4, 3), np.array([0, 1, 2])), ValueError,
                         ["cross_entropy", "target"])
    assert_raises_naming(lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, ["reduction", "avg"])
    assert_raises_naming(lambda: nn.MSELoss()(rnd(4, 3), rnd(3, 4)), ValueError, ["mse_loss"])
    assert_raises_naming(lambda: nn.BCELoss()(rnd(4) * 5, np.ones(4, np.float32)), ValueError,
                         ["binary_cross_entropy"])
    assert_raises_naming(lambda: nn.NLLLoss()(rnd(4, 3), np.array([0, 1])), ValueError, ["nll_loss"])
    assert_raises_naming(lambda: nn.NLLLoss()(rnd(4, 3), np.array([0, 1, 2, 3])), IndexError, ["nll_loss", "3"])
    assert_raises_naming(lambda: nn.NLLLoss()(rnd(4, 3), np.array([0, 1, -1, 2])), IndexError, ["nll_loss", "-1"])
    assert_raises_naming(lambda: nn.NLLLoss()(rnd(4, 3), np.zeros(4, np.float32)), TypeError, ["nll_loss", "target"])
    assert_raises_naming(lambda: nn.CrossEntropyLoss()(rnd(4, 3), np.array([0, -2, 1, 1])), IndexError, ["-2"])


def test_constructor_errors():
    with pytest.raises(ValueError):
        nn.Linear(-1, 3)
    assert_raises_naming(lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, ["Conv2d", "groups"])
    assert_raises_naming(lambda: nn.Conv2d(0, 6, 3), ValueError, ["Conv2d", "in_channels"])
    assert_raises_naming(lambda: nn.MultiheadAttention(10, 3), ValueError, ["MultiheadAttention", "num_heads"])
    assert_raises_naming(lambda: nn.LSTM(4, 0), ValueError, ["LSTM", "hidden_size"])
    assert_raises_naming(lambda: nn.Dropout(-0.1), ValueError, ["Dropout", "p"])
    assert_raises_naming(lambda: nn.Embedding(5, 3, padding_idx=5), ValueError, ["Embedding", "padding_idx"])
    assert_raises_naming(lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, ["Sequential"])


def test_load_state_dict_errors_name_the_key():
    t, o = pair(lambda m: m.Sequential(m.Linear(4, 3), m.ReLU(), m.BatchNorm1d(3)))
    good = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    missing = dict(good)
    del missing["0.bias"]
    # torch's errors and wording: RuntimeError "Error(s) in loading state_dict for Sequential: ..."
    assert_raises_naming(lambda: o.load_state_dict(missing), RuntimeError, ["Sequential", "0.bias", "Missing key"])
    extra = dict(good, **{"3.weight": np.zeros(3, np.float32)})
    assert_raises_naming(lambda: o.load_state_dict(extra), RuntimeError, ["3.weight", "Unexpected key"])
    wrong = dict(good, **{"0.weight": np.zeros((4, 3), np.float32)})
    assert_raises_naming(lambda: o.load_state_dict(wrong), RuntimeError, ["size mismatch for 0.weight", "[4, 3]",
                                                                          "[3, 4]"])
    # nothing was half-loaded by the failing calls
    before = {k: v.numpy().copy() for k, v in o.state_dict().items()}
    with pytest.raises(RuntimeError):
        o.load_state_dict(dict(good, **{"2.running_var": np.zeros(4, np.float32)}))
    for k, v in o.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    # non-strict loading reports and skips
    missing_keys, unexpected_keys = o.load_state_dict(dict(missing, extra_key=np.zeros(1)), strict=False)
    assert missing_keys == ["0.bias"] and unexpected_keys == ["extra_key"]
    # torch tensors themselves are accepted too
    o.load_state_dict(t.state_dict())
    np.testing.assert_array_equal(o[0].weight.numpy(), t[0].weight.detach().numpy())
    # loading copies in place: the Parameter objects are kept
    w = o[0].weight
    o.load_state_dict(good)
    assert o[0].weight is w


def test_dtype_errors():
    assert_raises_naming(lambda: nn.Linear(3, 2).to(dtype=np.int32), TypeError, ["Linear", "int32"])
    assert_raises_naming(lambda: pyfastnn.tensor(np.ones(3), dtype="float8"), TypeError, ["float8"])
    assert_raises_naming(lambda: nn.Linear(3, 2)(np.ones((2, 3), np.int32)), TypeError, ["int32"])
    assert_raises_naming(lambda: nn.Linear(3, 2)(np.ones((2, 3), np.float64)), TypeError, ["float64"])
    with pytest.raises(TypeError):
        nn.Conv2d(3, 2, 1)(np.ones((1, 3, 2, 2), np.int64))
    with pytest.raises(TypeError):
        nn.LSTM(3, 2)(np.ones((2, 1, 3), np.int32))
    with pytest.raises(ValueError):
        nn.Linear(3, 2).to("tpu")


def test_sequential_pools_before_relu_with_identical_values_and_gradients():
    """Sequential runs ReLU -> MaxPool2d as pool-then-relu; that must change nothing, bit for bit."""
    rng = np.random.default_rng(11)
    seq = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.MaxPool2d(2))
    x = pyfastnn.tensor(rng.standard_normal((4, 2, 9, 9)).astype(np.float32), requires_grad=True)
    x.data[0, 0] = -5.0                                  # whole windows <= 0 after the conv, ties at zero
    y_fused = seq(x)
    g = rng.standard_normal(y_fused.shape).astype(np.float32)
    (y_fused * pyfastnn.tensor(g)).sum().backward()
    fused_grads = [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in seq.parameters()]
    x.grad = None
    seq.zero_grad()
    y_plain = seq[2](seq[1](seq[0](x)))                  # the modules one by one
    (y_plain * pyfastnn.tensor(g)).sum().backward()
    plain_grads = [x.grad.numpy()] + [p.grad.numpy() for p in seq.parameters()]
    np.testing.assert_array_equal(y_fused.numpy(), y_plain.numpy())
    for a, b in zip(fused_grads, plain_grads):
        np.testing.assert_array_equal(a, b)
