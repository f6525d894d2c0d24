"""The run table and the experiments: each run as the page lists it (:func:`_run_view`:
its device, execution, data and warnings), and each experiment's architecture and recipe.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from harness import timings
from harness.describe import parameter_count, recipe_summary
from harness.execution import compiled_label
from harness.report.counting import _Classified, _official
from harness.report.views import ClaimRow, ExperimentView, RunView
from harness.results import RunRecord, environment_ignored
from harness.schema import CIFAR10_TEST_IMAGES, CIFAR10_TRAIN_IMAGES, Experiment, Study


def _execution(env: dict, summary: dict | None = None) -> str:
    parts = [env.get("precision", "?")]
    if (summary or {}).get("compile_fallback"):
        parts.append("eager (compilation failed)")
    elif env.get("compile"):
        parts.append(compiled_label(env.get("compile_mode")))
    if env.get("pipeline") == "canonical":
        parts.append("canonical pipeline")
    if env.get("fused"):
        parts.append(f"fused group of {env['fused']} (sec/epoch is the group's)")
    elif (shared := timings.sharing(env, summary)) > 1:
        parts.append(f"GPU shared by {shared} runs")
    return " ".join(parts)


def trained_on(history: list[dict], env: dict) -> tuple[tuple[str, int], ...]:
    """The devices a run trained on, in order, with its epochs on each; a run on one device
    (or from before epochs named theirs) is on its environment's, as the run table says."""
    by_device = timings.epochs_by_device(history)
    if len(by_device) < 2:
        return ((env.get("device_name", "\u2013"), len(history)),)
    return tuple((device, len(epochs)) for device, epochs in by_device.items())


def _per_device(history: list[dict]) -> str:
    """For a run trained on several devices: each one's epochs and median sec/epoch."""
    by_device = timings.epochs_by_device(history)
    if len(by_device) < 2:
        return ""
    parts = []
    for device, epochs in by_device.items():
        timed = [h["train_seconds"] for h in epochs
                 if h.get("full_epoch") and not h.get("first_of_session")]  # fmt: skip
        timed = timed or [h["train_seconds"] for h in epochs]
        parts.append(f"{device}: {len(epochs)} epochs, {statistics.median(timed):.2f} s/epoch")
    return "; ".join(parts)


def _recipe_notes(study: Study) -> list[tuple[str, str]]:
    """The notes of the named recipes that experiments use, once each."""
    used = {e.recipe_name for e in study.experiments}
    return [(name, r.note) for name, r in study.recipes.items() if r.note and name in used]


def _experiment_view(study: Study, exp: Experiment) -> ExperimentView:
    notes = [n for n in (exp.note,) if n]  # the recipe's note is listed once, not per experiment
    if exp.recipe.note and exp.recipe != study.recipes.get(exp.recipe_name or ""):
        notes.append(exp.recipe.note)  # a recipe of its own, changed from the named one
    return ExperimentView(
        name=exp.name,
        model=exp.model_name or "(spec)",
        architecture=f"depth {exp.model.depth}, {exp.model.describe()}",
        params=parameter_count(exp.model),
        seeds=study.seeds_of(exp),
        recipe=(exp.recipe_name + ": " if exp.recipe_name else "") + recipe_summary(exp.recipe),
        notes=notes,
    )


def _in_store(path: Path) -> str:
    """A run's or an evaluation's directory relative to the results directory, which the page
    names once: the store's layout is always <study>/<experiment or checkpoint>/<run>."""
    return "/".join(Path(path).parts[-3:])


def _run_view(
    c: _Classified,
    counted_at_epochs: tuple[int, ...] = (),
    claims: list[ClaimRow] | None = None,
) -> RunView:
    """A run as the run table and the glance show it; ``claims``, the study's claim rows, say
    whether a verdict stands on it or every one that could kept it apart."""
    r = c.record
    key = str(r.path)
    in_verdict = any(key in row.used_runs for row in claims or [])
    apart = sorted({row.kept_apart_runs[key] for row in claims or [] if key in row.kept_apart_runs})
    s = r.summary or {}
    env = r.environment or {}
    total = s.get("epochs_total")
    done = s.get("epochs_done", len(r.history))
    return RunView(
        name=r.name,
        experiment=r.experiment,
        seed=r.seed,
        status=r.status,
        counted=c.counted,
        why_not=c.why_not,
        test_error=s.get("test_error"),
        epochs=f"{done}/{total}" if total else str(done),
        sec_per_epoch=s.get("sec_per_epoch"),
        device=_per_device(r.history) or env.get("device_name", "\u2013"),
        trained_on=trained_on(r.history, env),
        precision=_execution(env, s) if env else "\u2013",
        official_data=_official(r),
        finished=s.get("finished", ""),
        path=_in_store(r.path),
        epochs_done=done if isinstance(done, int) else len(r.history),
        epochs_total=total if isinstance(total, int) else None,
        not_solo=timings.not_solo(r) if env else "",
        counted_at_epochs=counted_at_epochs,
        shared_with=s.get("shared_with") or "",
        warning=environment_warning(r),
        under_way=c.under_way,
        images_note=_images_note(r.data),
        in_verdict=in_verdict,
        kept_apart=apart[0] if apart and not in_verdict else "",
        unread=claims is not None
        and (c.counted or bool(counted_at_epochs))
        and not (in_verdict or apart),
    )


def _images_note(data: dict) -> str:
    """What a run's test error is on where that is not the whole test set (a smoke study's
    1,000 test images, --smoke's 500), and what it trained on where that is a subset beyond
    any validation hold-out: its summary's record of the images it used."""
    test, train = data.get("test_images"), data.get("train_images")
    held = data.get("validation_images") if isinstance(data.get("validation_images"), int) else 0
    part_test = isinstance(test, int) and 0 < test < CIFAR10_TEST_IMAGES
    part_train = isinstance(train, int) and train + held < CIFAR10_TRAIN_IMAGES
    if part_test and part_train:
        return f"on {test:,} test images, trained on {train:,}"
    if part_test:
        return f"on {test:,} test images"
    return f"trained on {train:,} images" if part_train else ""


def environment_warning(r: RunRecord) -> str:
    """What an ignored environment.json costs its run, naming the file, field and value."""
    return environment_ignored(r.environment_damage) if r.environment_damage else ""
