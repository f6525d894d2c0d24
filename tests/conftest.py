"""Shared fixtures: a small learnable data set in the official format, and tiny studies."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Under pytest-xdist (`make test` runs one worker per core) each worker gets its share of the
# cores for torch's threads, as repro's own local workers do (harness.executors), and so do
# the processes its tests start. Left at torch's default, every worker ran as many threads as
# there are cores: with two workers on the 2-core VM (other jobs running too) the float64
# fusion proof of ResNet-56-B took 309 s, with a thread each 73 s (README, Development).
# Set before torch is imported (harness.schema below).
if (_workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cifar_fixture import write_cifar

from harness.schema import Recipe

ROOT = Path(__file__).resolve().parents[1]

TINY_RECIPE = """\
    optimizer: {lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4}
    batch_size: 50
    epochs: 3
    schedule: {kind: multistep, milestones: [2], gamma: 0.1}
    normalization: {kind: per_channel}
    augmentation: {crop: {padding: 2}, flip: true}
"""
# TINY_RECIPE on 100 training and 50 test images (two steps an epoch), for tests of what
# goes on around training (workers, queues, pausing, the store), which no amount of training
# makes any sharper. Not for tests that race a signal or a deadline against the epochs, nor
# for those of what counts for a claim: a run on a subset never does.
QUICK_RECIPE = TINY_RECIPE + "    train_images: 100\n    test_images: 50\n"


def tiny_study(
    path: Path, experiments: str, recipe: str = TINY_RECIPE, name: str = "tiny", seeds: int = 1
) -> Path:
    """Write a study with one named recipe ``base`` and the given experiments block."""
    path.write_text(
        f"name: {name}\n"
        "description: a tiny study for the tests\n"
        "sources: {test: {title: tests, authors: repro}}\n"
        f"seeds: {seeds}\n"
        "recipes:\n"
        "  base:\n" + recipe + "experiments:\n" + experiments
    )
    return path


def small_recipe(**changes) -> Recipe:
    """A recipe for a few steps at batch 32, without augmentation unless asked."""
    base = {
        "optimizer": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        "batch_size": 32,
        "epochs": 1,
        "normalization": {"kind": "per_channel"},
        "augmentation": {"crop": None, "flip": False},
    }
    return Recipe.model_validate({**base, **changes})


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    """A directory holding cifar-10-batches-py/ (600 train, 200 test images)."""
    return write_cifar(tmp_path_factory.mktemp("cifar"))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path_factory):
    """No test sees the user's data or cache, and none may reach the network."""
    empty = tmp_path_factory.mktemp("empty-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty))
    monkeypatch.delenv("REPRO_DATA_DIR", raising=False)

    def no_network(root):
        raise OSError("network access is disabled in the tests")

    monkeypatch.setattr("harness.data._download", no_network)


@pytest.fixture
def device_reads(monkeypatch) -> dict:
    """Counts host reads of tensors (.item(), .tolist(), truth and number values) in
    ``["n"]``: a training step that makes one waits for the device."""
    import torch

    reads = {"n": 0}
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *a, _original=original, **k):
            reads["n"] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return reads
