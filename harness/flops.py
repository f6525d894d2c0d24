"""Counting the multiply-accumulates (MACs) of a forward pass, for achieved-TFLOP/s figures.

Counts convolutions and linear layers only (batch norm, ReLU and additions are a rounding
error next to them and are memory-bound anyway), from the spec's shape (harness.sizes), so
counting costs nothing at any depth. Training FLOPs per image are taken as 6 x MACs: 2 FLOPs
per MAC, and a backward pass about twice the forward.
"""

from __future__ import annotations

from harness.sizes import net_size
from harness.zoo import ModelSpec

TRAIN_FLOPS_PER_MAC = 6


def forward_macs(spec: ModelSpec) -> int:
    """MACs of one forward pass of one 32x32 image."""
    return net_size(spec).macs
