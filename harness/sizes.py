"""How big a spec's net is (parameters, multiply-accumulates of a forward pass), worked out
from the spec alone, without building the net.

Validation counts every net a study names (`repro validate`'s params column and cost line, the
report, the bound in :class:`harness.zoo.ModelSpec`). Building a net to count it, even on the
meta device, grows with its depth: WRN-1000-10 took seconds and a million layers never ended.
Here a count costs the same at any depth: each of the three stages of
:class:`harness.resnet.CifarResNet` is its first unit (which may change the width and
resolution) and n-1 units alike, so a stage counts as its first unit plus n-1 times one other.

This mirrors :mod:`harness.resnet` layer by layer: ``tests/test_zoo.py`` checks both counts
against the built net (its parameters, and MACs hooked on its convolutions and classifier) for
every spec of the shipped studies and for odd ones, so that a change there that is not made
here fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.resnet import BOTTLENECK_EXPANSION, STAGE_WIDTHS, STEM_WIDTH

if TYPE_CHECKING:
    from harness.zoo import ModelSpec

IMAGE_SIDE = 32  # CIFAR images are 32x32; the stages run at 32, 16 and 8


@dataclass(frozen=True)
class NetSize:
    """What a net or a part of it holds and costs, for one image."""

    weights: int = 0  # convolution and linear weights and biases
    batch_norm: int = 0  # batch norm's scale and shift (running statistics are no parameters)
    macs: int = 0  # multiply-accumulates of convolutions and the classifier

    def __add__(self, other: NetSize) -> NetSize:
        return NetSize(self.weights + other.weights, self.batch_norm + other.batch_norm,
                       self.macs + other.macs)  # fmt: skip

    def __mul__(self, times: int) -> NetSize:
        return NetSize(self.weights * times, self.batch_norm * times, self.macs * times)

    def parameters(self, counts: str = "all") -> int:
        """Trainable parameters; ``counts`` as in :func:`harness.zoo.count_parameters`."""
        return self.weights + (0 if counts == "without_batchnorm" else self.batch_norm)


def net_size(spec: ModelSpec) -> NetSize:
    """The whole net of ``spec``, as :class:`harness.resnet.CifarResNet` builds it."""
    size = _conv(3, STEM_WIDTH, 3, IMAGE_SIDE)
    if not spec.preact:  # original units normalise the stem's output; pre-activation ones do it
        size += _norm(STEM_WIDTH)
    channels, side = STEM_WIDTH, IMAGE_SIDE
    n = spec.units_per_stage
    for stage, base in enumerate(STAGE_WIDTHS):
        stride = 2 if stage > 0 else 1
        first, channels, side = _unit(spec, channels, base * spec.width, stride, side)
        # The other n-1 units of a stage keep its width and resolution: all alike.
        other, _, _ = _unit(spec, channels, base * spec.width, 1, side)
        size += first + other * (n - 1)
    if spec.preact:  # the BN-ReLU the last pre-activation unit did not apply
        size += _norm(channels)
    classifier = NetSize(weights=channels * spec.num_classes + spec.num_classes,
                         macs=channels * spec.num_classes)  # fmt: skip
    return size + classifier


def _unit(
    spec: ModelSpec, cin: int, planes: int, stride: int, side_in: int
) -> tuple[NetSize, int, int]:
    """One unit (:func:`harness.resnet.make_unit`): its size, output width and output side."""
    side = side_in // stride
    if spec.block == "basic":
        cout = planes
        convs = [(cin, planes, 3, side), (planes, planes, 3, side)]
    else:
        cout = planes * BOTTLENECK_EXPANSION
        # The first 1x1 runs before the stride, at the unit's input resolution.
        convs = [(cin, planes, 1, side_in), (planes, planes, 3, side), (planes, cout, 1, side)]
    size = NetSize()
    for conv in convs:
        size += _conv(*conv)
    # Pre-activation units normalise each convolution's input, the others its output.
    normed = [cin] + [c[0] for c in convs[1:]] if spec.preact else [c[1] for c in convs]
    for width in normed:
        size += _norm(width)
    # make_shortcut: options A and none, and B where the shape holds, have no parameters.
    changes_shape = stride != 1 or cin != cout
    if spec.shortcut == "C" or (spec.shortcut == "B" and changes_shape):
        size += _conv(cin, cout, 1, side)
        if not spec.preact:
            size += _norm(cout)
    return size, cout, side


def _conv(cin: int, cout: int, kernel: int, side: int) -> NetSize:
    """A bias-free convolution whose output is ``side`` x ``side``."""
    per_output = cin * kernel * kernel
    return NetSize(weights=cout * per_output, macs=cout * side * side * per_output)


def _norm(channels: int) -> NetSize:
    return NetSize(batch_norm=2 * channels)
