"""torchvision's resnet.py (conv3x3/conv1x1, BasicBlock, Bottleneck, ResNet) run
unchanged with ``import pyfastnn as torch``.

The source in ``build`` is torchvision/models/resnet.py as written, minus the
weights/enum plumbing and ``_log_api_usage_once``; the one harness change is
that the stage widths 64/128/256/512 come from ``W`` so the model is tiny
(the same for both libraries). torchvision itself is not imported: it does not
load here, and the point is the library under the source, not torchvision.
"""
from types import SimpleNamespace
from typing import Any, Callable, List, Optional, Type, Union

import numpy as np
import pytest

torch_ = pytest.importorskip("torch")
import pyfastnn  # noqa: E402
import pyfastnn.nn.functional  # noqa: E402,F401

from compat_helpers import as_np, assert_rel, compare_grads, compare_params, copy_weights  # noqa: E402
from compat_helpers import torch_single_thread  # noqa: E402,F401  (autouse fixture)

FWD_TOL = 2e-4
GRAD_TOL = 1e-3


def build(torch, nn, F, W=(64, 128, 256, 512)):
    Tensor = torch.Tensor

    def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
        """3x3 convolution with padding"""
        return nn.Conv2d(
            in_planes,
            out_planes,
            kernel_size=3,
            stride=stride,
            padding=dilation,
            groups=groups,
            bias=False,
            dilation=dilation,
        )

    def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
        """1x1 convolution"""
        return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)

    class BasicBlock(nn.Module):
        expansion: int = 1

        def __init__(
            self,
            inplanes: int,
            planes: int,
            stride: int = 1,
            downsample: Optional[nn.Module] = None,
            groups: int = 1,
            base_width: int = 64,
            dilation: int = 1,
            norm_layer: Optional[Callable[..., nn.Module]] = None,
        ) -> None:
            super().__init__()
            if norm_layer is None:
                norm_layer = nn.BatchNorm2d
            if groups != 1 or base_width != 64:
                raise ValueError("BasicBlock only supports groups=1 and base_width=64")
            if dilation > 1:
                raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
            # Both self.conv1 and self.downsample layers downsample the input when stride != 1
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = norm_layer(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(planes, planes)
            self.bn2 = norm_layer(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x: Tensor) -> Tensor:
            identity = x

            out = self.conv1(x)
            out = self.bn1(out)
            out = self.relu(out)

            out = self.conv2(out)
            out = self.bn2(out)

            if self.downsample is not None:
                identity = self.downsample(x)

            out += identity
            out = self.relu(out)

            return out

    class Bottleneck(nn.Module):
        # Bottleneck in torchvision places the stride for downsampling at 3x3 convolution(self.conv2)
        # while original implementation places the stride at the first 1x1 convolution(self.conv1)
        # according to "Deep residual learning for image recognition" https://arxiv.org/abs/1512.03385.
        # This variant is also known as ResNet V1.5 and improves accuracy according to
        # https://ngc.nvidia.com/catalog/model-scripts/nvidia:resnet_50_v1_5_for_pytorch.

        expansion: int = 4

        def __init__(
            self,
            inplanes: int,
            planes: int,
            stride: int = 1,
            downsample: Optional[nn.Module] = None,
            groups: int = 1,
            base_width: int = 64,
            dilation: int = 1,
            norm_layer: Optional[Callable[..., nn.Module]] = None,
        ) -> None:
            super().__init__()
            if norm_layer is None:
                norm_layer = nn.BatchNorm2d
            width = int(planes * (base_width / 64.0)) * groups
            # Both self.conv2 and self.downsample layers downsample the input when stride != 1
            self.conv1 = conv1x1(inplanes, width)
            self.bn1 = norm_layer(width)
            self.conv2 = conv3x3(width, width, stride, groups, dilation)
            self.bn2 = norm_layer(width)
            self.conv3 = conv1x1(width, planes * self.expansion)
            self.bn3 = norm_layer(planes * self.expansion)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x: Tensor) -> Tensor:
            identity = x

            out = self.conv1(x)
            out = self.bn1(out)
            out = self.relu(out)

            out = self.conv2(out)
            out = self.bn2(out)
            out = self.relu(out)

            out = self.conv3(out)
            out = self.bn3(out)

            if self.downsample is not None:
                identity = self.downsample(x)

            out += identity
            out = self.relu(out)

            return out

    class ResNet(nn.Module):
        def __init__(
            self,
            block: Type[Union[BasicBlock, Bottleneck]],
            layers: List[int],
            num_classes: int = 1000,
            zero_init_residual: bool = False,
            groups: int = 1,
            width_per_group: int = 64,
            replace_stride_with_dilation: Optional[List[bool]] = None,
            norm_layer: Optional[Callable[..., nn.Module]] = None,
        ) -> None:
            super().__init__()
            if norm_layer is None:
                norm_layer = nn.BatchNorm2d
            self._norm_layer = norm_layer

            self.inplanes = W[0]
            self.dilation = 1
            if replace_stride_with_dilation is None:
                # each element in the tuple indicates if we should replace
                # the 2x2 stride with a dilated convolution instead
                replace_stride_with_dilation = [False, False, False]
            if len(replace_stride_with_dilation) != 3:
                raise ValueError(
                    "replace_stride_with_dilation should be None "
                    f"or a 3-element tuple, got {replace_stride_with_dilation}"
                )
            self.groups = groups
            self.base_width = width_per_group
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = norm_layer(self.inplanes)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(block, W[0], layers[0])
            self.layer2 = self._make_layer(block, W[1], layers[1], stride=2, dilate=replace_stride_with_dilation[0])
            self.layer3 = self._make_layer(block, W[2], layers[2], stride=2, dilate=replace_stride_with_dilation[1])
            self.layer4 = self._make_layer(block, W[3], layers[3], stride=2, dilate=replace_stride_with_dilation[2])
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(W[3] * block.expansion, num_classes)

            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

            # Zero-initialize the last BN in each residual branch,
            # so that the residual branch starts with zeros, and each residual block behaves like an identity.
            # This improves the model by 3-4% according to https://arxiv.org/abs/1706.02677
            if zero_init_residual:
                for m in self.modules():
                    if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                        nn.init.constant_(m.bn3.weight, 0)  # type: ignore[arg-type]
                    elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                        nn.init.constant_(m.bn2.weight, 0)  # type: ignore[arg-type]

        def _make_layer(
            self,
            block: Type[Union[BasicBlock, Bottleneck]],
            planes: int,
            blocks: int,
            stride: int = 1,
            dilate: bool = False,
        ) -> nn.Sequential:
            norm_layer = self._norm_layer
            downsample = None
            previous_dilation = self.dilation
            if dilate:
                self.dilation *= stride
                stride = 1
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    conv1x1(self.inplanes, planes * block.expansion, stride),
                    norm_layer(planes * block.expansion),
                )

            layers = []
            layers.append(
                block(
                    self.inplanes, planes, stride, downsample, self.groups, self.base_width, previous_dilation,
                    norm_layer
                )
            )
            self.inplanes = planes * block.expansion
            for _ in range(1, blocks):
                layers.append(
                    block(
                        self.inplanes,
                        planes,
                        groups=self.groups,
                        base_width=self.base_width,
                        dilation=self.dilation,
                        norm_layer=norm_layer,
                    )
                )

            return nn.Sequential(*layers)

        def _forward_impl(self, x: Tensor) -> Tensor:
            # See note [TorchScript super()]
            x = self.conv1(x)
            x = self.bn1(x)
            x = self.relu(x)
            x = self.maxpool(x)

            x = self.layer1(x)
            x = self.layer2(x)
            x = self.layer3(x)
            x = self.layer4(x)

            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            x = self.fc(x)

            return x

        def forward(self, x: Tensor) -> Tensor:
            return self._forward_impl(x)

    def _resnet(block, layers, weights=None, progress=True, **kwargs: Any) -> ResNet:
        model = ResNet(block, layers, **kwargs)
        return model

    def resnet18(*, weights=None, progress: bool = True, **kwargs: Any) -> ResNet:
        return _resnet(BasicBlock, [2, 2, 2, 2], weights, progress, **kwargs)

    def resnet50(*, weights=None, progress: bool = True, **kwargs: Any) -> ResNet:
        return _resnet(Bottleneck, [3, 4, 6, 3], weights, progress, **kwargs)

    return SimpleNamespace(conv3x3=conv3x3, conv1x1=conv1x1, BasicBlock=BasicBlock, Bottleneck=Bottleneck,
                           ResNet=ResNet, resnet18=resnet18, resnet50=resnet50)


TORCH = (torch_, torch_.nn, torch_.nn.functional)
FAST = (pyfastnn, pyfastnn.nn, pyfastnn.nn.functional)
TINY = (8, 16, 16, 24)


def pair(kind="basic", layers=(1, 1, 1, 1), W=TINY, randomize_bn=True, **kwargs):
    """The same ResNet with both libraries, pyfastnn given torch's weights. BN affine params and
    running stats are made non-trivial in torch first, so layout mistakes cannot hide behind 1/0."""
    torch_.manual_seed(0)
    mt, mf = build(*TORCH, W=W), build(*FAST, W=W)
    block_t = mt.BasicBlock if kind == "basic" else mt.Bottleneck
    block_f = mf.BasicBlock if kind == "basic" else mf.Bottleneck
    tm = mt.ResNet(block_t, list(layers), num_classes=10, **kwargs)
    fm = mf.ResNet(block_f, list(layers), num_classes=10, **kwargs)
    if randomize_bn:
        g = torch_.Generator().manual_seed(1)
        with torch_.no_grad():
            for m in tm.modules():
                if isinstance(m, torch_.nn.BatchNorm2d):
                    m.weight.copy_(0.5 + torch_.rand(m.weight.shape, generator=g))
                    m.bias.copy_(0.1 * torch_.randn(m.bias.shape, generator=g))
                    m.running_mean.copy_(0.1 * torch_.randn(m.running_mean.shape, generator=g))
                    m.running_var.copy_(0.5 + torch_.rand(m.running_var.shape, generator=g))
    copy_weights(tm, fm)
    return tm, fm


def images(seed, n=4, hw=32):
    return np.random.default_rng(seed).standard_normal((n, 3, hw, hw)).astype(np.float32)


def test_state_dict_layout_matches_torchvision():
    tm, fm = pair("bottleneck", layers=(2, 1, 1, 1))
    tsd, fsd = tm.state_dict(), fm.state_dict()
    assert list(fsd) == list(tsd)
    for k in tsd:
        assert tuple(fsd[k].shape) == tuple(tsd[k].shape), k
    assert "layer1.0.downsample.1.num_batches_tracked" in fsd
    assert [n for n, _ in fm.named_modules()] == [n for n, _ in tm.named_modules()]
    assert sum(p.numel() for p in fm.parameters()) == sum(p.numel() for p in tm.parameters())


def test_init_loop_kaiming_fan_out_and_constant():
    """The kaiming_normal_(mode='fan_out', nonlinearity='relu') / constant_ loop ran on pyfastnn's modules."""
    pyfastnn.manual_seed(0)
    mf = build(*FAST, W=(16, 32, 32, 64))
    fm = mf.ResNet(mf.BasicBlock, [1, 1, 1, 1], num_classes=10)
    for name, m in fm.named_modules():
        if isinstance(m, pyfastnn.nn.Conv2d):
            w = as_np(m.weight)
            fan_out = w.shape[0] * w.shape[2] * w.shape[3]
            std = np.sqrt(2.0 / fan_out)
            assert abs(w.std() / std - 1) < 0.15, (name, w.std(), std)
        elif isinstance(m, pyfastnn.nn.BatchNorm2d):
            assert np.all(as_np(m.weight) == 1) and np.all(as_np(m.bias) == 0), name
            assert np.all(as_np(m.running_mean) == 0) and np.all(as_np(m.running_var) == 1), name


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
def test_zero_init_residual(kind):
    mf = build(*FAST, W=TINY)
    block = mf.BasicBlock if kind == "basic" else mf.Bottleneck
    fm = mf.ResNet(block, [1, 1, 1, 1], num_classes=10, zero_init_residual=True)
    last = "bn2" if kind == "basic" else "bn3"
    for name, m in fm.named_modules():
        if isinstance(m, block):
            assert np.all(as_np(getattr(m, last).weight) == 0), name
            assert np.all(as_np(m.bn1.weight) == 1), name
    # every residual branch is zero, so in eval mode each block is relu(identity)
    fm.eval()
    blk = fm.layer1[0] if kind == "basic" else None
    if blk is not None:
        x = pyfastnn.tensor(np.abs(images(0, 2, 8)[:, :1].repeat(8, axis=1)))
        np.testing.assert_allclose(as_np(blk(x)), as_np(x), rtol=1e-6)


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
def test_train_mode_forward_backward_and_running_stats(kind):
    tm, fm = pair(kind)
    tm.train()
    fm.train()
    x = images(1)
    xt = torch_.from_numpy(x.copy()).requires_grad_(True)
    xf = pyfastnn.from_numpy(x.copy()).requires_grad_(True)
    yt, yf = tm(xt), fm(xf)
    assert tuple(yf.shape) == (4, 10)
    assert_rel(yf, yt, FWD_TOL, "train-mode logits")
    gy = np.random.default_rng(2).standard_normal((4, 10)).astype(np.float32)
    yt.backward(torch_.from_numpy(gy))
    yf.backward(pyfastnn.from_numpy(gy))
    assert_rel(xf.grad, xt.grad, GRAD_TOL, "input gradient")
    compare_grads(tm, fm, GRAD_TOL)
    # BatchNorm running statistics (unbiased var, momentum 0.1) and num_batches_tracked
    tsd, fsd = tm.state_dict(), fm.state_dict()
    for k in tsd:
        if k.endswith(("running_mean", "running_var")):
            assert_rel(fsd[k], tsd[k], FWD_TOL, k)
        elif k.endswith("num_batches_tracked"):
            assert int(fsd[k]) == int(tsd[k]) == 1, k


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
def test_eval_mode_forward_and_input_gradient(kind):
    tm, fm = pair(kind, layers=(2, 1, 1, 1))
    tm.eval()
    fm.eval()
    x = images(3, n=3)
    with torch_.no_grad():
        yt = tm(torch_.from_numpy(x))
    with pyfastnn.no_grad():
        yf = fm(pyfastnn.from_numpy(x))
    assert_rel(yf, yt, FWD_TOL, "eval logits")
    assert not yf.requires_grad
    # running stats untouched in eval mode
    for k, v in fm.state_dict().items():
        if k.endswith("num_batches_tracked"):
            assert int(v) == 0, k
    xt = torch_.from_numpy(x).requires_grad_()
    xf = pyfastnn.from_numpy(x).requires_grad_()
    tm(xt).logsumexp(dim=1).sum().backward()
    fm(xf).logsumexp(dim=1).sum().backward()
    assert_rel(xf.grad, xt.grad, GRAD_TOL, "eval input gradient")
    compare_grads(tm, fm, GRAD_TOL)


def test_resnext_groups_and_dilation():
    """Bottleneck with groups/width_per_group (ResNeXt) and replace_stride_with_dilation."""
    tm, fm = pair("bottleneck", groups=2, width_per_group=32, replace_stride_with_dilation=[False, True, True])
    assert tuple(fm.layer4[0].conv2.dilation) == (2, 2)
    assert fm.layer2[0].conv2.groups == 2
    x = images(4, n=2)
    tm.eval()
    fm.eval()
    yt = tm(torch_.from_numpy(x))
    yf = fm(pyfastnn.from_numpy(x))
    assert_rel(yf, yt, FWD_TOL, "ResNeXt/dilated logits")
    yt.sum().backward()
    yf.sum().backward()
    compare_grads(tm, fm, GRAD_TOL)


def train_steps(torch, nn, model, batches, steps=3):
    """A standard classification loop: SGD with momentum and weight decay, CrossEntropyLoss."""
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    model.train()
    losses, correct = [], 0
    for step, (inputs, targets) in enumerate(batches[:steps]):
        inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)
        inputs, targets = inputs.to('cpu'), targets.to('cpu')
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        _, predicted = outputs.max(1)
        correct += predicted.eq(targets).sum().item()
    model.eval()
    with torch.no_grad():
        inputs = torch.from_numpy(batches[-1][0])
        probs = torch.softmax(model(inputs), dim=1)
        top_p, top_class = probs.topk(1, dim=1)
    return losses, correct, top_p, top_class


def test_sgd_momentum_training_steps():
    tm, fm = pair("basic")
    rng = np.random.default_rng(5)
    batches = [(images(10 + i), rng.integers(0, 10, 4).astype(np.int64)) for i in range(4)]
    tl, tc, tp, tcls = train_steps(torch_, torch_.nn, tm, batches)
    fl, fc, fp, fcls = train_steps(pyfastnn, pyfastnn.nn, fm, batches)
    np.testing.assert_allclose(fl, tl, rtol=FWD_TOL)
    assert fc == tc
    assert_rel(fp, tp, 1e-3, "eval softmax top-1 probability after training")
    np.testing.assert_array_equal(as_np(fcls), as_np(tcls))
    assert fcls.dtype == pyfastnn.int64
    compare_params(tm, fm, 1e-3)
    for k, v in tm.state_dict().items():
        if k.endswith(("running_mean", "running_var")):
            assert_rel(fm.state_dict()[k], v, 1e-3, k)


def test_pretrained_style_surgery():
    """Replacing the head and freezing the backbone, the fine-tuning idiom."""
    _, fm = pair("basic")
    nn = pyfastnn.nn
    for param in fm.parameters():
        param.requires_grad = False
    num_ftrs = fm.fc.in_features
    fm.fc = nn.Linear(num_ftrs, 3)
    params_to_update = [p for p in fm.parameters() if p.requires_grad]
    assert len(params_to_update) == 2
    opt = pyfastnn.optim.SGD(params_to_update, lr=0.1, momentum=0.9)
    x = pyfastnn.from_numpy(images(7, n=2))
    loss = nn.functional.cross_entropy(fm(x), pyfastnn.tensor([0, 2]))
    loss.backward()
    opt.step()
    assert fm.conv1.weight.grad is None
    assert fm.fc.weight.grad is not None


def loader_program(torch, images_np, labels_np):
    """The CIFAR-tutorial input pipeline: a map-style Dataset, DataLoader, a transform as a plain callable.
    (`from torch.utils.data import ...` would name the real torch whatever `torch` is bound to here; a user's
    import line becomes `from pyfastnn.utils.data import DataLoader, Dataset`.)"""
    DataLoader, Dataset = torch.utils.data.DataLoader, torch.utils.data.Dataset

    class ArrayImages(Dataset):
        def __init__(self, images, labels, transform=None):
            self.images = images
            self.labels = labels
            self.transform = transform

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, idx):
            img = torch.from_numpy(self.images[idx])
            if self.transform:
                img = self.transform(img)
            return img, int(self.labels[idx])

    def normalize(img):
        mean = torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1)
        std = torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1)
        return (img - mean) / std

    trainset = ArrayImages(images_np, labels_np, transform=normalize)
    return DataLoader(trainset, batch_size=4, shuffle=False, num_workers=0, drop_last=False)


def test_dataset_dataloader_training_epoch():
    tm, fm = pair("basic")
    rng = np.random.default_rng(11)
    imgs = rng.random((10, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 10)
    results = []
    for torch, model in ((torch_, tm), (pyfastnn, fm)):
        loader = loader_program(torch, imgs, labels)
        assert len(loader) == 3
        criterion = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        running_loss, shapes = 0.0, []
        model.train()
        for i, data in enumerate(loader, 0):
            inputs, targets = data
            shapes.append((tuple(inputs.shape), tuple(targets.shape), str(targets.dtype).split(".")[-1]))
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        results.append((running_loss, shapes))
    (tl, tshapes), (fl, fshapes) = results
    assert fshapes == tshapes == [((4, 3, 32, 32), (4,), "int64")] * 2 + [((2, 3, 32, 32), (2,), "int64")]
    assert fl == pytest.approx(tl, rel=FWD_TOL)
    compare_params(tm, fm, 1e-3)


SCHEDULERS = {
    "StepLR": lambda S, o: S.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[2, 5], gamma=0.1),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lr_lambda=lambda epoch: 0.95 ** epoch),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.25, total_iters=4),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, max_lr=0.1, total_steps=10),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    "SequentialLR(warmup, cosine)": lambda S, o: S.SequentialLR(
        o, schedulers=[S.LinearLR(o, start_factor=0.1, total_iters=3), S.CosineAnnealingLR(o, T_max=7)],
        milestones=[3]),
    "ReduceLROnPlateau": lambda S, o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=1),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_lr_schedulers_match_torch(name):
    """The learning rates a schedule gives over 10 epochs, and where the optimizer's param_groups hold them."""
    seqs = []
    for torch in (torch_, pyfastnn):
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = SCHEDULERS[name](torch.optim.lr_scheduler, optimizer)
        lrs = []
        for epoch in range(10):
            optimizer.step()
            if name == "ReduceLROnPlateau":
                scheduler.step([1.0, 0.9, 0.9, 0.9, 0.95, 0.9, 0.9, 0.9, 0.9, 0.9][epoch])
            else:
                scheduler.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        if name != "ReduceLROnPlateau":
            lrs.append(scheduler.get_last_lr()[0])
            state = scheduler.state_dict()
            assert isinstance(state, dict) and "last_epoch" in state
        seqs.append(lrs)
    np.testing.assert_allclose(seqs[1], seqs[0], rtol=1e-9, err_msg=name)


def mnist_program(torch, nn, F):
    """pytorch/examples mnist/main.py: Net, train, test (as written; the loader yields (data, target))."""

    class Net(nn.Module):
        def __init__(self):
            super(Net, self).__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = F.relu(x)
            x = self.conv2(x)
            x = F.relu(x)
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = torch.flatten(x, 1)
            x = self.fc1(x)
            x = F.relu(x)
            x = self.dropout2(x)
            x = self.fc2(x)
            output = F.log_softmax(x, dim=1)
            return output

    def train(args, model, device, train_loader, optimizer, epoch):
        model.train()
        losses = []
        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    def test(model, device, test_loader):
        model.eval()
        test_loss = 0
        correct = 0
        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                output = model(data)
                test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
                pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
                correct += pred.eq(target.view_as(pred)).sum().item()
        test_loss /= len(test_loader.dataset)
        return test_loss, correct

    return Net, train, test


def test_pytorch_examples_mnist():
    rng = np.random.default_rng(12)
    x = rng.random((12, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 12)
    torch_.manual_seed(0)
    programs = [mnist_program(torch, torch.nn, torch.nn.functional) for torch in (torch_, pyfastnn)]
    models = [Net().to(torch.device("cpu")) for torch, (Net, _, _) in zip((torch_, pyfastnn), programs)]
    copy_weights(models[0], models[1])
    results = []
    for torch, model, (_, train, test) in zip((torch_, pyfastnn), models, programs):
        model.dropout1.p = model.dropout2.p = 0.0      # harness: dropout masks are not comparable
        data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
        loader = torch.utils.data.DataLoader(data, batch_size=4)
        optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
        losses = train(None, model, "cpu", loader, optimizer, 1)
        scheduler.step()
        results.append((losses, test(model, "cpu", loader), optimizer.param_groups[0]["lr"]))
    (tl, (tt, tc), tlr), (fl, (ft, fc), flr) = results
    np.testing.assert_allclose(fl, tl, rtol=FWD_TOL)
    assert ft == pytest.approx(tt, rel=FWD_TOL) and fc == tc and flr == pytest.approx(tlr)
