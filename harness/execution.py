"""How a run executes, as opposed to what it computes (that is the config and its hash).

Two pipelines feed the same training step:

- ``fast`` (default): images resident on the device, augmented there (``harness.loader``);
  on CUDA also bf16 autocast, channels_last memory layout, ``torch.compile`` (CUDA graphs,
  see :func:`default_compile_mode`) and cuDNN autotuning. On the CPU it is the same code in
  fp32, eager.
- ``canonical``: what the common open-source CIFAR trainers do, kept as the baseline that
  speed is measured against (``harness.canonical``): torchvision transforms on PIL images in
  DataLoader worker processes, fp32, eager.

Everything chosen here is recorded with every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from harness.choices import COMPILE_MODES, PIPELINES, PRECISIONS  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Execution:
    device: torch.device
    pipeline: str = "fast"
    precision: str = "fp32"  # fp32 | bf16 (autocast) | fp64 (model and data in float64)
    compile: bool = False
    compile_mode: str = "default"
    # The mode a group trained as one fused network compiles in (see :meth:`fused`).
    fused_compile_mode: str = "default"
    channels_last: bool = False
    workers: int = 4  # DataLoader workers of the canonical pipeline
    deterministic: bool = False
    # Runs sharing the device by design (--runs-per-gpu K): their seconds per epoch and
    # whole-GPU telemetry are not a solo run's.
    shared_by: int = 1
    # The runs trained together as one fused network (harness.fusion), empty when solo:
    # their seconds per epoch are the group's.
    fused_group: tuple[str, ...] = ()

    def fused(self, members: tuple[str, ...]) -> Execution:
        """This execution for ``members`` trained as one fused network (harness.fusion)."""
        return replace(self, fused_group=members, compile_mode=self.fused_compile_mode)

    @property
    def label(self) -> str:
        return label(self.precision, self.pipeline)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' and inputs' dtype (autocast may compute in less inside)."""
        return torch.float64 if self.precision == "fp64" else torch.float32

    def describe(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "precision": self.precision,
            "compile": self.compile,
            "compile_mode": self.compile_mode if self.compile else None,
            "channels_last": self.channels_last,
            "workers": self.workers if self.pipeline == "canonical" else None,
            "deterministic": self.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "device_shared_by": self.shared_by,
            # only for fused runs, so that solo runs' records keep their shape
            **(
                {"fused": len(self.fused_group), "fused_group": list(self.fused_group)}
                if self.fused_group
                else {}
            ),
        }


# Inductor's compile workers per process. K processes sharing a machine (repro run's workers,
# the bench's concurrent runs) get 1/K of its cores each: K cold compilations each asking for
# every core would compete for them. A value the user set is kept.
COMPILE_THREADS = "TORCHINDUCTOR_COMPILE_THREADS"


def cores_each(k: int) -> int:
    """This machine's cores shared out among ``k`` processes, at least one each."""
    return max(1, (os.cpu_count() or 1) // k)


def compiled_label(mode: str | None) -> str:
    """'compiled' in the default mode (or one not recorded), else 'compiled (reduce-overhead)'."""
    return "compiled" if mode in (None, "default") else f"compiled ({mode})"


def label(precision: str | None, pipeline: str | None) -> str:
    """How a run's numbers were computed, as the report and the runner name it."""
    return f"{precision or '?'}, {pipeline or '?'} pipeline"


def choose(
    device: torch.device,
    *,
    pipeline: str = "fast",
    precision: str = "auto",
    compile: bool | None = None,
    compile_mode: str | None = None,
    workers: int | None = None,
    deterministic: bool = False,
    shared_by: int = 1,
) -> Execution:
    """The execution for ``device``: the fast path's GPU settings on CUDA, plain fp32 otherwise.

    The canonical pipeline is always fp32 and eager, whatever else is asked: it is the baseline.
    ``compile_mode`` None: :func:`default_compile_mode`; a mode given holds for fused groups too.
    """
    cuda = device.type == "cuda"
    fast = pipeline == "fast"
    if precision == "auto":
        precision = "bf16" if (cuda and fast) else "fp32"
    if not fast:
        precision, compile = "fp32", False
    if compile is None:
        compile = cuda and fast
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    return Execution(
        device=device,
        pipeline=pipeline,
        precision=precision,
        compile=compile,
        compile_mode=compile_mode or default_compile_mode(device, pipeline),
        fused_compile_mode=compile_mode or "default",
        channels_last=cuda and fast,
        workers=workers,
        deterministic=deterministic,
        shared_by=shared_by,
    )


def default_compile_mode(device: torch.device, pipeline: str = "fast") -> str:
    """The fast path's compile mode on CUDA is reduce-overhead: CUDA graphs replay the step
    without the host's per-operator dispatch, which bounds it at batch 128. Measured
    (`repro bench`, resnet20, s/epoch, default mode against reduce-overhead): 3.391 against
    1.150 on one H100 (2026-11-26), 3.993 against 1.705 on one H200 (2026-11-27, commit
    9f221eb), where resnet56 took 9.118 against 3.344; and tests/test_gpu.py's check that
    reduce-overhead trains like the default mode passed on both. Elsewhere, "default" (the
    CPU compiles only when asked, and CUDA graphs are CUDA's).

    A fused group (``Execution.fused``) keeps "default" unless a mode is asked for: its
    step under CUDA graphs has not yet been checked on a GPU (tests/test_gpu.py has the check
    for the next GPU slot, test_a_fused_group_trains_under_cuda_graphs_like_the_default_mode).
    """
    return "reduce-overhead" if device.type == "cuda" and pipeline == "fast" else "default"


def configure_backends(ex: Execution) -> None:
    """Process-wide switches that the execution implies."""
    if ex.device.type == "cuda":
        # Autotune convolution algorithms for the fixed CIFAR shapes (off for determinism).
        # Both pipelines get it: the common trainers set it too, so the baseline stays fair.
        # TF32 is left at PyTorch's defaults for the same reason.
        torch.backends.cudnn.benchmark = not ex.deterministic
    if ex.deterministic:
        torch.use_deterministic_algorithms(True)
