"""Pre-activation nets against a tiny reference written from He et al. 2016's description.

The reference below is the paper's text turned into arithmetic, not another implementation's
code: a full pre-activation unit is x_{l+1} = x_l + F(x_l) with F = (BN, ReLU, conv) repeated
(Fig. 4e); "for the first Residual Unit (that follows a stand-alone convolutional layer, conv1),
we adopt the first activation right after conv1 and before splitting into two paths; for the
last Residual Unit ... an extra activation right after its element-wise addition" (appendix).
Where the paper is silent we follow seed 004's and He et al.'s released code: a projection
shortcut (option B, where the shape changes) starts from the activated input, and a
bottleneck unit strides in its 3x3 convolution (as seed 004 does).
It reads the weights from the model under test, by position, and nothing else.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.resnet import CifarResNet
from harness.zoo import ModelSpec


def batch_norm(x: torch.Tensor, norm: nn.BatchNorm2d) -> torch.Tensor:
    """Inference-mode batch normalisation: (x - mean) / sqrt(var + eps) * gamma + beta."""
    shape = (1, -1, 1, 1)
    mean, var = norm.running_mean.view(shape), norm.running_var.view(shape)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(shape) + norm.bias.view(shape)


def conv(x: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
    """A 'same' convolution with the layer's weights and stride."""
    size = layer.weight.shape[-1]
    return nn.functional.conv2d(x, layer.weight, stride=layer.stride, padding=size // 2)


def relu(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_min(0)


def reference(model: CifarResNet, images: torch.Tensor) -> torch.Tensor:
    x = conv(images, model.stem)  # conv1, stand-alone
    for index, unit in enumerate(model.units):
        activated = relu(batch_norm(x, unit.norms[0]))
        branch = conv(activated, unit.convs[0])
        for norm, layer in zip(unit.norms[1:], unit.convs[1:], strict=True):
            branch = conv(relu(batch_norm(branch, norm)), layer)
        if isinstance(unit.shortcut, nn.Conv2d):  # a projection, where the shape changes
            shortcut = conv(activated, unit.shortcut)
        elif index == 0:  # the unit after conv1 splits after the activation
            shortcut = activated
        else:  # an identity carries the previous unit's sum, unactivated
            shortcut = x
        x = branch + shortcut
    x = relu(batch_norm(x, model.final_norm))  # the extra activation after the last addition
    pooled = x.mean(dim=(2, 3))
    return pooled @ model.classifier.weight.T + model.classifier.bias


def randomised(spec: ModelSpec) -> CifarResNet:
    """The model with every batch norm's statistics and affine parameters random, in eval mode,
    so no normalisation is the identity and a wrongly wired path changes the output."""
    torch.manual_seed(0)
    model = CifarResNet(spec)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.5)
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, nn.Linear):
                m.bias.normal_(0, 0.5)
    return model.eval()


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec(depth=14, block="basic", preact=True, shortcut="B"),  # preresnet14, 2 per stage
        ModelSpec(depth=20, block="bottleneck", preact=True, shortcut="B"),  # 2 per stage
        ModelSpec(depth=16, preact=True, shortcut="B", width=2, depth_convention="wrn"),
    ],
    ids=["basic", "bottleneck", "wide"],
)
def test_preactivation_nets_compute_the_paper_s_function(spec):
    model = randomised(spec)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(images), reference(model, images), rtol=1e-4, atol=1e-4)


def test_the_first_basic_unit_carries_the_activated_stem_output():
    """preresnet110's first unit keeps 16 channels at stride 1: an identity, which must carry
    relu(BN(conv1(x))), not conv1(x). With its residual branch zeroed, that is all it outputs."""
    model = randomised(ModelSpec(depth=110, preact=True, shortcut="B"))
    first = model.units[0]
    assert isinstance(first.shortcut, nn.Identity)
    for layer in first.convs:
        nn.init.zeros_(layer.weight)
    stem = torch.randn(2, 16, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(first(stem), relu(batch_norm(stem, first.norms[0])), atol=1e-5)
        # Later identity units still carry their input as it is (x_{l+1} = x_l + F(x_l)).
        second = model.units[1]
        for layer in second.convs:
            nn.init.zeros_(layer.weight)
        assert torch.equal(second(stem), stem)
