"""Vision models against torchvision-layout references written in plain torch (tv_reference.py; torchvision
itself does not load here): the same state_dict keys and shapes, and a checkpoint saved with torch.save,
read by pyfastnn.load, gives torch's outputs in eval and train mode."""
import os

import numpy as np
import pytest

import pyfastnn
from pyfastnn import models, nn
from pyfastnn.models import _weights

torch = pytest.importorskip("torch")
tv = pytest.importorskip("tv_reference")     # tests/models is on sys.path when pytest collects this file


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rel_err(ours, ref):
    ours = ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def _no_dropout(*modules):
    for root in modules:
        for m in root.modules():
            if isinstance(m, (torch.nn.Dropout, nn.Dropout)):
                m.p = 0.0


def _compare(ours, ref, x, modes=("eval", "train")):
    """Outputs in each mode, and (train) the running statistics both updated."""
    errors = {}
    for mode in modes:
        getattr(ref, mode)()
        getattr(ours, mode)()
        with torch.no_grad():
            expected = ref(torch.from_numpy(x))
        errors[mode] = rel_err(ours(x), expected)
    if "train" in modes:
        ref_sd = ref.state_dict()
        worst = max(rel_err(v, ref_sd[k]) for k, v in ours.state_dict().items() if "running" in k)
        errors["running stats"] = worst
    return errors


def _shapes(sd):
    return {k: tuple(v.shape) for k, v in sd.items()}


@pytest.mark.parametrize("name,ref", [
    ("resnet18", lambda: tv.resnet(18)), ("resnet34", lambda: tv.resnet(34)), ("resnet50", lambda: tv.resnet(50)),
    ("mobilenet_v2", lambda: tv.MobileNetV2()),
])
def test_state_dict_keys_and_shapes_are_torchvisions(name, ref):
    ours = getattr(models, name)()
    assert list(_shapes(ours.state_dict()).items()) == list(_shapes(ref().state_dict()).items())


def test_vgg_layouts_and_resnet_depths(monkeypatch):
    """The biggest layouts without building their weights (seconds each): VGG's layer lists are torchvision's
    and make_layers builds torchvision's keys; every ResNet constructor asks for torchvision's depths."""
    assert [models.vgg.cfgs[c] for c in "ABDE"] == [tv.VGG_CFGS[d] for d in (11, 13, 16, 19)]
    for bn in (False, True):
        ours = models.vgg.make_layers(models.vgg.cfgs["A"], batch_norm=bn)
        assert _shapes(ours.state_dict()) == _shapes(tv.vgg_features(11, bn).state_dict())
    monkeypatch.setattr(models.resnet, "ResNet", lambda block, layers, **kw: (block.__name__, layers, kw))
    B, N = "BasicBlock", "Bottleneck"
    assert models.resnet18() == (B, [2, 2, 2, 2], {})
    assert models.resnet34() == (B, [3, 4, 6, 3], {})
    assert models.resnet101() == (N, [3, 4, 23, 3], {})
    assert models.resnet152() == (N, [3, 8, 36, 3], {})
    assert models.resnext50_32x4d() == (N, [3, 4, 6, 3], {"groups": 32, "width_per_group": 4})
    assert models.wide_resnet50_2() == (N, [3, 4, 6, 3], {"width_per_group": 128})


def test_resnet50_torch_checkpoint_gives_torchs_outputs(tmp_path):
    torch.manual_seed(0)
    ref = tv.resnet(50, num_classes=10)
    path = os.path.join(tmp_path, "resnet50.pth")
    torch.save(ref.state_dict(), path)
    ours = models.resnet50(weights=path)           # read with pyfastnn.load; num_classes from the checkpoint
    assert ours.fc.out_features == 10
    # 96x96: layer4's batch statistics then pool 4 x 3 x 3 values; at 64x64 (4 x 2 x 2) float32 rounding alone
    # (torch's own, against float64) comes near the 1e-4 bound
    x = np.random.RandomState(0).randn(4, 3, 96, 96).astype(np.float32)
    errors = _compare(ours, ref, x)
    assert max(errors.values()) < 1e-4, errors


def test_vgg16_bn_torch_checkpoint_gives_torchs_outputs(tmp_path):
    torch.manual_seed(1)
    ref = tv.VGG(16, True, num_classes=10)
    path = os.path.join(tmp_path, "vgg16_bn.pth")
    torch.save(ref.state_dict(), path)
    ours = models.vgg16_bn(weights=pyfastnn.load(path))      # a state dict works as well as a path
    _no_dropout(ours, ref)                                   # train mode: batch statistics, same masks
    x = np.random.RandomState(1).randn(2, 3, 32, 32).astype(np.float32)
    errors = _compare(ours, ref, x)
    assert max(errors.values()) < 1e-4, errors


def test_mobilenet_v2_torch_checkpoint_gives_torchs_outputs(tmp_path):
    torch.manual_seed(2)
    ref = tv.MobileNetV2(num_classes=7)
    path = os.path.join(tmp_path, "mobilenet_v2.pth")
    torch.save({"epoch": 3, "state_dict": ref.state_dict()}, path)      # a training checkpoint wrapping it
    ours = models.mobilenet_v2(weights=path)
    _no_dropout(ours, ref)
    x = np.random.RandomState(2).randn(4, 3, 64, 64).astype(np.float32)
    errors = _compare(ours, ref, x)
    assert max(errors.values()) < 1e-4, errors


def test_resnet18_trains_and_its_gradients_match_torch():
    torch.manual_seed(3)
    ref = tv.resnet(18, num_classes=5)
    ours = models.resnet18(weights={k: v.numpy() for k, v in ref.state_dict().items()})
    x = np.random.RandomState(3).randn(4, 3, 32, 32).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    ref.train()
    ours.train()
    torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    nn.functional.cross_entropy(ours(x), y).backward()
    ref_grads = dict(ref.named_parameters())
    worst = max(rel_err(p.grad, ref_grads[k].grad) for k, p in ours.named_parameters())
    assert worst < 1e-3, worst


def test_constructors_take_torchvisions_arguments():
    m = models.resnet18(num_classes=3, zero_init_residual=True)
    assert m.fc.out_features == 3 and float(m.layer1[0].bn2.weight.abs().sum().item()) == 0.0
    m = models.mobilenet_v2(num_classes=4, width_mult=0.5)
    assert m.classifier[1].weight.shape == (4, 1280)
    assert m.features[0][0].out_channels == 16
    x = np.random.RandomState(0).randn(1, 3, 32, 32).astype(np.float32)
    assert m.eval()(x).shape == (1, 4)
    wide = models.ResNet(models.resnet.Bottleneck, [1, 1, 1, 1], num_classes=2, groups=4, width_per_group=8)
    assert wide.layer1[0].conv2.groups == 4 and wide.eval()(x).shape == (1, 2)
    pyfastnn.manual_seed(5)
    a = models.resnet18(num_classes=2).state_dict()
    pyfastnn.manual_seed(5)
    b = models.resnet18(num_classes=2).state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_pretrained_true_says_to_pass_the_file():
    for fn in (models.resnet50, models.vgg16_bn, models.mobilenet_v2):
        with pytest.raises(ValueError, match="downloads nothing.*weights="):
            fn(pretrained=True)
    models.resnet18(pretrained=False)


def test_weights_for_another_architecture_are_refused_whole(tmp_path):
    torch.manual_seed(4)
    path = os.path.join(tmp_path, "r18.pth")
    torch.save(tv.resnet(18, num_classes=10).state_dict(), path)
    with pytest.raises(models.WeightsError) as info:
        models.resnet50(weights=path)
    msg = str(info.value)
    assert "r18.pth" in msg and "resnet50" in msg and "layer1.0.conv3.weight" in msg and "Nothing was loaded" in msg
    with pytest.raises(models.WeightsError, match="another architecture"):
        models.mobilenet_v2(weights=path)
    sd = pyfastnn.load(path)
    del sd["layer4.1.bn2.running_var"]
    with pytest.raises(models.WeightsError, match="layer4.1.bn2.running_var"):
        models.resnet18(weights=sd)
    with pytest.raises(FileNotFoundError, match="no-such.pth"):
        models.resnet18(weights=os.path.join(tmp_path, "no-such.pth"))
    with pytest.raises(TypeError, match="resnet18: weights must be a checkpoint path or a state dict"):
        models.resnet18(weights=42)


def test_a_failed_load_leaves_the_model_untouched(tmp_path):
    m = models.resnet18(num_classes=10)
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    sd = {k: np.full(v.shape, 7, np.float32) for k, v in m.state_dict().items()}
    sd["fc.weight"] = np.zeros((10, 3), np.float32)      # the last key is wrong: nothing may be written
    with pytest.raises(models.WeightsError, match="fc.weight"):
        _weights.load_checked(m, sd, where="test", source="the state dict", arch="resnet18")
    assert all(np.array_equal(before[k], v.numpy()) for k, v in m.state_dict().items())
