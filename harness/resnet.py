"""One generic CIFAR residual-network family.

Every network in the sources is an instance of the same skeleton (He et al. 2015, section 4.2):

    3x3 conv (16 channels) -> three stages of residual units at 32x32, 16x16, 8x8
    -> global average pooling -> 10-way linear layer

The stages have base widths 16, 32, 64 (times the width multiplier k of Wide ResNets; bottleneck
units output 4x that). What differs between papers is only the unit (basic or bottleneck,
post- or pre-activation), the shortcut (A, B, C or none), the width and dropout. Those are the
fields of :class:`harness.zoo.ModelSpec`; this module turns a spec into a ``torch.nn.Module``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from harness.zoo import ModelSpec

STAGE_WIDTHS = (16, 32, 64)
STEM_WIDTH = 16
BOTTLENECK_EXPANSION = 4


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A: identity, subsampled by the stride, extra channels zero-filled. No parameters."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.cin, self.cout = cin, cout
        self.extra_channels = cout - cin
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            # New channels are appended as zeros (He et al.: "extra zero entries padded").
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x


def make_shortcut(
    option: str, cin: int, cout: int, stride: int, *, preact: bool
) -> nn.Module | None:
    """The shortcut branch of one unit, or None for plain networks.

    Projections (options B and C) are a 1x1 convolution, followed by batch norm in post-activation
    units (this is what makes seed 003's ResNet-68 count 1,050,202). Pre-activation units project
    the already normalised input, so their projection has no batch norm, as in He et al. 2016
    and Zagoruyko & Komodakis.
    """
    if option == "none":
        return None
    changes_shape = stride != 1 or cin != cout
    if option == "C" or (option == "B" and changes_shape):
        conv = conv1x1(cin, cout, stride)
        return conv if preact else nn.Sequential(conv, nn.BatchNorm2d(cout))
    if option == "A" and changes_shape:
        return ZeroPadShortcut(cin, cout, stride)
    return nn.Identity()


class Unit(nn.Module):
    """One residual unit: a residual branch plus an optional shortcut.

    ``preact=False`` is the original unit: branch ends in BN, the sum goes through ReLU.
    ``preact=True`` is He et al. 2016's unit: BN-ReLU comes first, nothing follows the sum.
    The residual branch is a list of convolutions; each is preceded (pre-activation) or followed
    (original) by BN-ReLU, except that the original unit's last BN has its ReLU after the sum.
    Dropout, when asked for, sits before the last convolution (Zagoruyko & Komodakis).
    """

    def __init__(
        self,
        convs: list[nn.Conv2d],
        shortcut: nn.Module | None,
        *,
        preact: bool,
        dropout: float,
        in_channels: int,
        after_stem: bool = False,
    ) -> None:
        super().__init__()
        self.preact = preact
        # The first unit follows the stand-alone conv1; see _forward_preact.
        self.after_stem = after_stem
        self.convs = nn.ModuleList(convs)
        if preact:
            self.norms = nn.ModuleList(
                [nn.BatchNorm2d(in_channels)] + [nn.BatchNorm2d(c.in_channels) for c in convs[1:]]
            )
        else:
            self.norms = nn.ModuleList([nn.BatchNorm2d(c.out_channels) for c in convs])
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_preact(x) if self.preact else self._forward_original(x)

    def _forward_original(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            if i == last and self.dropout is not None:
                out = self.dropout(out)
            out = norm(conv(out))
            if i < last:
                out = F.relu(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)

    def _forward_preact(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.norms[0](x))
        out = activated
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            if i > 0:
                out = F.relu(self.norms[i](out))
            if i == last and self.dropout is not None:
                out = self.dropout(out)
            out = conv(out)
        if self.shortcut is None:
            return out
        # A projection starts from the activated input (one BN-ReLU before the split where the
        # shape changes: He et al. 2016's and seed 004's code, WRN). An identity carries the raw
        # sum of the previous unit, x_{l+1} = x_l + F(x_l), except after the stem: "for the first
        # Residual Unit (that follows a stand-alone convolutional layer, conv1), we adopt the
        # first activation right after conv1 and before splitting into two paths" (He et al.
        # 2016, appendix; seed 004's code does the same).
        identity = isinstance(self.shortcut, nn.Identity | ZeroPadShortcut)
        return out + self.shortcut(x if identity and not self.after_stem else activated)


def make_unit(
    spec: ModelSpec, cin: int, planes: int, stride: int, *, after_stem: bool = False
) -> tuple[Unit, int]:
    """Build one unit whose inner width is ``planes``; return it and its output width.
    ``after_stem``: the network's first unit, which follows the stand-alone conv1."""
    if spec.block == "basic":
        cout = planes
        convs = [conv3x3(cin, planes, stride), conv3x3(planes, planes)]
    else:
        cout = planes * BOTTLENECK_EXPANSION
        convs = [conv1x1(cin, planes), conv3x3(planes, planes, stride), conv1x1(planes, cout)]
    shortcut = make_shortcut(spec.shortcut, cin, cout, stride, preact=spec.preact)
    unit = Unit(convs, shortcut, preact=spec.preact, dropout=spec.dropout, in_channels=cin,
                after_stem=after_stem)  # fmt: skip
    return unit, cout


class CifarResNet(nn.Module):
    """The family skeleton; see the module docstring. Build it with ``harness.zoo.build_model``."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.stem = conv3x3(3, STEM_WIDTH)
        # Original units normalise the stem's output; in pre-activation nets the first unit
        # does (its BN-ReLU is shared by both of its paths, see Unit._forward_preact).
        self.stem_norm = None if spec.preact else nn.BatchNorm2d(STEM_WIDTH)
        units: list[nn.Module] = []
        channels = STEM_WIDTH
        for stage, base in enumerate(STAGE_WIDTHS):
            for i in range(spec.units_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                first = stage == 0 and i == 0
                unit, channels = make_unit(spec, channels, base * spec.width, stride,
                                           after_stem=first)  # fmt: skip
                units.append(unit)
        self.units = nn.Sequential(*units)
        # Pre-activation nets end with the BN-ReLU that the last unit did not apply.
        self.final_norm = nn.BatchNorm2d(channels) if spec.preact else None
        self.classifier = nn.Linear(channels, spec.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal conv and linear weights, zero biases, BN weight 1 bias 0."""
        if self.classifier.weight.is_meta:
            return  # built only to be counted (see describe.parameter_count); nothing to fill
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode=self.spec.init_mode, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.stem_norm is not None:
            x = F.relu(self.stem_norm(x))
        x = self.units(x)
        if self.final_norm is not None:
            x = F.relu(self.final_norm(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)
