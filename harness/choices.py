"""The command line's fixed choices, in a module that imports nothing heavy.

`repro` checks its arguments before it imports torch (about two seconds), so a misspelled
option or path fails at once; the modules that act on these choices import them from here.
"""

PIPELINES = ("fast", "canonical")
PRECISIONS = ("auto", "fp32", "bf16", "fp64")  # fp64: exact comparisons (tests, proofs)
FUSE = "auto, off or a group size K"  # `repro run --fuse`
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
EXECUTORS = ("local", "slurm", "submitit-local")
BENCH_MODELS = ("resnet20", "resnet56", "resnet110")  # what `repro bench` times by default
