"""Fused training (harness.fusion, harness.fused_train) is training the members apart.

The proofs run on the CPU in float64, through the real code paths (`train` for the solo
runs, `train_group` for the fused ones, both writing ordinary run directories), and compare
what the store holds: weights, batch-norm statistics, momentum buffers, every epoch's losses
and errors.
"""

from __future__ import annotations

import torch
import pytest
from conftest import tiny_study

from harness import store
from harness.data import load_cached, locate
from harness.execution import choose
from harness.fused_train import train_group
from harness.plan import Overrides, plan
from harness.studyfile import load_study
from harness.train import train

CPU = torch.device("cpu")
FP64 = choose(CPU, precision="fp64")

# 30 steps an epoch: 300 of the 600 training images (a different subset per seed) at batch 10.
RECIPE = """\
    optimizer: {lr: 0.002, momentum: 0.9, weight_decay: 5.0e-4}
    batch_size: 10
    epochs: 1
    schedule: {kind: constant}
    normalization: {kind: per_channel}
    augmentation: {crop: {padding: 2}, flip: true}
    train_images: 300
    test_images: 100
"""
# A second experiment that differs in everything a member may have of its own.
OTHER = (
    ", recipe: {extends: base, optimizer: {lr: 0.004, momentum: 0.8, weight_decay: 1.0e-4, nesterov: true,"
    " no_weight_decay: [norm_scale, norm_shift]}, normalization: {kind: per_pixel_mean},"
    " warmup: {lr: 0.0005, iterations: 7}}"
)


def plans_of(tmp_path, model: str, seeds: int = 2, recipe: str = RECIPE, other: str = OTHER):
    """Two seeds of one experiment and one run of another that differs in its recipe."""
    experiments = f"  - {{name: net, model: {model}, recipe: base}}\n"
    if other:
        experiments += f"  - {{name: other, model: {model}, seeds: 1{other}}}\n"
    path = tiny_study(tmp_path / "s.yaml", experiments, recipe=recipe, seeds=seeds)
    return plan(load_study(path))


def solo_and_fused(tmp_path, cifar_root, plans):
    data = load_cached(locate(cifar_root))
    solo_dirs = [tmp_path / "solo" / p.name for p in plans]
    fused_dirs = [tmp_path / "fused" / p.name for p in plans]
    solo = [train(p, data, d, FP64) for p, d in zip(plans, solo_dirs)]
    fused = train_group(plans, data, fused_dirs, FP64)
    return solo, fused, solo_dirs, fused_dirs


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.dtype in (torch.long, torch.int64):
        return 0.0 if torch.equal(a, b) else float("inf")
    scale = a.abs().max().clamp_min(1e-30)
    return ((a - b).abs().max() / scale).item()


def compare(solo_dir, fused_dir, tol=1e-10):
    a = torch.load(solo_dir / store.CHECKPOINT, weights_only=True)
    b = torch.load(fused_dir / store.CHECKPOINT, weights_only=True)
    assert a["epoch"] == b["epoch"] and a["iteration"] == b["iteration"]
    worst = max(rel(t, b["model"][k]) for k, t in a["model"].items())
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    worst_buf = max(rel(sa[i]["momentum_buffer"], sb[i]["momentum_buffer"]) for i in sa)
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    worst_loss = 0.0
    for ha, hb in zip(a["history"], b["history"], strict=True):
        for key in ("train_loss", "test_loss", "val_loss"):
            if ha[key] is not None:
                worst_loss = max(worst_loss, abs(ha[key] - hb[key]) / abs(ha[key]))
        for key in ("lr", "iteration"):
            assert ha[key] == hb[key], key
        errors = [(ha[key], hb[key]) for key in ("train_error", "test_error", "val_error")]
    return worst, worst_buf, worst_loss, errors
