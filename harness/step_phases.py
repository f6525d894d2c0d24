"""Where a training step's host time goes, measured with the host's clock alone.

A fast path bound by the host (the GPU waiting for the next launch) is sped up by cutting
host work, and which work decides what to cut. torch.profiler says so for eager and
default-mode steps, but under CUDA graphs it may lose the replayed kernels and has crashed
with them on some CUDA versions (pytorch#100441, kineto#1165), and it slows the host it
measures. So this times, without it, what the host spends per step on each part of the
training loop: drawing the batch, the training step without its optimizer (forward, loss,
backward and the error count), the optimizer step, and the loop's own bookkeeping. No part
waits for the device on purpose; the epoch's end does (``StepLoop._epoch`` synchronises), so
the wall time is the steps'.

The host's times alone cannot say which side bounds the step: a device that falls behind
fills CUDA's launch queue, and then launches block, so the host's parts fill the wall time
either way. What does say it is whether the device waits for the host: after the host has
issued step i, it asks (without waiting) whether the device has finished step i - 1. Bound by
the host, the device has (it idles until the next launch); bound by the device, it has not
(it is steps behind).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from harness.train import SilentProgress


@dataclass
class HostPhases:
    """Milliseconds per step: wall time and the host's time in each part of the loop."""

    steps: int
    wall_ms: float  # the steps' wall time, the device's work to the end included
    data_ms: float  # drawing the batch (the fast path's gather and augmentation launches)
    step_ms: float  # forward, loss, backward, error count: the step less its optimizer
    optimizer_ms: float  # optimizer.step()
    loop_ms: float  # the rest: learning rates, sums of losses and errors, the end's wait
    # On CUDA, the steps (of steps - 1 asked) at whose issue the device had finished the
    # step before: it waited for the host. None off CUDA, where the host computes itself.
    device_waited: int | None = None


def _timed(batches: Iterable, spent: list[float]) -> Iterator:
    """The batches, the host's time to draw each added to ``spent``."""
    it = iter(batches)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        spent.append(time.perf_counter() - t0)
        yield batch


def time_phases(trainer, epochs: Iterable[Iterable], lr_at, iteration: int,
                steps: int) -> HostPhases:  # fmt: skip
    """Train ``steps`` more steps of a warm solo ``Trainer`` from ``epochs`` (iterables of
    batches, drawn as they are trained) and time the host's parts of each step."""
    data: list[float] = []
    optimizer: list[float] = []
    whole: list[float] = []
    step_optimizer, train_batch = trainer.optimizer.step, trainer._train_batch
    cuda = trainer.ex.device.type == "cuda"
    issued: list = []  # one CUDA event recorded after each step's launches
    waited = 0

    def optimizer_step(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return step_optimizer(*args, **kwargs)
        finally:
            optimizer.append(time.perf_counter() - t0)

    def timed_batch(batch):
        nonlocal waited
        t0 = time.perf_counter()
        try:
            return train_batch(batch)
        finally:
            whole.append(time.perf_counter() - t0)
            if cuda:
                waited += bool(issued) and issued[-1].query()  # asks; never waits
                issued.append(torch.cuda.Event())
                issued[-1].record()

    # Instance attributes shadow the methods for these steps only, then are removed.
    trainer.optimizer.step, trainer._train_batch = optimizer_step, timed_batch
    try:
        batches = itertools.islice(itertools.chain.from_iterable(epochs), steps)
        result = trainer.train_epoch(_timed(batches, data), lr_at, iteration, SilentProgress())
    finally:
        del trainer.optimizer.step, trainer._train_batch
    n = max(len(whole), 1)
    totals = (result.seconds, sum(data), sum(whole), sum(optimizer))
    wall, drawn, stepped, opt = (1e3 * v / n for v in totals)
    return HostPhases(steps=len(whole), wall_ms=wall, data_ms=drawn, step_ms=stepped - opt,
                      optimizer_ms=opt, loop_ms=wall - drawn - stepped,
                      device_waited=waited if cuda else None)  # fmt: skip
