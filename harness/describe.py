"""Text for the terminal: the model catalogue and one-screen study summaries."""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.plural import plural
from harness.schema import Claim, Recipe, Study
from harness.sizes import net_size
from harness.zoo import CATALOGUE, ModelSpec, spec_from_name


def parameter_count(spec: ModelSpec, counts: str = "all") -> int:
    """The net's parameters, counted from its spec without building it (harness.sizes), so a
    1.6-billion-parameter WRN-1000-10 counts as fast as ResNet-20; ``counts`` as in
    :func:`harness.zoo.count_parameters`."""
    return net_size(spec).parameters(counts)


@dataclass(frozen=True)
class ModelRow:
    name: str
    params: int
    depth: int
    block: str
    preact: bool
    shortcut: str
    width: int
    dropout: float
    note: str


def catalogue_rows() -> list[ModelRow]:
    rows = []
    for entry in CATALOGUE:
        spec = spec_from_name(entry.name)
        rows.append(
            ModelRow(
                name=entry.name,
                params=parameter_count(spec),
                depth=spec.depth,
                block=spec.block,
                preact=spec.preact,
                shortcut=spec.shortcut,
                width=spec.width,
                dropout=spec.dropout,
                note=entry.note,
            )
        )
    return rows


def catalogue_json() -> list[dict]:
    return [asdict(r) for r in catalogue_rows()]


def catalogue_table() -> str:
    rows = catalogue_rows()
    header = f"{'name':<22} {'params':>12} {'depth':>5}  {'architecture':<50} source"
    lines = [header, "-" * len(header)]
    for r in rows:
        spec = spec_from_name(r.name)
        lines.append(f"{r.name:<22} {r.params:>12,} {r.depth:>5}  {spec.describe():<50} {r.note}")
    lines.append("")
    lines.append(
        "Any name of the grammar works too (resnet<D>[a|b|c], plain<D>, preresnet<D>, "
        "...-bottleneck, wrn-<D>-<K>); see `repro models --help`."
    )
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def recipe_summary(recipe: Recipe) -> str:
    length = f"{recipe.epochs} ep" if recipe.epochs else f"{recipe.iterations // 1000}k it"
    if recipe.iterations and recipe.iterations % 1000:
        length = f"{recipe.iterations} it"
    opt = recipe.optimizer
    sgd = f"lr {opt.lr:g}" + (" nesterov" if opt.nesterov else "") + f" wd {opt.weight_decay:g}"
    if opt.no_weight_decay:
        sgd += f" (not on {', '.join(opt.no_weight_decay)})"
    sched = recipe.schedule
    if sched.kind == "multistep":
        unit = "ep" if sched.unit == "epoch" else "it"
        steps = ",".join(
            f"{m // 1000}k" if unit == "it" and m % 1000 == 0 else str(m) for m in sched.milestones
        )
        sched_text = f"x{sched.gamma:g}@{steps}{unit}"
    else:
        sched_text = sched.kind
    warm = " +warmup" if recipe.warmup else ""
    chosen = ", test at best val epoch" if recipe.reported_epoch == "best_validation" else ""
    return f"{length}, bs {recipe.batch_size}, {sgd}, {sched_text}{warm}{chosen}"


def study_summary(study: Study, path: str) -> str:
    values = [c for c in study.claims if isinstance(c, Claim)]
    orderings = len(study.claims) - len(values)
    runs = sum(study.seeds_of(e) for e in study.experiments)
    counts = f"  {_count(len(study.experiments), 'experiment')}, {_count(runs, 'run')}, "
    if study.checkpoints:
        counts += f"{_count(len(study.checkpoints), 'released checkpoint')}, "
    lines = [
        f"{study.name}  ({path})  valid",
        textwrap.fill(study.description, 100, initial_indent="  ", subsequent_indent="  "),
        f"  sources: {', '.join(study.sources)}",
        counts + f"{_count(len(study.claims), 'claim')} ({len(values)} on values, "
        f"{_count(orderings, 'ordering')})",
    ]
    if study.experiments:
        lines += _experiment_lines(study)
    if study.checkpoints:
        lines += _checkpoint_lines(study)
    if study.experiments:
        lines.append(f"  cost: {cost_estimate(study)}")
    return "\n".join(lines)


def _experiment_lines(study: Study) -> list[str]:
    # At least as wide as the headings, or short names pull the rows out from under them.
    width = max(len("experiment"), *(len(e.name) for e in study.experiments))
    model_width = max(len("model"), *(len(e.model_name or "(spec)") for e in study.experiments))
    lines = [
        f"  {'experiment':<{width}}  {'model':<{model_width}} {'params':>11}  seeds  claims  recipe"
    ]
    for e in study.experiments:
        n_claims = sum(
            1
            for c in study.claims
            if (c.experiment == e.name if isinstance(c, Claim) else e.name in c.experiments)
        )
        lines.append(
            f"  {e.name:<{width}}  {e.model_name or '(spec)':<{model_width}} "
            f"{parameter_count(e.model):>11,}  {study.seeds_of(e):>5}  {n_claims:>6}  "
            f"{recipe_summary(e.recipe)}"
        )
    return lines


def _checkpoint_lines(study: Study) -> list[str]:
    """One line per released checkpoint: what `repro evaluate` would fetch and map."""
    width = max(len("checkpoint"), *(len(c.name) for c in study.checkpoints))
    model_width = max(len("model"), *(len(c.model_name or "(spec)") for c in study.checkpoints))
    lines = [f"  {'checkpoint':<{width}}  {'model':<{model_width}} {'params':>11}  claims  "
             "layout, file"]  # fmt: skip
    for c in study.checkpoints:
        n_claims = sum(1 for k in study.claims if isinstance(k, Claim) and k.checkpoint == c.name)
        transforms = study.layouts[c.layout].transforms
        layout = c.layout + (f" ({', '.join(transforms)})" if transforms else "")
        origin = c.url.rsplit("/", 1)[-1] if c.url else c.path
        lines.append(
            f"  {c.name:<{width}}  {c.model_name or '(spec)':<{model_width}} "
            f"{parameter_count(c.model):>11,}  {n_claims:>6}  {layout}, {origin}"
        )
    return lines


def trial_lines(study: Study, overrides) -> list[str]:
    """What a trial (`repro run --epochs N`, `--smoke`, `--subset`) trains each experiment at,
    said before it starts: its length and its learning rate over it, warm-up and decays
    included, so that a trial is not mistaken for a check of a schedule it did not run."""
    from harness.plan import apply_overrides, trial_shape

    if not overrides.label:
        return []
    shapes: dict[str, list[str]] = {}
    for e in study.experiments:
        if not overrides.only or e.name in overrides.only:
            shapes.setdefault(trial_shape(apply_overrides(e.recipe, overrides)), []).append(e.name)
    head = (f"{study.name}: trial ~{overrides.label} (stored apart, never counts as a "
            "reproduction); its learning rate by iteration:")  # fmt: skip
    return [head] + [f"  {', '.join(names)}: {shape}" for shape, names in shapes.items()]


def run_summary(outcomes: list, results, files: list[str], seconds: float) -> str:
    """What `repro run` did, where it is, and what to type next."""
    not_trained = ("skipped", "busy", "pending", "submitted", "adopted")
    ran = [o for o in outcomes if o.status not in not_trained]
    where = sorted({str(results / o.plan.study) for o in outcomes})
    lines = [f"{_what_happened(outcomes)} in {_duration(seconds)}"
             + _gpu_time([o.plan.directory(results) for o in ran])
             + (f"; results in {', '.join(where)}" if where else "")]  # fmt: skip
    studies = " ".join(f"--study {f}" for f in files)
    lines.append(f"next: repro report {studies} --results {results} --out report.html")
    return "\n".join(lines)


def _gpu_time(run_dirs: list[Path]) -> str:
    """``, 2m00s of GPU time in these runs (NVML, each run's share of its GPU)``, or "" when
    none recorded any: the report's sum (harness.timings.device_time), so that six runs
    sharing one GPU for 12 minutes read as 12 minutes, not 72. A failed or stopped run spent
    GPU time too."""
    from harness import store, timings

    total = timings.DeviceTime()
    for run_dir in run_dirs:
        try:
            history = store.read_jsonl(run_dir / store.METRICS)
            summary = store.read_summary(run_dir)
        except store.DamagedFile:
            continue
        environment, _ = store.environment_or_damage(run_dir)
        total += timings.device_time(history, environment, summary)
    if not total.share and not total.unknown:
        return ""
    unknown = (f"; {_duration(total.unknown)} more of wall time shared with an unrecorded "
               "number of runs, their share unknown" if total.unknown else "")  # fmt: skip
    return (f", {_duration(total.share)} of GPU time in these runs (NVML, each run's share "
            f"of its GPU{unknown})")  # fmt: skip


# How `repro run`'s closing line counts each outcome: "3 runs trained" once counted failed
# runs as trained. A paused run trained epochs in this slot; skipped runs had already ended,
# were busy elsewhere or were left for a later slot. An adopted run is said apart: this
# command made it complete in its study with a twin's training ("1 adopted" above the line
# was followed by "0 runs trained, 1 skipped", as if it were still to do or left alone).
_COUNTED_AS = {
    "complete": "trained", "diverged": "trained", "paused": "trained", "adopted": "adopted",
    "failed": "failed", "interrupted": "interrupted", "refused": "refused",
    "submitted": "submitted",
    "skipped": "skipped", "busy": "skipped", "pending": "skipped",
}  # fmt: skip


def _what_happened(outcomes: list) -> str:
    """``2 runs trained, 1 adopted, 1 failed, 3 skipped``: the runs trained always, the rest
    when any."""
    counts = Counter(_COUNTED_AS.get(o.status, o.status) for o in outcomes)
    order = list(dict.fromkeys([*_COUNTED_AS.values(), *sorted(counts)]))
    rest = [f"{counts[what]} {what}" for what in order if what != "trained" and counts[what]]
    return ", ".join([f"{plural(counts['trained'], 'run')} trained", *rest])


def unread_data_note(outcomes: list, data_dir: Path | None) -> str | None:
    """What `repro run --data-dir DIR` adds when every run had already ended: nothing needed
    the data, so DIR was never read, and the command said nothing of it; a user who meant to
    train again on other data learnt neither why nothing happened nor how to. None where a
    run was trained, resumed or left for later, or no --data-dir was given."""
    if data_dir is None or not outcomes or any(o.status != "skipped" for o in outcomes):
        return None
    return (f"note: nothing was trained, so --data-dir {data_dir} was not read: every run had "
            "already ended (complete or diverged). To train them again, on this data or "
            "other, add --force: the runs in the store are moved to .superseded/, not "
            "deleted.")  # fmt: skip


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m" if hours else (f"{m}m{s:02d}s" if m else f"{s}s")


def cost_estimate(study: Study) -> str:
    """Training FLOPs of every run (6 x forward MACs per image) and the GPU time they would
    take at the whole-GPU rate a GPU slot measured: that of queue.yaml in the current
    directory, the queue `repro status` and `repro queue` take by default. Not one beside
    the package, which an installed copy has not."""
    from harness.plan import plan
    from harness.queue import QueueError, load_queue, training_flops

    flop = sum(training_flops(p) for p in plan(study))
    here = Path("queue.yaml")
    if not here.exists():
        return (f"{_flop(flop)} of training (no {here} here to give a measured GPU rate "
                "to convert it)")  # fmt: skip
    try:
        queue = load_queue(here)
    except QueueError:
        return (f"{_flop(flop)} of training ({here} here has problems, so no measured "
                f"GPU rate converts it: `repro validate {here}` lists them)")  # fmt: skip
    seconds = flop / (queue.rate_tflops * 1e12)
    return (f"{_flop(flop)} of training, {_gpu_cost(seconds)} at the "
            f"{queue.rate_tflops:g} TFLOP/s of whole-GPU training rate measured in a GPU slot "
            "(queue.yaml)")  # fmt: skip


# A small study's cost read "0.0 PFLOP of training, about 0.0 GPU-hours" (ResNet-68's 50
# epochs, some 3 GPU-minutes, too): as if it cost nothing, or could not be worked out.
def _flop(flop: float) -> str:
    """``61.2 PFLOP``, ``2.3 PFLOP``; below a tenth of one, in TFLOP or GFLOP."""
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12)):
        if flop >= scale / 10:
            return f"{flop / scale:,.1f} {unit}"
    return f"{flop / 1e9:,.1f} GFLOP"


def _gpu_cost(seconds: float) -> str:
    """``about 1.2 GPU-hours`` down to a tenth of one; below, ``about 3 GPU-minutes`` and
    ``under a GPU-minute``."""
    if seconds >= 360:
        return f"about {seconds / 3600:,.1f} GPU-hours"
    if seconds >= 90:
        return f"about {seconds / 60:.0f} GPU-minutes"
    return "under a GPU-minute" if seconds < 60 else "about a GPU-minute"


def byte_size(n: int) -> str:
    """``512 bytes``, ``2.9 KiB``, ``561.1 KiB``, ``4.2 GiB``: a small archive read "0.0 MiB",
    as if nothing had been written."""
    if n < 1024:
        return plural(n, "byte")
    kib = n / 1024
    if kib < 1024:
        return f"{kib:.1f} KiB"
    mib = kib / 1024
    return f"{mib:.1f} MiB" if mib < 1024 else f"{mib / 1024:.1f} GiB"


def exported_text(out: Path, nbytes: int, study: str, runs: int, unfinished: int,
                  evaluations: int) -> str:  # fmt: skip
    """`repro export`'s closing line: "wrote a.tar.gz (2.9 KiB) for tiny: 1 run (0 unfinished),
    0 checkpoint evaluations" (it said "1 runs" and "0.0 MiB")."""
    return (
        f"wrote {out} ({byte_size(nbytes)}) for {study}: {plural(runs, 'run')} "
        f"({unfinished} unfinished), {plural(evaluations, 'checkpoint evaluation')}"
    )
