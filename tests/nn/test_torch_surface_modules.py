"""The rest of torch.nn's everyday modules against PyTorch with copied weights:
1-d convolutions, transposed convolutions, the norms beyond batch/layer norm,
adaptive and 1-d pooling, padding, upsampling and pixel shuffles, every
activation module, GRU/RNN, the Transformer family and the remaining losses.

Each case is a constructor (run on torch.nn and on pyfastnn.nn with the same
arguments) and its inputs; the check compares the state_dict layout, the
forward outputs and every parameter and input gradient, in float32 and again
in float64 with a tight tolerance.
"""
import numpy as np
import pytest

from pyfastnn import nn
from conftest import rel_error
from module_check import F64_TOL, FWD_TOL, GRAD_TOL, Const, check, copy_weights, pair, randomize, rnd

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")


def _positive(*shape, seed=0):
    return np.abs(rnd(*shape, seed=seed)) + 0.1


def _signs(*shape, seed=0):
    return np.where(np.random.default_rng(seed).random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _probs(*shape, seed=0):
    p = np.random.default_rng(seed).random(shape).astype(np.float32) + 0.05
    return p / p.sum(-1, keepdims=True)


# torch computes these float64 gradients less exactly than we do: hardsigmoid's 1/6 is a float32 constant
# and CELU's negative-side gradient is rebuilt from the output; ours are the exact derivatives
LOOSE_F64 = dict(f64_tol=1e-7)
# tanh/relu RNNs keep torch's own uniform init: weights from randomize() saturate tanh, where 1 - y^2 cancels
# and even torch's float32 gradient is 3% away from its float64 one
DEFAULT_INIT = dict(randomize=False)
# through two stacked post-norm layers torch's float32 gradients are up to 1.2e-4 from float64 (ours 4e-5)
DEEP = dict(grad_tol=5e-4)

# name: (constructor, input shapes or input factories[, options])
CASES = {
    # -- convolutions
    "Conv1d": (lambda m: m.Conv1d(3, 5, 3), [(2, 3, 11)]),
    "Conv1d-stride-pad-dil": (lambda m: m.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2), [(2, 4, 13)]),
    "Conv1d-groups-nobias": (lambda m: m.Conv1d(4, 6, 5, groups=2, bias=False), [(3, 4, 9)]),
    "Conv1d-same": (lambda m: m.Conv1d(3, 4, 4, padding="same"), [(2, 3, 7)]),
    "Conv1d-unbatched": (lambda m: m.Conv1d(3, 4, 3, padding=1), [(3, 8)]),
    "ConvTranspose1d": (lambda m: m.ConvTranspose1d(3, 5, 3), [(2, 3, 7)]),
    "ConvTranspose1d-stride-outpad": (lambda m: m.ConvTranspose1d(4, 6, 4, stride=3, padding=1,
                                                                  output_padding=2, groups=2), [(2, 4, 5)]),
    "ConvTranspose2d": (lambda m: m.ConvTranspose2d(3, 5, 3), [(2, 3, 5, 6)]),
    "ConvTranspose2d-stride2": (lambda m: m.ConvTranspose2d(4, 3, 4, stride=2, padding=1), [(2, 4, 5, 7)]),
    "ConvTranspose2d-all": (lambda m: m.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                                        output_padding=(1, 2), groups=2, dilation=(2, 1),
                                                        bias=False), [(2, 4, 5, 4)]),
    "ConvTranspose2d-unbatched": (lambda m: m.ConvTranspose2d(3, 2, 2, stride=2), [(3, 4, 5)]),
    # -- norms
    "GroupNorm": (lambda m: m.GroupNorm(3, 6), [(2, 6, 5, 4)]),
    "GroupNorm-1d-noaffine": (lambda m: m.GroupNorm(2, 4, affine=False), [(3, 4, 7)]),
    "GroupNorm-channels-only": (lambda m: m.GroupNorm(2, 6), [(4, 6)]),
    "InstanceNorm1d": (lambda m: m.InstanceNorm1d(3), [(2, 3, 9)]),
    "InstanceNorm2d-affine": (lambda m: m.InstanceNorm2d(3, affine=True), [(2, 3, 5, 4)]),
    "InstanceNorm2d-stats": (lambda m: m.InstanceNorm2d(3, affine=True, track_running_stats=True),
                             [(2, 3, 5, 4)]),
    "BatchNorm3d": (lambda m: m.BatchNorm3d(3), [(2, 3, 4, 3, 5)]),
    "LocalResponseNorm": (lambda m: m.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=2.0), [(2, 7, 4, 3)]),
    "RMSNorm": (lambda m: m.RMSNorm(6), [(3, 4, 6)]),
    "RMSNorm-eps-2d": (lambda m: m.RMSNorm((2, 5), eps=1e-3), [(3, 2, 5)]),
    # -- pooling
    "MaxPool1d": (lambda m: m.MaxPool1d(3, 2, 1), [(2, 3, 11)]),
    "MaxPool1d-ceil-dil": (lambda m: m.MaxPool1d(3, 2, dilation=2, ceil_mode=True), [(2, 3, 12)]),
    "AvgPool1d": (lambda m: m.AvgPool1d(3, 2, 1), [(2, 3, 10)]),
    "AvgPool1d-nopadcount": (lambda m: m.AvgPool1d(4, 3, 2, count_include_pad=False, ceil_mode=True),
                             [(2, 3, 13)]),
    "AvgPool2d-ceil-nopadcount": (lambda m: m.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
                                  [(2, 3, 8, 7)]),
    "MaxPool2d-ceil-dil": (lambda m: m.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True), [(2, 3, 11, 10)]),
    "AdaptiveAvgPool1d": (lambda m: m.AdaptiveAvgPool1d(4), [(2, 3, 11)]),
    "AdaptiveMaxPool1d": (lambda m: m.AdaptiveMaxPool1d(5), [(2, 3, 13)]),
    "AdaptiveAvgPool2d": (lambda m: m.AdaptiveAvgPool2d((3, 5)), [(2, 3, 7, 11)]),
    "AdaptiveAvgPool2d-1": (lambda m: m.AdaptiveAvgPool2d(1), [(2, 3, 7, 5)]),
    "AdaptiveAvgPool2d-None": (lambda m: m.AdaptiveAvgPool2d((None, 2)), [(2, 3, 4, 7)]),
    "AdaptiveAvgPool2d-upsample": (lambda m: m.AdaptiveAvgPool2d(7), [(2, 3, 4, 5)]),
    "AdaptiveMaxPool2d": (lambda m: m.AdaptiveMaxPool2d((2, 3)), [(2, 3, 7, 8)]),
    # -- padding
    "ZeroPad2d": (lambda m: m.ZeroPad2d((1, 2, 0, 3)), [(2, 3, 4, 5)]),
    "ZeroPad1d": (lambda m: m.ZeroPad1d(2), [(2, 3, 4)]),
    "ConstantPad1d": (lambda m: m.ConstantPad1d((2, 1), 3.5), [(2, 3, 4)]),
    "ConstantPad2d": (lambda m: m.ConstantPad2d(1, -1.0), [(3, 4, 5)]),
    "ReflectionPad1d": (lambda m: m.ReflectionPad1d((3, 1)), [(2, 3, 5)]),
    "ReflectionPad2d": (lambda m: m.ReflectionPad2d((1, 2, 2, 1)), [(2, 3, 4, 5)]),
    "ReplicationPad1d": (lambda m: m.ReplicationPad1d((4, 1)), [(2, 3, 3)]),
    "ReplicationPad2d": (lambda m: m.ReplicationPad2d(2), [(2, 3, 4, 3)]),
    "CircularPad1d": (lambda m: m.CircularPad1d((2, 3)), [(2, 3, 5)]),
    "CircularPad2d": (lambda m: m.CircularPad2d((1, 0, 2, 1)), [(2, 3, 4, 5)]),
    # -- upsampling and rearrangement
    "Upsample-nearest": (lambda m: m.Upsample(scale_factor=2), [(2, 3, 4, 5)]),
    "Upsample-nearest-size": (lambda m: m.Upsample(size=(7, 9)), [(2, 3, 4, 5)]),
    "Upsample-nearest-1d": (lambda m: m.Upsample(scale_factor=3, mode="nearest"), [(2, 3, 5)]),
    "Upsample-bilinear": (lambda m: m.Upsample(scale_factor=2, mode="bilinear"), [(2, 3, 4, 5)]),
    "Upsample-bilinear-align": (lambda m: m.Upsample(size=(7, 11), mode="bilinear", align_corners=True),
                                [(2, 3, 4, 5)]),
    "Upsample-bilinear-down": (lambda m: m.Upsample(size=(3, 2), mode="bilinear"), [(2, 3, 7, 5)]),
    "Upsample-linear": (lambda m: m.Upsample(scale_factor=2.5, mode="linear"), [(2, 3, 6)]),
    "UpsamplingNearest2d": (lambda m: m.UpsamplingNearest2d(scale_factor=3), [(1, 2, 3, 4)]),
    "UpsamplingBilinear2d": (lambda m: m.UpsamplingBilinear2d(size=(6, 5)), [(1, 2, 3, 4)]),
    "PixelShuffle": (lambda m: m.PixelShuffle(2), [(2, 12, 3, 4)]),
    "PixelUnshuffle": (lambda m: m.PixelUnshuffle(3), [(2, 2, 6, 9)]),
    "Unfold": (lambda m: m.Unfold(3, dilation=1, padding=1, stride=2), [(2, 3, 7, 6)]),
    "Fold": (lambda m: m.Fold((6, 5), 2, stride=(2, 1)), [(2, 12, 12)]),
    "Unflatten": (lambda m: m.Unflatten(1, (3, 4)), [(2, 12, 5)]),
    "Flatten-range": (lambda m: m.Flatten(0, 1), [(2, 3, 4)]),
    "Bilinear": (lambda m: m.Bilinear(4, 5, 3), [(6, 4), (6, 5)]),
    "Bilinear-nobias": (lambda m: m.Bilinear(3, 3, 2, bias=False), [(2, 7, 3), (2, 7, 3)]),
    # -- activations
    "CELU": (lambda m: m.CELU(0.7), [(3, 7)], LOOSE_F64),
    "ELU": (lambda m: m.ELU(1.3), [(3, 7)]),
    "GELU-tanh": (lambda m: m.GELU(approximate="tanh"), [(3, 7)]),
    "GLU": (lambda m: m.GLU(1), [(3, 8)]),
    "GLU-default": (lambda m: m.GLU(), [(3, 5, 6)]),
    "Hardsigmoid": (lambda m: m.Hardsigmoid(), [(5, 7)], LOOSE_F64),
    "Hardswish": (lambda m: m.Hardswish(), [(5, 7)]),
    "Hardtanh": (lambda m: m.Hardtanh(-0.5, 1.5), [(3, 7)]),
    "LeakyReLU": (lambda m: m.LeakyReLU(0.2), [(3, 7)]),
    "LogSigmoid": (lambda m: m.LogSigmoid(), [(3, 7)]),
    "LogSoftmax": (lambda m: m.LogSoftmax(dim=1), [(3, 7, 2)]),
    "Mish": (lambda m: m.Mish(), [(3, 7)]),
    "PReLU": (lambda m: m.PReLU(), [(3, 7)]),
    "PReLU-channels": (lambda m: m.PReLU(3, init=0.1), [(2, 3, 4, 5)]),
    "ReLU6": (lambda m: m.ReLU6(), [lambda: 4 * rnd(3, 7)]),
    "SELU": (lambda m: m.SELU(), [(3, 7)]),
    "SiLU": (lambda m: m.SiLU(), [(3, 7)]),
    "Softmax-dim0": (lambda m: m.Softmax(dim=0), [(3, 7)]),
    "Softmin": (lambda m: m.Softmin(dim=-1), [(3, 7)]),
    "Softplus": (lambda m: m.Softplus(beta=2.0, threshold=3.0), [(3, 7)]),
    "Softsign": (lambda m: m.Softsign(), [(3, 7)]),
    "Tanhshrink": (lambda m: m.Tanhshrink(), [(3, 7)]),
    "Threshold": (lambda m: m.Threshold(0.1, 20.0), [(3, 7)]),
    # -- recurrent
    "GRU": (lambda m: m.GRU(5, 7), [(4, 3, 5)], DEFAULT_INIT),
    "GRU-2layer-bidir-batchfirst": (lambda m: m.GRU(5, 6, num_layers=2, bidirectional=True, batch_first=True),
                                    [(3, 4, 5), (4, 3, 6)], DEFAULT_INIT),
    "GRU-nobias-unbatched": (lambda m: m.GRU(4, 3, bias=False), [(5, 4)], DEFAULT_INIT),
    "GRUCell": (lambda m: m.GRUCell(5, 7), [(3, 5), (3, 7)], DEFAULT_INIT),
    "GRUCell-nobias-unbatched": (lambda m: m.GRUCell(5, 4, bias=False), [(5,)], DEFAULT_INIT),
    "RNN-tanh": (lambda m: m.RNN(5, 7, num_layers=2), [(4, 3, 5)], DEFAULT_INIT),
    "RNN-relu-bidir": (lambda m: m.RNN(4, 5, nonlinearity="relu", bidirectional=True, batch_first=True),
                       [(2, 6, 4), (2, 2, 5)], DEFAULT_INIT),
    "RNNCell": (lambda m: m.RNNCell(5, 7), [(3, 5), (3, 7)], DEFAULT_INIT),
    "RNNCell-relu": (lambda m: m.RNNCell(5, 4, nonlinearity="relu"), [(3, 5)], DEFAULT_INIT),
    # -- transformer (dropout 0 so that training mode is deterministic)
    "TransformerEncoderLayer": (lambda m: m.TransformerEncoderLayer(12, 3, 20, dropout=0.0), [(5, 2, 12)], DEEP),
    "TransformerEncoderLayer-normfirst-gelu-bf": (
        lambda m: m.TransformerEncoderLayer(12, 2, 16, dropout=0.0, activation="gelu", norm_first=True,
                                            batch_first=True), [(2, 5, 12)], DEEP),
    "TransformerEncoder": (lambda m: m.TransformerEncoder(m.TransformerEncoderLayer(8, 2, 12, dropout=0.0),
                                                          num_layers=2, norm=m.LayerNorm(8)), [(4, 3, 8)], DEEP),
    "TransformerDecoderLayer": (lambda m: m.TransformerDecoderLayer(8, 2, 12, dropout=0.0),
                                [(4, 2, 8), (6, 2, 8)], DEEP),
    "TransformerDecoderLayer-normfirst-bf": (
        lambda m: m.TransformerDecoderLayer(8, 4, 12, dropout=0.0, norm_first=True, batch_first=True,
                                            activation="gelu"), [(2, 3, 8), (2, 5, 8)], DEEP),
    "TransformerDecoder": (lambda m: m.TransformerDecoder(m.TransformerDecoderLayer(8, 2, 12, dropout=0.0),
                                                          num_layers=2), [(3, 2, 8), (4, 2, 8)], DEEP),
    "Transformer": (lambda m: m.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                                            dim_feedforward=12, dropout=0.0), [(5, 2, 8), (3, 2, 8)], DEEP),
    # -- losses
    "HuberLoss": (lambda m: m.HuberLoss(delta=0.7), [(4, 5), lambda: Const(rnd(4, 5, seed=9))]),
    "SmoothL1Loss": (lambda m: m.SmoothL1Loss(beta=0.5, reduction="sum"), [(4, 5), (4, 5)]),
    "SmoothL1Loss-beta0": (lambda m: m.SmoothL1Loss(beta=0.0), [(4, 5), (4, 5)]),
    "KLDivLoss": (lambda m: m.KLDivLoss(reduction="batchmean"),
                  [lambda: np.log(_probs(4, 5)), lambda: Const(_probs(4, 5, seed=3))]),
    "KLDivLoss-logtarget": (lambda m: m.KLDivLoss(reduction="sum", log_target=True),
                            [lambda: np.log(_probs(4, 5)), lambda: np.log(_probs(4, 5, seed=3))]),
    "PoissonNLLLoss": (lambda m: m.PoissonNLLLoss(), [(4, 5), lambda: Const(_positive(4, 5, seed=2))]),
    "PoissonNLLLoss-full-nolog": (lambda m: m.PoissonNLLLoss(log_input=False, full=True),
                                  [lambda: _positive(4, 5), lambda: Const(3 * _positive(4, 5, seed=2))]),
    "GaussianNLLLoss": (lambda m: m.GaussianNLLLoss(), [(4, 5), (4, 5), lambda: _positive(4, 5, seed=4)]),
    "GaussianNLLLoss-full-bcast": (lambda m: m.GaussianNLLLoss(full=True, reduction="sum"),
                                   [(4, 5), (4, 5), lambda: _positive(4, 1, seed=4)]),
    "SoftMarginLoss": (lambda m: m.SoftMarginLoss(), [(4, 5), lambda: Const(_signs(4, 5))]),
    "MultiLabelSoftMarginLoss": (lambda m: m.MultiLabelSoftMarginLoss(),
                                 [(4, 5), lambda: Const((_signs(4, 5) > 0).astype(np.float32))]),
    "HingeEmbeddingLoss": (lambda m: m.HingeEmbeddingLoss(margin=0.5), [(4, 5), lambda: Const(_signs(4, 5))]),
    "MarginRankingLoss": (lambda m: m.MarginRankingLoss(margin=0.2), [(6,), (6,), lambda: Const(_signs(6))]),
    "CosineEmbeddingLoss": (lambda m: m.CosineEmbeddingLoss(margin=0.1), [(6, 4), (6, 4),
                                                                          lambda: Const(_signs(6))]),
    "TripletMarginLoss": (lambda m: m.TripletMarginLoss(margin=0.5), [(6, 4), (6, 4), (6, 4)]),
    "TripletMarginLoss-swap-p1": (lambda m: m.TripletMarginLoss(margin=2.0, p=1, swap=True),
                                  [(6, 4), (6, 4), (6, 4)]),
}


def _inputs(specs, dtype):
    out = []
    for i, spec in enumerate(specs):
        x = rnd(*spec, seed=i) if isinstance(spec, tuple) else spec()
        if isinstance(x, Const):
            x = Const(np.asarray(x.array, dtype))
        elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
            x = x.astype(dtype)
        out.append(x)
    return out




def _case(name):
    build, specs, *rest = CASES[name]
    opts = rest[0] if rest else {}
    t, o = pair(build)
    if opts.get("randomize", True):
        randomize(t)
    return t, o, specs, opts


@pytest.mark.parametrize("name", list(CASES))
def test_module_against_torch_float32(name):
    t, o, specs, opts = _case(name)
    t_sd, o_sd = t.state_dict(), o.state_dict()
    assert list(o_sd) == list(t_sd)
    for k in t_sd:
        assert tuple(o_sd[k].shape) == tuple(t_sd[k].shape), k
    check(t, o, _inputs(specs, np.float32), grad_tol=opts.get("grad_tol", GRAD_TOL))


@pytest.mark.parametrize("name", list(CASES))
def test_module_against_torch_float64(name):
    t, o, specs, opts = _case(name)
    t.double()
    assert o.double() is o
    tol = opts.get("f64_tol", F64_TOL)
    check(t, o, _inputs(specs, np.float64), fwd_tol=tol, grad_tol=tol)


def test_eval_mode_transformer_matches_torch_fast_path():
    """In eval mode torch runs its fused (nested-tensor) encoder path; ours must give the same numbers at
    every position that is not padding (torch's fast path writes zeros there, its slow path does not)."""
    t, o = pair(lambda m: m.TransformerEncoder(m.TransformerEncoderLayer(16, 4, 32, batch_first=True),
                                               num_layers=2))
    randomize(t)
    copy_weights(t, o)
    t.eval()
    o.eval()
    x = rnd(3, 7, 16)
    pad = np.zeros((3, 7), bool)
    pad[1, 5:] = True
    with torch.no_grad():
        want = t(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(pad)).numpy()
    got = o(x, src_key_padding_mask=pad)
    assert tuple(got.shape) == want.shape
    assert rel_error(got.numpy()[~pad], want[~pad]) < FWD_TOL


def test_transformer_masks_match_torch():
    t, o = pair(lambda m: m.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
                                        dim_feedforward=16, dropout=0.0, batch_first=True))
    randomize(t)
    src, tgt = rnd(2, 6, 8), rnd(2, 4, 8, seed=1)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    assert np.array_equal(nn.Transformer.generate_square_subsequent_mask(4).numpy(), causal)
    src_pad = np.zeros((2, 6), bool)
    src_pad[0, 4:] = True
    check(t, o, [src, tgt], dict(tgt_mask=Const(causal), src_key_padding_mask=Const(src_pad),
                                 memory_key_padding_mask=Const(src_pad)))


@pytest.mark.parametrize("mode,kw", [("nearest", dict(scale_factor=1.7)), ("bilinear", dict(scale_factor=0.6)),
                                     ("bilinear", dict(size=(5, 8), align_corners=True)),
                                     ("nearest", dict(size=(3, 4))), ("bicubic", dict(scale_factor=2)),
                                     ("bicubic", dict(size=(5, 3), align_corners=True)),
                                     ("nearest-exact", dict(scale_factor=1.5)),
                                     ("area", dict(size=(3, 2)))])
def test_interpolate_modes(mode, kw):
    import pyfastnn.nn.functional as F
    x = rnd(2, 3, 6, 5)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, mode=mode, **kw)
    ox = nn.Parameter(x.copy())
    oy = F.interpolate(ox, mode=mode, **kw)
    assert tuple(oy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(oy.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    w = rnd(*ty.shape, seed=5)
    (ty * torch.from_numpy(w)).sum().backward()
    (oy * w).sum().backward()
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_containers_state_dict_layout():
    def build(m):
        class Net(m.Module):
            def __init__(self):
                super().__init__()
                self.blocks = m.ModuleDict({"a": m.Linear(3, 4), "b": m.Sequential(m.Linear(4, 2))})
                self.scales = m.ParameterList([m.Parameter(torch.ones(2) if m is torch.nn else np.ones(2,
                                                                                                     np.float32))
                                               for _ in range(2)])
                self.extra = m.ParameterDict({"gain": m.Parameter(torch.ones(3) if m is torch.nn
                                                                  else np.ones(3, np.float32))})

            def forward(self, x):
                return self.blocks["b"](self.blocks["a"](x)) * self.scales[0] * self.scales[1]
        return Net()
    t, o = pair(build)
    randomize(t)
    assert list(o.state_dict()) == list(t.state_dict())
    check(t, o, [rnd(5, 3)])


def test_training_mode_dropout_modules_keep_shape_and_scale():
    pyfastnn_x = rnd(4, 6, 8, 8) + 3.0
    for mod in (nn.Dropout1d(0.5), nn.Dropout2d(0.5), nn.AlphaDropout(0.2)):
        x = pyfastnn_x[:, :, :, 0] if isinstance(mod, nn.Dropout1d) else pyfastnn_x
        y = mod(x).numpy()
        assert y.shape == x.shape
        if not isinstance(mod, nn.AlphaDropout):
            kept = y != 0
            # whole channels are dropped together and survivors are scaled by 1/(1-p)
            per_channel = kept.reshape(x.shape[0], x.shape[1], -1)
            assert np.all(per_channel.all(-1) | (~per_channel).all(-1))
            np.testing.assert_allclose(y[kept], 2 * x[kept], rtol=1e-6)
        mod.eval()
        np.testing.assert_array_equal(mod(x).numpy(), x)


@pytest.mark.parametrize("name", list(CASES))
def test_repr_matches_torch(name):
    t, o, _, _ = _case(name)
    assert repr(o) == repr(t)
