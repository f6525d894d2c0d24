"""The command line's fixed choices, in a module that imports nothing heavy.

`repro` checks its arguments before it imports torch (about two seconds), so a misspelled
option or path fails at once; the modules that act on these choices import them from here.
"""

PIPELINES = ("fast", "canonical")
PRECISIONS = ("auto", "fp32", "bf16", "fp64")  # fp64: exact comparisons (tests, proofs)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
EXECUTORS = ("local", "slurm", "submitit-local")
BENCH_MODELS = ("resnet20", "resnet56", "resnet110")  # what `repro bench` times by default
MAX_BATCH_SIZE = 65536  # a recipe's batch_size, and `repro bench --batch-size`
# `repro run --gpus` and a study's executor.local.gpus take the same values, said the same way.
GPU_COUNT = "a positive whole number (e.g. 2) or 'all'"
RUNS_PER_GPU = (1, 32)  # `--runs-per-gpu` and executor.local.runs_per_gpu, both ends included


class FuseChoiceError(ValueError):
    """A --fuse value that is neither auto, off nor a positive whole number."""


def parse_fuse(text: str) -> int | str:
    """`repro run --fuse`: ``off`` (or 1) -> 1, ``auto`` -> "auto", ``K`` -> K."""
    value = text.strip().lower()
    if value in ("off", "auto"):
        return 1 if value == "off" else "auto"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise FuseChoiceError(f"--fuse {text!r}: give auto, off or a group size such as 4")
