"""Build a run store the size a lab will have, without training, to time `repro report`,
`repro status` and `repro export` on it (benchmarks/report-scale-2026-11-27.md).

Every experiment of every study in studies/*.yaml, 5 seeds each, with full-length curves
(the recipe's epochs, or its iterations in 391-iteration epochs: 164 for 64k iterations),
written by tests/fake_runs.py in the store's own format; then what a real store also holds:
paused, failed, interrupted, diverged, stale and override runs, damaged ones, and the
evaluations of the released checkpoints. Seeded, so two builds are the same store.

    python benchmarks/big_store.py OUT [--seeds 5]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_runs import fake_evaluation, fake_run  # noqa: E402

from harness import store  # noqa: E402
from harness.plan import nominal_batches_per_epoch  # noqa: E402
from harness.studyfile import load_study  # noqa: E402

# Every how-manyth run of the store is left in each of these states (the rest complete);
# every 3rd, 4th and 5th experiment also has a stale run, an override run and a damaged run.
ODD_STATES = {7: "paused", 11: "failed", 13: "interrupted", 17: "diverged"}


def full_epochs(recipe) -> tuple[int, int]:
    """(epochs, iterations per epoch) of a whole run of the recipe."""
    per_epoch = nominal_batches_per_epoch(recipe)
    epochs = recipe.epochs or math.ceil(recipe.iterations / per_epoch)
    return epochs, per_epoch


def build(out: Path, seeds: int = 5) -> dict[str, int]:
    rng = random.Random(20261127)
    counts: dict[str, int] = {}
    n = k = 0  # runs, experiments
    for path in sorted((ROOT / "studies").glob("*.yaml")):
        study = load_study(path)
        for exp in study.experiments:
            k += 1
            epochs, per_epoch = full_epochs(exp.recipe)
            for seed in range(seeds):
                n += 1
                status = next((s for k, s in ODD_STATES.items() if n % k == 0), "complete")
                fake_run(out, study, exp.name, seed, status=status, epochs=epochs,
                         iterations_per_epoch=per_epoch, test_error=rng.uniform(5, 12),
                         train_loss=rng.uniform(0.01, 0.2), train_error=rng.uniform(0, 2),
                         sec_per_epoch=rng.uniform(8, 40))  # fmt: skip
                counts[status] = counts.get(status, 0) + 1
            # A run of an older config and an override run beside the five seeds.
            if k % 3 == 0:
                fake_run(out, study, exp.name, seeds, stale=True, epochs=epochs,
                         iterations_per_epoch=per_epoch)  # fmt: skip
                counts["stale"] = counts.get("stale", 0) + 1
            if k % 4 == 0:
                fake_run(out, study, exp.name, 0, label="lr0.05", epochs=epochs,
                         iterations_per_epoch=per_epoch)  # fmt: skip
                counts["override"] = counts.get("override", 0) + 1
            if k % 5 == 0:  # damaged: a torn last line of its curves
                run = fake_run(out, study, exp.name, seeds + 1, epochs=epochs,
                               iterations_per_epoch=per_epoch)  # fmt: skip
                with (run / store.METRICS).open("a") as f:
                    f.write('{"epoch": ')
                counts["damaged"] = counts.get("damaged", 0) + 1
        for c in study.checkpoints:
            fake_evaluation(out, study, c.name)
            counts["evaluation"] = counts.get("evaluation", 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the store to write (must not exist)")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: give a new folder, so no store is mixed with this one")
    counts = build(args.out, args.seeds)
    runs = sum(v for k, v in counts.items() if k != "evaluation")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out}: {runs} runs ({', '.join(f'{v} {k}' for k, v in counts.items())}), "
          f"{size / 2**20:.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
