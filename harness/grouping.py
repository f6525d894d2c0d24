"""Which pending runs train together as one fused network (`repro run --fuse`).

Runs are grouped when :func:`harness.fused_train.fusion_key` says they can be one network
(same architecture, batch size, last-batch policy, data sizes, length, momentum on or off)
and they start from the same epoch; a group is at most K runs (``--fuse K``) or, with
``--fuse auto``, as many as fit the GPU's memory, up to :data:`AUTO_MAX` (none on a CPU:
:data:`AUTO_MAX_CPU`).
Groups are made as even as the limit allows (five runs at most four to a group: three and
two, not four and one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from harness import store
from harness.execution import Execution
from harness.fused_train import fusion_key
from harness.plan import RunPlan
from harness.zoo import ModelSpec, build_model

# HFTA's measurements flatten out beyond about eight small models per GPU; more members
# also make a group's loss of one slot (a crash, a kill) costlier.
AUTO_MAX = 8
# A CPU is bound by arithmetic, not kernel launches, and fusing does not pay there: on the
# 2-core VM (2026-11-26) two fused resnet20 ran at 1.02x the throughput of one after another
# and four at 0.67x (benchmarks/cpu-fusion-2026-11-26.md). So auto does not fuse on a CPU;
# --fuse K still does.
AUTO_MAX_CPU = 1
AUTO_ON_CPU = ("--fuse auto: not fusing on a CPU, where fused runs measured no faster than "
               "runs one after another (benchmarks/cpu-fusion-2026-11-26.md); --fuse K fuses "
               "anyway")  # fmt: skip
NOT_ON_CANONICAL = ("--fuse {fuse}: not fusing: fused training is on the fast pipeline only, "
                    "and --pipeline {pipeline} trains each run on its own")  # fmt: skip
# The share of the free device memory that a group's estimated needs may take.
MEMORY_SHARE = 0.6


def groups(plans: Sequence[RunPlan], results: Path, ex: Execution, fuse: int | str,
           auto: int | None = None, echo=None) -> list[list[RunPlan]]:  # fmt: skip
    """The runs in training order, as groups; a group of one trains on its own. ``auto``
    replaces what ``--fuse auto`` would measure on ``ex``'s device (where the device that
    will train is not this one: a Slurm submission). ``echo`` hears why auto did not fuse."""
    if fuse != 1 and ex.pipeline != "fast":
        if echo is not None and len(plans) > 1:
            echo(NOT_ON_CANONICAL.format(fuse=fuse, pipeline=ex.pipeline))
        return [[p] for p in plans]
    if fuse == "auto" and auto is None and ex.device.type != "cuda" and echo is not None:
        echo(AUTO_ON_CPU)
    if fuse == 1:
        return [[p] for p in plans]
    buckets: dict[tuple, list[RunPlan]] = {}
    for p in plans:
        start = store.inspect(p.directory(results)).epochs_done
        buckets.setdefault((fusion_key(p), start), []).append(p)
    out: list[list[RunPlan]] = []
    for members in buckets.values():
        limit = fuse if isinstance(fuse, int) else auto or auto_limit(members[0], ex)
        out += _even_chunks(members, limit)
    return out


def _even_chunks(members: list[RunPlan], limit: int) -> list[list[RunPlan]]:
    count = math.ceil(len(members) / max(1, limit))
    size, extra = divmod(len(members), count)
    chunks, i = [], 0
    for c in range(count):
        n = size + (1 if c < extra else 0)
        chunks.append(members[i : i + n])
        i += n
    return chunks


def auto_limit(p: RunPlan, ex: Execution) -> int:
    """How many members ``--fuse auto`` puts in a group: on CUDA, AUTO_MAX or fewer where the
    device's free memory would not hold them; on a CPU, AUTO_MAX_CPU (as measured there)."""
    if ex.device.type != "cuda":
        return AUTO_MAX_CPU
    free, _total = torch.cuda.mem_get_info(ex.device)
    need = member_bytes(p.experiment.model, p.recipe.batch_size, ex)
    return max(1, min(AUTO_MAX, int(free * MEMORY_SHARE // need)))


def member_bytes(spec: ModelSpec, batch_size: int, ex: Execution) -> int:
    """A rough upper estimate of one member's training memory: every module's output kept
    for the backward pass, at the compute precision, plus weights, gradients and momentum
    in float32. Counted on the meta device, so it costs nothing."""
    elements = 0

    def count(_module, _inputs, output) -> None:
        nonlocal elements
        if isinstance(output, torch.Tensor):
            elements += output[0].numel()

    with torch.device("meta"):
        model = build_model(spec)
        hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
        model.train()(torch.empty(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    activation = 2 if ex.autocast_dtype is not None else ex.dtype.itemsize
    params = sum(p.numel() for p in model.parameters())
    return elements * batch_size * activation + params * 4 * 3
