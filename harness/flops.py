"""Counting the multiply-accumulates (MACs) of a forward pass, for achieved-TFLOP/s figures.

Counts convolutions and linear layers only (batch norm, ReLU and additions are a rounding
error next to them and are memory-bound anyway). The model runs on the meta device, so
counting costs no compute. Training FLOPs per image are taken as 6 x MACs: 2 FLOPs per MAC,
and a backward pass about twice the forward.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.zoo import ModelSpec, build_model

TRAIN_FLOPS_PER_MAC = 6


def forward_macs(spec: ModelSpec) -> int:
    """MACs of one forward pass of one 32x32 image."""
    total = 0

    def conv(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_output = (
            module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        )
        total += output[0].numel() * per_output

    def linear(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += module.in_features * module.out_features

    with torch.device("meta"):
        model = build_model(spec)
        _without_batch_norm(model)
        hooks = [
            m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
            for m in model.modules()
            if isinstance(m, nn.Conv2d | nn.Linear)
        ]
        with torch.no_grad():
            model.train()(torch.empty(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return total


def _without_batch_norm(model: nn.Module) -> None:
    """Batch norm keeps shapes and is not counted, and on the meta device it is the slow part
    (its decomposition ran 70% of the count: 9.3 s of CPU for the 28 networks of studies/,
    2.8 s without it, on the 2-core development VM, 2026-11-26): it is left out."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, name, nn.Identity())
