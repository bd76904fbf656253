"""ResNet, ResNeXt and Wide ResNet with torchvision's constructors, module tree and state_dict keys, so
torchvision checkpoints load unchanged (weights= a file or a state dict; nothing is downloaded). In eval mode
each BatchNorm runs folded into the convolution before it (nn.utils.fusion.conv_bn) when no gradient is
wanted for them."""
from __future__ import annotations

from .. import nn
from ..nn.utils.fusion import conv_bn
from ._weights import documented, load_checked, vision_weights

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def shortcut(downsample, x):
    """The residual branch: x, or the downsample (torchvision's Sequential(conv1x1, norm), folded when it can be)."""
    if downsample is None:
        return x
    if isinstance(downsample, nn.Sequential) and len(downsample) == 2 and not (
            downsample._forward_hooks or downsample._forward_pre_hooks):
        return conv_bn(downsample[0], downsample[1], x)
    return downsample(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = shortcut(self.downsample, x)
        out = self.relu(conv_bn(self.conv1, self.bn1, x))
        out = conv_bn(self.conv2, self.bn2, out)
        out += identity                         # in place, as torchvision: no new activation-sized buffer
        return self.relu(out)


class Bottleneck(nn.Module):
    """torchvision's ResNet V1.5 bottleneck: the stride sits on the 3x3 convolution."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = shortcut(self.downsample, x)
        out = self.relu(conv_bn(self.conv1, self.bn1, x))
        out = self.relu(conv_bn(self.conv2, self.bn2, out))
        out = conv_bn(self.conv3, self.bn3, out)
        out += identity                         # in place, as torchvision: no new activation-sized buffer
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1, width_per_group=64,
                 replace_stride_with_dilation=None, norm_layer=None):
        super().__init__()
        if block not in (BasicBlock, Bottleneck) and not (isinstance(block, type) and issubclass(block, nn.Module)):
            raise TypeError(f"ResNet: 'block' must be BasicBlock, Bottleneck or a Module class, got {block!r}")
        if not (isinstance(layers, (list, tuple)) and len(layers) == 4
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in layers)):
            raise ValueError(f"ResNet: 'layers' must be four positive block counts, got {layers!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"ResNet: 'num_classes' must be a positive int, got {num_classes!r}")
        self._norm_layer = norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, got "
                             f"{replace_stride_with_dilation}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            # each residual branch starts as zero, so every block starts as the identity
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, previous_dilation,
                        norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(conv_bn(self.conv1, self.bn1, x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x).flatten(1)
        return self.fc(x)


def _resnet(name, block, layers, weights, pretrained, kwargs):
    state, source = vision_weights(weights, pretrained, name, kwargs, "fc.weight")
    model = ResNet(block, layers, **kwargs)
    if state is not None:
        load_checked(model, state, where=name, source=source, arch=name)
    return model


@documented("ResNet-18")
def resnet18(*, weights=None, progress=True, pretrained=None, **kwargs):
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], weights, pretrained, kwargs)


@documented("ResNet-34")
def resnet34(*, weights=None, progress=True, pretrained=None, **kwargs):
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], weights, pretrained, kwargs)


@documented("ResNet-50 (V1.5)")
def resnet50(*, weights=None, progress=True, pretrained=None, **kwargs):
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], weights, pretrained, kwargs)


@documented("ResNet-101 (V1.5)")
def resnet101(*, weights=None, progress=True, pretrained=None, **kwargs):
    return _resnet("resnet101", Bottleneck, [3, 4, 23, 3], weights, pretrained, kwargs)


@documented("ResNet-152 (V1.5)")
def resnet152(*, weights=None, progress=True, pretrained=None, **kwargs):
    return _resnet("resnet152", Bottleneck, [3, 8, 36, 3], weights, pretrained, kwargs)


@documented("ResNeXt-50 32x4d")
def resnext50_32x4d(*, weights=None, progress=True, pretrained=None, **kwargs):
    kwargs.setdefault("groups", 32)
    kwargs.setdefault("width_per_group", 4)
    return _resnet("resnext50_32x4d", Bottleneck, [3, 4, 6, 3], weights, pretrained, kwargs)


@documented("ResNeXt-101 32x8d")
def resnext101_32x8d(*, weights=None, progress=True, pretrained=None, **kwargs):
    kwargs.setdefault("groups", 32)
    kwargs.setdefault("width_per_group", 8)
    return _resnet("resnext101_32x8d", Bottleneck, [3, 4, 23, 3], weights, pretrained, kwargs)


@documented("ResNeXt-101 64x4d")
def resnext101_64x4d(*, weights=None, progress=True, pretrained=None, **kwargs):
    kwargs.setdefault("groups", 64)
    kwargs.setdefault("width_per_group", 4)
    return _resnet("resnext101_64x4d", Bottleneck, [3, 4, 23, 3], weights, pretrained, kwargs)


@documented("Wide ResNet-50-2")
def wide_resnet50_2(*, weights=None, progress=True, pretrained=None, **kwargs):
    kwargs.setdefault("width_per_group", 64 * 2)
    return _resnet("wide_resnet50_2", Bottleneck, [3, 4, 6, 3], weights, pretrained, kwargs)


@documented("Wide ResNet-101-2")
def wide_resnet101_2(*, weights=None, progress=True, pretrained=None, **kwargs):
    kwargs.setdefault("width_per_group", 64 * 2)
    return _resnet("wide_resnet101_2", Bottleneck, [3, 4, 23, 3], weights, pretrained, kwargs)
