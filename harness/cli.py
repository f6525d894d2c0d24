"""The `repro` command: parses arguments, calls one function, prints. No logic lives here."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import click

# Nothing here imports torch at module level: arguments and paths are checked first, and a
# mistake fails in a fraction of a second instead of after torch's import.
from harness.arguments import ExistingFile, Folder, FuseWidths, GpuCount, OutputFile
from harness.choices import BENCH_MODELS as DEFAULT_BENCH_MODELS
from harness.choices import (
    COMPILE_MODES,
    EXECUTORS,
    MAX_BATCH_SIZE,
    PIPELINES,
    PRECISIONS,
    RUNS_PER_GPU,
    FuseChoiceError,
    parse_fuse,
)
from harness.plural import plural

OUTPUT_FILE = OutputFile(path_type=Path)


RESULTS_OPTION = click.option(
    "--results",
    type=Folder(
        "give --results the directory that holds (or will hold) the run store (by "
        "default results/ in the current directory)",
        store=True,
    ),
    default=Path("results"),
    show_default=True,
    help="Root of the run store.",
)


def device_option(work: str = "train"):
    """``--device``; ``work`` says what happens there (`repro evaluate` trains nothing)."""
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help=f"Where to {work} (auto: CUDA when torch sees a GPU).",
    )


# Options shared by several commands.
DEVICE_OPTION = device_option()
DATA_DIR = Folder("give --data-dir the directory that holds cifar-10-batches-py/", data=True)
DATA_DIR_OPTION = click.option(
    "--data-dir",
    type=DATA_DIR,
    help="Directory holding cifar-10-batches-py/ (an error if it does not); else "
    "$REPRO_DATA_DIR, else the per-user cache, downloading there when online.",
)
COMPILE_OPTION = click.option(
    "--compile/--no-compile",
    "compile_",
    default=None,
    help="torch.compile the model (default: on for the fast path on CUDA; a failing "
    "compilation falls back to eager and is recorded).",
)
COMPILE_MODE_OPTION = click.option(
    "--compile-mode",
    type=click.Choice(COMPILE_MODES),
    help="torch.compile mode. Default: reduce-overhead (CUDA graphs) on CUDA, except for "
    "fused groups (--fuse), whose step under CUDA graphs is not yet checked on a GPU; "
    "default on the CPU.",
)
WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(0, 64),
    help="DataLoader workers of the canonical pipeline (default: min(4, CPU cores)).",
)


def fail(message: str, code: int = 2) -> None:
    """A user-facing error: the message, no traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def exit_status(tally: Counter) -> int:
    """Of `repro run` and `repro queue`, from how their runs ended."""
    if tally["interrupted"]:
        return 130
    if tally["refused"]:
        return 2  # the request would have mixed executions in a run: the message says why
    return 1 if tally["failed"] else 0


def writable_or_fail(*outputs: tuple[Path | None, str], folder: str = "") -> None:
    """Each (path, option) given can be written, before any work; ``folder``: the option whose
    path is a directory."""
    from harness.outputs import OutputError, ensure_can_write

    for path, option in outputs:
        if path is not None:
            try:
                ensure_can_write(path, option, folder=option == folder)
            except OutputError as exc:
                fail(str(exc))


def studies_or_fail(files, nothing: str) -> list:
    """The studies, or each file's problems and exit 2; ``nothing`` says what the command did
    not do (no default: `repro status` said "nothing was run", which it never does)."""
    from harness.studyfile import StudyError, load_studies

    try:
        return load_studies(files)
    except StudyError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        bad = len({problem.file for problem in exc.problems})
        fail(f"fix the {'study file' if bad == 1 else f'{bad} study files'} above; {nothing}")


class _Commands(click.Group):
    """The commands, stopped by Ctrl-C with exit status 130 and one line, as a shell's
    commands are; not click's "Aborted!" with status 1. This covers what happens before a
    command takes the stop signals itself (importing torch, loading the data, the study),
    and SIGTERM and a hang-up there too (stops_at_startup): they end it as they would later,
    with 130, not silently by the signal."""

    def invoke(self, ctx: click.Context):
        from harness.stop_signals import STOPPED_EXIT, stop_name, stops_at_startup

        try:
            with stops_at_startup():
                return super().invoke(ctx)
        except KeyboardInterrupt as stop:
            click.echo(f"\nstopped ({stop_name(stop)})", err=True)
            sys.exit(STOPPED_EXIT)
        except OSError as exc:
            # A full disk or a folder that cannot be written stops any command that writes the
            # store (run, evaluate, import), wherever the write was, with what to do; the
            # store keeps what it held (harness.store.CannotWrite); so does a folder of the
            # store that cannot be listed, for any command that reads it (CannotRead).
            # (Looked up, not imported: the store module imports torch, and only it raises.)
            store = sys.modules.get("harness.store")
            if store is None or not isinstance(exc, (store.CannotWrite, store.CannotRead)):
                raise
            fail(str(exc), 1)


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="repro")
def main() -> None:
    """Reproduce published CIFAR-10 residual-network results, with evidence.

    \b
    Typical session:
      repro validate studies/degradation.yaml   check a study before spending GPU time
      repro run studies/degradation.yaml        train every experiment x seed of it
      repro status studies/degradation.yaml     where each run stands
      repro evaluate studies/checkpoints.yaml   judge released weights: no training
      repro report --out report.html            paper versus reproduction, as one page
    Also: repro models (the zoo), repro bench (speed), repro compare (nightly check),
    repro queue (the evidence queue, for short GPU slots), repro export / repro import
    (a study's runs as one archive that travels between machines).
    """


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def models(as_json: bool) -> None:
    """List the named models with their parameter counts.

    \b
    Names follow a grammar, so models not listed work too:
      plain<D>             plain net (no shortcuts), e.g. plain56
      resnet<D>[a|b|c]     ResNet with shortcut option A (default), B or C, e.g. resnet56b
      preresnet<D>[a|b|c]  pre-activation ResNet, option B by default, e.g. preresnet110
      <name>-bottleneck    bottleneck units (depth 9n+2), e.g. resnet110-bottleneck
      wrn-<D>-<K>          Wide ResNet of depth D (6n+4) and width K, e.g. wrn-16-4
    A study may also write any architecture as a spec; see studies/*.yaml.
    """
    from harness import describe

    if as_json:
        click.echo(json.dumps(describe.catalogue_json(), indent=2))
    else:
        click.echo(describe.catalogue_table())


@main.command()
@click.argument("files", nargs=-1, required=True, type=ExistingFile())
def validate(files: tuple[str, ...]) -> None:
    """Check study files (and evidence queues) without training anything.

    Prints a one-screen summary of each valid study (experiments, runs, claims) and every
    problem of each invalid one, with the file, line, field path, what was given and what is
    allowed. A queue file (`items:`) is checked as a queue, with the studies it names.
    Exits with status 1 if any file has a problem, 2 when a file named does not exist or is
    a directory.
    """
    from harness import describe
    from harness.queue import QueueError, load_queue
    from harness.queue import summary as queue_summary
    from harness.studyfile import (
        StudyError,
        load_study,
        looks_like_queue,
        name_clash,
        study_warnings,
    )

    failed, seen = 0, {}
    for path in files:
        if looks_like_queue(path):
            try:
                click.echo(queue_summary(load_queue(path)) + "\n")
            except QueueError as exc:
                failed += 1
                click.echo(f"{exc}\n", err=True)
            continue
        try:
            study = load_study(path)
            if clash := name_clash(path, study, seen):
                raise StudyError([clash])
        except StudyError as exc:
            failed += 1
            click.echo(f"{path}: {plural(exc.count, 'problem')}", err=True)
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            click.echo("", err=True)
            continue
        click.echo(describe.study_summary(study, path))
        for warning in study_warnings(path, study):
            click.echo(str(warning))
        click.echo("")
    if failed:
        click.echo(f"{failed} of {plural(len(files), 'file')} invalid", err=True)
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=ExistingFile())
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="EXPERIMENT",
    help="Run only this experiment (repeatable).",
)
@click.option(
    "--seeds",
    type=click.IntRange(1, 100),
    help="Seeds per experiment (0..N-1), instead of what the study says.",
)
@DEVICE_OPTION
@click.option(
    "--epochs",
    type=click.IntRange(1),
    help="Quick trial: the recipe squeezed into N epochs (warm-up and milestones scaled, "
    "counted in iterations where they miss whole epochs; said at the start). Stored apart; "
    "never counts as a reproduction.",
)
@click.option(
    "--subset",
    type=click.IntRange(1),
    metavar="N",
    help="Quick trial: train on N images. Stored apart; never counts as a reproduction.",
)
@click.option(
    "--smoke",
    is_flag=True,
    help="Every experiment for a few steps on a small "
    "subset, through the same code path. Stored apart.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Redo runs that already ended (the old ones are moved to .superseded/, not deleted), "
    "and train runs that would adopt a complete twin of another study.",
)
@click.option(
    "--supersede",
    is_flag=True,
    help="Train over runs of the same study name that another study file made and still plans "
    "(a copy that kept the original's `name:`); they are moved to .superseded/, not deleted. "
    "Without it, `repro run` refuses such runs before training anything.",
)
@RESULTS_OPTION
@DATA_DIR_OPTION
@click.option("--quiet", is_flag=True, help="No progress bars: one line per run, for logs.")
@click.option(
    "--pipeline",
    type=click.Choice(PIPELINES),
    default="fast",
    show_default=True,
    help="fast: data and augmentation on the device (bf16, channels_last and "
    "torch.compile on CUDA); canonical: torchvision transforms in DataLoader "
    "workers, fp32, eager (the baseline).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="auto: bf16 autocast for the fast path on CUDA, fp32 otherwise.",
)
@COMPILE_OPTION
@COMPILE_MODE_OPTION
@WORKERS_OPTION
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="local: this machine; slurm: one job-array task per pending run, via "
    "submitit (returns at once); submitit-local: the Slurm path on this machine.",
)
@click.option(
    "--time-budget",
    metavar="DURATION",
    help="Stop in time: train until the next epoch would not fit (90s, 8m, 1h30m), then "
    "pause the run at its last epoch and exit 0; the same command resumes. Under Slurm, per job.",
)
@click.option(
    "--deadline",
    metavar="TIME",
    help="Like --time-budget, up to a clock time (14:30) or an ISO date and time.",
)
@click.option(
    "--fuse",
    default="off",
    show_default=True,
    metavar="auto|off|K",
    help="Train compatible runs (same architecture, batch size and length: seeds of an "
    "experiment, experiments differing in rate or normalisation) as one fused network of up "
    "to K members (auto: on a GPU as many as fit, at most 8; none on a CPU). Each run is "
    "stored as if trained alone; its sec/epoch is the group's. Fast pipeline; with workers or "
    "Slurm, a group is one job.",
)
@click.option(
    "--gpus",
    type=GpuCount(),
    help="local: GPUs to use, N or 'all' (one run per GPU at a time; needs CUDA).",
)
@click.option(
    "--runs-per-gpu",
    type=click.IntRange(*RUNS_PER_GPU),
    help="local: runs sharing one GPU (or running side by side on the CPU).",
)
@click.option("--partition", help="slurm: partition.")
@click.option("--time-min", type=click.IntRange(1), help="slurm: time limit per job, minutes.")
@click.option("--gpus-per-task", type=click.IntRange(0, 16), help="slurm: GPUs per run.")
@click.option("--cpus-per-task", type=click.IntRange(1, 256), help="slurm: CPUs per run.")
@click.option("--mem-gb", type=click.IntRange(1), help="slurm: memory per run.")
@click.option("--constraint", help="slurm: node constraint (e.g. 'a100|h100').")
@click.option("--array-parallelism", type=click.IntRange(1), help="slurm: runs at once.")
@click.option("--account", help="slurm: account.")
@click.option("--qos", help="slurm: quality of service.")
def run(
    files,
    only,
    seeds,
    device,
    epochs,
    subset,
    smoke,
    force,
    supersede,
    results,
    data_dir,
    quiet,
    pipeline,
    precision,
    compile_,
    compile_mode,
    workers,
    executor,
    time_budget,
    deadline,
    fuse,
    gpus,
    runs_per_gpu,
    **slurm_flags,
):
    """Train every experiment x seed of the study files.

    Finished runs are skipped, interrupted ones resume from their last epoch, and runs whose
    study entry changed are moved aside and trained again. A run whose twin in another study
    (the same model, recipe and seed, complete, in the same precision and pipeline on the same
    data) did its training adopts a copy of it instead of training. Results go to
    RESULTS/<study>/<experiment>/seed-<k>/. Executor settings come from the flags, else from
    the study's `executor:` block. Exit status: 0 when every run ended (complete or diverged),
    was submitted, or was paused or left pending by the time budget; 1 when a run failed, 2 for
    a problem with the request (among them resuming a run under another precision or pipeline
    than it began with), 130 when interrupted.
    """
    from harness.budget import BudgetError, parse_deadline, parse_duration
    from harness.describe import trial_lines
    from harness.executors import local_slots, run_parallel, submit
    from harness.only import OnlyError
    from harness.plan import Overrides, PlanError
    from harness.runner import (
        RunError,
        RunOptions,
        options_by_study,
        refuse_displacing_any,
        run_study,
    )
    from harness.schema import LocalSettings, SlurmSettings
    from harness.studyfile import study_warnings

    if time_budget and deadline:
        fail("give --time-budget or --deadline, not both")
    try:
        fuse_limit = parse_fuse(fuse)
    except FuseChoiceError as exc:
        fail(str(exc))
    try:
        budget_s = parse_duration(time_budget) if time_budget else None
        until = parse_deadline(deadline) if deadline else None
    except BudgetError as exc:
        fail(str(exc))
    if budget_s is not None and executor == "local":
        until = time.time() + budget_s  # the slot starts now, for every study given
        budget_s = None

    options = RunOptions(
        results=results,
        data_dir=data_dir,
        device=device,
        force=force,
        supersede=supersede,
        quiet=quiet,
        overrides=Overrides(only=only, seeds=seeds, epochs=epochs, subset=subset, smoke=smoke),
        pipeline=pipeline,
        precision=precision,
        compile=compile_,
        compile_mode=compile_mode,
        workers=workers,
        deadline=until,
        time_budget=budget_s,
        fuse=fuse_limit,
    )
    tally: Counter[str] = Counter()
    started, every = time.time(), []
    studies = studies_or_fail(files, "nothing was run")
    try:  # --only selects among all the studies given; then every file's runs are checked
        each = options_by_study(studies, options)
        refuse_displacing_any([(s, f, o) for s, f, o in zip(studies, files, each, strict=True)
                               if o is not None])  # fmt: skip
    except (RunError, PlanError, OnlyError) as exc:
        fail(str(exc))
    for study, path, opts in zip(studies, files, each, strict=True):
        for warning in study_warnings(path, study):
            click.echo(str(warning))
        if not study.experiments:
            released = plural(len(study.checkpoints), "released checkpoint")
            verb = "is" if len(study.checkpoints) == 1 else "are"
            click.echo(f"{study.name}: nothing to train; its {released} {verb} evaluated by "
                       f"`repro evaluate {path}`")  # fmt: skip
            continue
        if opts is None:
            click.echo(f"{study.name}: has none of the experiments --only names; not run")
            continue
        for line in trial_lines(study, opts.overrides):
            click.echo(line)
        try:
            if executor in ("slurm", "submitit-local"):
                base = study.executor.slurm or SlurmSettings()
                given = {k: v for k, v in slurm_flags.items() if v is not None}
                settings = base.model_copy(update=given)
                cluster = "slurm" if executor == "slurm" else "local"
                outcomes = submit(study, path, opts, settings, click.echo, cluster).outcomes
            else:
                local = study.executor.local or LocalSettings()
                count = gpus if gpus is not None else local.gpus
                slots = local_slots(opts, count, runs_per_gpu or local.runs_per_gpu,
                                    given=gpus is not None)  # fmt: skip
                if len(slots) > 1:
                    outcomes = run_parallel(study, path, opts, slots, click.echo)
                else:
                    outcomes = run_study(study, opts, click.echo, study_file=path)
        except (RunError, PlanError, ValueError) as exc:
            fail(str(exc))
        tally.update(o.status for o in outcomes)
        every += outcomes
        if tally["interrupted"]:
            break
    click.echo(", ".join(f"{n} {status}" for status, n in sorted(tally.items())) or "no runs")
    from harness.describe import run_summary, unread_data_note

    if note := unread_data_note(every, data_dir):
        click.echo(note)
    click.echo(run_summary(every, results, files, time.time() - started))
    if tally["paused"] or tally["pending"]:
        click.echo(f"time budget spent: {plural(tally['paused'], 'run')} paused, "
                   f"{tally['pending']} not started; run the same command again to carry "
                   "on")  # fmt: skip
    sys.exit(exit_status(tally))


@main.command()
@click.argument("files", nargs=-1, required=True, type=ExistingFile())
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="CHECKPOINT",
    help="Evaluate only this checkpoint (repeatable).",
)
@device_option("evaluate")
@RESULTS_OPTION
@DATA_DIR_OPTION
@click.option(
    "--force",
    is_flag=True,
    help="Evaluate again what was already evaluated (the old record goes to .superseded/).",
)
@click.option("--batch-size", type=click.IntRange(1), default=500, show_default=True)
def evaluate(files, only, device, results, data_dir, force, batch_size):
    """Evaluate the released checkpoints of the study files on the CIFAR-10 test set.

    Each checkpoint is fetched into the per-user cache (its SHA-256 checked; offline, the
    message says where to put the file), mapped strictly onto its zoo model by the study's
    layout (every tensor used, every shape equal), evaluated, and stored beside the study's
    trained runs with the data's fingerprint; `repro report` judges its claims. Exit status: 0
    when every checkpoint was evaluated (or already was), 1 when one could not be, 2 for a
    problem with the request.
    """
    from harness.evaluate import (
        NOTHING_TO_EVALUATE,
        EvaluateError,
        EvaluateOptions,
        evaluate_study,
        options_by_study,
    )
    from harness.only import OnlyError
    from harness.store import StoreUnusable

    options = EvaluateOptions(results=results, data_dir=data_dir, device=device, only=only,
                              force=force, batch_size=batch_size)  # fmt: skip
    tally: Counter[str] = Counter()
    studies = list(zip(studies_or_fail(files, "nothing was evaluated"), files, strict=True))
    try:  # --only selects among all the studies given
        each = options_by_study(studies, options)
    except OnlyError as exc:
        fail(str(exc))
    for (study, path), opts in zip(studies, each, strict=True):
        if opts is None:
            click.echo(f"{study.name}: has none of the checkpoints --only names; not evaluated")
            continue
        try:
            outcomes = evaluate_study(study, path, opts, click.echo)
        except (EvaluateError, StoreUnusable) as exc:
            fail(str(exc))
        tally.update(o.status for o in outcomes)
    if not tally:
        fail(NOTHING_TO_EVALUATE)
    click.echo(", ".join(f"{n} {s}" for s, n in sorted(tally.items())))
    sys.exit(1 if tally["failed"] else 0)


@main.command()
@click.option(
    "--out",
    type=OUTPUT_FILE,
    help="Where to write (default: report.html, or claims.csv / claims.json).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "csv", "json"]),
    help="html: the page; csv/json: the claim table as data. Default: from --out's "
    "extension (.html, .csv, .json; none: html); any other extension needs --format.",
)
@RESULTS_OPTION
@click.option(
    "--study",
    "study_files",
    multiple=True,
    type=ExistingFile(),
    help="Report only these study files (repeatable). Default: studies/*.yaml "
    "and the study files the runs in the store came from.",
)
@click.option(
    "--show-unrun",
    is_flag=True,
    help="Show studies with no runs and no evaluations in full (default: one line each).",
)
# As every other command takes them: `repro report mine.yaml` was "unexpected extra argument".
@click.argument("files", nargs=-1, type=ExistingFile())
def report(out, fmt, results, study_files, show_unrun, files):
    """Render paper versus reproduction: verdicts, curves, speeds and provenance.

    FILES are study files to report, as --study names them (both may be given).

    Works on a partial or empty store: a claim with no counted run reads "under way" while
    a run that may count is paused, running or interrupted, and "not yet run" otherwise.
    The page is one self-contained HTML file (no external assets); open it anywhere.
    """
    from harness.outputs import OutputError, report_output
    from harness.report import environment_warning, report_for, write, written_text
    from harness.results import scan, scan_evaluations

    try:
        out, fmt = report_output(out, fmt)
    except OutputError as exc:
        fail(str(exc))
    if not results.is_dir():
        fail(f"{results}: no such results directory (give the store with --results DIR)")
    records = scan(results)
    named = list(dict.fromkeys((*files, *study_files)))
    files = named or default_study_files(
        (r.study, (r.summary or {}).get("study_file")) for r in records
    )
    if not files and not records:  # the default is a checkout's; an installed copy has none
        fail(f"no study files: none given with --study, no studies/*.yaml here and no run in "
             f"{results} names one; name them, e.g. "
             "`repro report --study studies/degradation.yaml`")  # fmt: skip
    evaluations = scan_evaluations(results)
    if not records and not evaluations:
        click.echo(f"note: {results} holds no runs or checkpoint evaluations yet: every "
                   "claim that needs one will read 'not yet run'")  # fmt: skip
    writable_or_fail((out, "--out"))
    # one pass to report every problem before building
    studies = studies_or_fail(files, "nothing was written")
    # The studies and runs already read, not read again; figures only for the page.
    built = report_for([Path(f) for f in files], results, show_unrun=show_unrun,
                       studies=studies, records=records, figures=fmt == "html")  # fmt: skip
    write(built, out, fmt)
    click.echo(written_text(built, out, fmt))
    for line in unreported(records, {s.name for s in studies}, given=bool(named),
                           evaluations=evaluations):  # fmt: skip
        click.echo(f"note: {line}", err=True)
    for warning in filter(None, map(environment_warning, records)):
        click.echo(f"warning: {warning}", err=True)


def unreported(records, names: set[str], *, given: bool, evaluations=()) -> list[str]:
    """A line per study whose runs, or checkpoint evaluations, are in the store but not in
    the report, with why."""
    left = Counter(r.study for r in records if r.study not in names)
    lines = []
    for study, n in sorted(left.items()):
        if given:
            why = "not among the --study files given"
        else:
            named = [(r.summary or {}).get("study_file") for r in records if r.study == study]
            recorded = next((f for f in named if f), None)
            where = f" (the runs name {recorded})" if recorded else ""
            why = f"its study file is not in studies/ and was not found{where}"
        verb = "is" if n == 1 else "are"
        lines.append(f"{plural(n, 'run')} of study {study!r} {verb} not reported: {why}; give "
                     "it with --study FILE")  # fmt: skip
    # An evaluation records no study file: its study is found in studies/ or named, or not.
    left = Counter(e.study for e in evaluations if e.study not in names)
    why = "not among the --study files given" if given else "its study file is not in studies/"
    for study, n in sorted(left.items()):
        verb = "is" if n == 1 else "are"
        lines.append(f"{plural(n, 'checkpoint evaluation')} of study {study!r} {verb} not "
                     f"reported: {why}; give it with --study FILE")  # fmt: skip
    return lines


def default_study_files(recorded) -> list[str]:
    """studies/*.yaml here, plus the files recorded by runs whose study is not among them;
    ``recorded``: (study, the study file its run's summary names, or None) per run."""
    from harness.studyfile import StudyError, load_study

    files = sorted(str(p) for p in Path("studies").glob("*.yaml"))
    names = set()
    for f in files:
        with contextlib.suppress(StudyError):  # reported by studies_or_fail afterwards
            names.add(load_study(f).name)
    for study, study_file in recorded:
        if study not in names and study_file and Path(study_file).exists():
            files.append(study_file)
            names.add(study)
    return files


@main.command()
@click.option(
    "--models",
    default=",".join(DEFAULT_BENCH_MODELS),
    show_default=True,
    help="Comma-separated model names.",
)
@click.option(
    "--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=128, show_default=True
)
@click.option(
    "--epochs",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Measured epochs per pipeline (the median is reported).",
)
@click.option(
    "--warmup-epochs",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Epochs run first and not measured (compilation, autotuning).",
)
@click.option(
    "--subset",
    type=click.IntRange(1),
    metavar="N",
    help="Images per epoch (default: the whole training set). Small on a CPU.",
)
@DEVICE_OPTION
@DATA_DIR_OPTION
@click.option(
    "--synthetic",
    is_flag=True,
    help="Random images of CIFAR-10's shape instead of "
    "the data set (speed does not depend on the pixels).",
)
@WORKERS_OPTION
@COMPILE_OPTION
@click.option(
    "--compile-mode",
    "compile_modes",
    metavar="MODE[,MODE...]",
    help="torch.compile mode(s) for the fast path, one row each: "
    f"{', '.join(COMPILE_MODES)} (reduce-overhead uses CUDA graphs). --profile uses the first. "
    "Default: the mode `repro run` trains in on the device (reduce-overhead on CUDA).",
)
@click.option(
    "--json",
    "json_out",
    type=OUTPUT_FILE,
    help="Write the raw figures, device, versions and date as JSON.",
)
@click.option(
    "--markdown",
    "md_out",
    type=OUTPUT_FILE,
    help="Write a markdown table with device, versions, date and command.",
)
@click.option(
    "--fuse",
    type=FuseWidths(),
    default=None,
    help="Also time K runs of each model fused into one network, one after another and as "
    "K concurrent processes, for each K listed (e.g. 1,2,4,6,8): aggregate images/s.",
)
@click.option(
    "--fuse-concurrent/--no-fuse-concurrent",
    default=True,
    show_default=True,
    help="With --fuse: also time K concurrent processes (off: fused and one after another).",
)
@click.option(
    "--profile",
    "profile_dir",
    type=Folder("give --profile a directory for the profiler's traces"),
    help="Also profile fast-path training steps of each model with torch.profiler into DIR, "
    "as soon as its first fast row is measured (a bench stopped later keeps the profile).",
)
def bench(
    models,
    batch_size,
    epochs,
    warmup_epochs,
    subset,
    device,
    data_dir,
    synthetic,
    workers,
    compile_,
    compile_modes,
    fuse,
    fuse_concurrent,
    json_out,
    md_out,
    profile_dir,
):
    """Seconds per epoch: the canonical PyTorch pipeline against the fast path.

    Both run on the same device in one invocation, after warm-up, several epochs each; the
    table gives the median, images/s, achieved TFLOP/s (6 x forward MACs per image) and the
    speed-up. Runs on a CPU too (use a small --subset). With --fuse, a second table gives the
    aggregate images/s of K runs fused, one after another and as concurrent processes.
    """
    from harness.bench import (
        BenchError,
        markdown,
        run_bench,
        synthetic_cifar,
        table,
    )
    from harness.data import DataError, load_cached, locate
    from harness.runner import RunError, resolve_device
    from harness.store import write_text
    from harness.zoo import UnknownModelError, spec_from_name

    writable_or_fail((json_out, "--json"), (md_out, "--markdown"), (profile_dir, "--profile"),
                     folder="--profile")  # fmt: skip
    names = tuple(m.strip() for m in models.split(",") if m.strip())
    modes = tuple(dict.fromkeys(m.strip() for m in (compile_modes or "").split(",") if m.strip()))
    unknown = [m for m in modes if m not in COMPILE_MODES]
    if unknown or (compile_modes is not None and not modes):
        fail(f"--compile-mode {compile_modes!r}: modes are {', '.join(COMPILE_MODES)}")
    try:
        for name in names:
            spec_from_name(name)
        dev = resolve_device(device)
        data = synthetic_cifar() if synthetic else load_cached(locate(data_dir))
    except (UnknownModelError, RunError, DataError) as exc:
        fail(
            f"{exc}\n(--synthetic benchmarks without the data set)"
            if isinstance(exc, DataError)
            else str(exc)
        )
    command = shlex.join(["repro", *sys.argv[1:]])

    def write_files(report) -> None:  # after every row, so a stopped bench keeps its rows
        if json_out:
            write_text(json_out, json.dumps({**report.to_json(), "command": command}, indent=2))
        if md_out:
            write_text(md_out, markdown(report, command))

    try:
        report = run_bench(
            data,
            dev,
            models=names,
            batch_size=batch_size,
            epochs=epochs,
            warmup=warmup_epochs,
            subset=subset,
            workers=workers,
            compile=compile_,
            compile_modes=modes or None,  # none given: as `repro run` trains on the device
            fuse=fuse or (),
            fuse_concurrent=fuse_concurrent,
            echo=click.echo,
            on_row=write_files,
            profile_dir=profile_dir,
        )
    except BenchError as exc:
        fail(str(exc))
    click.echo(table(report))
    for path in (json_out, md_out):
        if path:
            click.echo(f"wrote {path}")


@main.command()
@click.argument("files", nargs=-1, type=ExistingFile())
@RESULTS_OPTION
@click.option(
    "--queue",
    "queue_file",
    type=ExistingFile("queue file", "queue*.yaml"),
    help="The evidence queue to show (default: queue.yaml when present).",
)
@click.option(
    "--check-data/--no-check-data",
    default=None,
    help="Check each paused, interrupted or failed run against the data `repro run` would use "
    "here (--data-dir, else $REPRO_DATA_DIR, else the per-user cache; never downloaded): would "
    "it resume or refuse the run? Default: checked when the data is here (it reads the whole "
    "data set); --check-data also says when it is not.",
)
@click.option(
    "--data-dir",
    type=DATA_DIR,
    help="The directory holding cifar-10-batches-py/ to check against, as `repro run --data-dir`.",
)
def status(files, results, queue_file, check_data, data_dir):
    """Where every run of the studies stands: pending, queued, running (epoch), interrupted,
    paused (by a time budget), complete, diverged or failed (with the error and the tail of
    its log), and the data each run to resume began on; then where the evidence queue stands.

    Reads the store and, for submitted runs, asks the scheduler. Default: studies/*.yaml
    and the study files the runs in the store came from.
    """
    from harness.queue import QueueError, load_queue, standing
    from harness.queue import render as render_queue
    from harness.results import recorded_study_files
    from harness.status import (
        checkpoint_lines,
        data_check,
        leftover_notes,
        missing_store_note,
        render,
        study_status,
    )

    # As `repro report` finds them: outside a checkout, a store's runs name their studies.
    files = list(files) or default_study_files(recorded_study_files(Path(results)))
    queue_file = queue_file or ("queue.yaml" if Path("queue.yaml").exists() else None)
    if not files:
        message = (f"no study files: none given, no studies/*.yaml here and no run in "
                   f"{results} names one; name them, e.g. `repro status "
                   "studies/degradation.yaml`")  # fmt: skip
        if not queue_file:
            fail(message)
        click.echo(f"note: {message}", err=True)
    studies = studies_or_fail(files, "nothing was shown")
    if note := missing_store_note(Path(results)):
        click.echo(note, err=True)
    check = data_check(check_data, data_dir)
    for study, path in zip(studies, files, strict=True):
        for note in leftover_notes(study, results):
            click.echo(note, err=True)
        if study.experiments:
            click.echo(render(study, study_status(study, results, check, path)))
        for line in checkpoint_lines(study, results):
            click.echo(line)
    if check is not None and check.note:
        click.echo(check.note, err=True)
    if queue_file:
        try:
            q = load_queue(queue_file)
        except QueueError as exc:
            fail(str(exc))
        click.echo(render_queue(q, standing(q, results)))


@main.command()
@click.argument(
    "queue_file",
    default="queue.yaml",
    type=ExistingFile("queue file", "queue*.yaml", must_exist=False),
)
@click.option("--time-budget", metavar="DURATION", help="Stop in time (90s, 8m, 1h30m): runs "
              "whose next epoch would not fit are paused, later items wait.")  # fmt: skip
@click.option("--items", type=click.IntRange(1), help="Train at most this many unfinished items.")
@DEVICE_OPTION
@RESULTS_OPTION
@DATA_DIR_OPTION
@click.option("--quiet", is_flag=True, help="No progress bars: one line per run, for logs.")
@COMPILE_OPTION
@COMPILE_MODE_OPTION
@click.option(
    "--fuse",
    default="off",
    show_default=True,
    metavar="auto|off|K",
    help="Train compatible runs of an item as one fused network, as `repro run --fuse` does, "
    "for the items that do not say `fuse:` themselves (an item's own setting wins). Off by "
    "default until a GPU bench shows fusion pays there.",
)
@click.option(
    "--supersede",
    is_flag=True,
    help="Train over runs of an item's study name that another study file made and still "
    "plans (a copy that kept the original's `name:`), as `repro run --supersede` does; they are "
    "moved to .superseded/, not deleted. Without it, `repro queue` refuses such runs before "
    "training anything.",
)
def queue(queue_file, time_budget, items, device, results, data_dir, quiet, compile_,
          compile_mode, fuse, supersede):  # fmt: skip
    """Train the next items of the evidence queue (default: queue.yaml), in order.

    Each item is a study's experiments x seeds, trained K runs to a GPU as the item says.
    With --time-budget a slot of any length makes progress: unfinished runs pause at an epoch
    and the same command in the next slot resumes them. A run whose twin in another study
    (same model, recipe and seed) is complete adopts that training instead of training
    again. See `repro status` for the standing.
    """
    from harness.budget import BudgetError, parse_duration
    from harness.queue import QueueError, load_queue, run_queue
    from harness.runner import RunError, RunOptions

    try:
        fuse_limit = parse_fuse(fuse)
    except FuseChoiceError as exc:
        fail(str(exc))
    if queue_file == "queue.yaml" and not Path(queue_file).exists():  # a checkout's default
        fail("queue.yaml: no such queue file here (the default); name the evidence queue: "
             "`repro queue PATH`")  # fmt: skip
    try:
        q = load_queue(queue_file)
        budget = parse_duration(time_budget) if time_budget else None
    except (QueueError, BudgetError) as exc:
        fail(str(exc))
    options = RunOptions(results=results, data_dir=data_dir, device=device, quiet=quiet,
                         compile=compile_, compile_mode=compile_mode, fuse=fuse_limit,
                         supersede=supersede,
                         deadline=time.time() + budget if budget else None)  # fmt: skip
    try:
        outcomes = run_queue(q, options, click.echo, limit=items)
    except RunError as exc:
        fail(str(exc))
    tally = Counter(o.status for o in outcomes)
    click.echo(", ".join(f"{n} {status}" for status, n in sorted(tally.items())) or "no runs")
    sys.exit(exit_status(tally))


# Extensions that name another kind of archive than the gzipped tar `repro export` writes: a
# file so named would be opened by the wrong tool (a .zip an unzip cannot read).
OTHER_ARCHIVES = {".zip": "a zip file", ".tar": "an uncompressed tar", ".xz": "an xz file",
                  ".bz2": "a bzip2 file", ".zst": "a zstd file", ".7z": "a 7-Zip file"}  # fmt: skip


def _other_archive_kind(out: Path) -> str | None:
    return OTHER_ARCHIVES.get(out.suffix.lower())


def _archive_stem(out: Path) -> str:
    name = out.name
    for suffix in (".tar.xz", ".tar.bz2", ".tar.zst", out.suffix):
        if name.lower().endswith(suffix):
            return str(out.with_name(name[: -len(suffix)]))
    return str(out)


@main.command()
@click.argument("study_file", type=ExistingFile())
@click.option(
    "--out",
    type=OUTPUT_FILE,
    required=True,
    help="The archive to write (.tar.gz).",
)
@click.option(
    "--checkpoints/--no-checkpoints",
    default=True,
    show_default=True,
    help="Include the latest checkpoint of each unfinished run, so it can resume elsewhere.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing --out archive (without it, one is refused: it may be the only "
    "copy of another machine's runs).",
)
@RESULTS_OPTION
def export(study_file, out, checkpoints, force, results):
    """Pack every run of a study into one archive that travels (with SHA-256 checksums).

    Configs, environments, metrics and summaries of all its runs, the checkpoints of
    unfinished ones, and the records of its released checkpoints' evaluations; `repro import`
    merges it into another store.
    """
    from harness.describe import exported_text
    from harness.store import MISPLACED
    from harness.transfer import EVALUATED, TransferError, export_study

    (study,) = studies_or_fail([study_file], "nothing was written")
    if (other := _other_archive_kind(out)) is not None:
        fail(f"--out {out}: `repro export` writes a gzipped tar, not {other}; name it "
             f"{_archive_stem(out)}.tar.gz (nothing was written)")  # fmt: skip
    writable_or_fail((out, "--out"))
    try:
        done = export_study(study.name, results, out, checkpoints=checkpoints, replace=force)
    except TransferError as exc:
        fail(str(exc))
    evaluations = sum(r.status == EVALUATED for r in done.runs)
    trained = len(done.runs) - evaluations
    unfinished = sum(r.status not in ("complete", "diverged", EVALUATED) for r in done.runs)
    damaged = [r for r in done.runs if r.status == "damaged"]
    click.echo(exported_text(out, done.bytes, study.name, trained, unfinished, evaluations))
    for r in damaged:
        then = ("rebuilds it from its checkpoint" if "checkpoint.pt" in r.files
                else "trains it again (no checkpoint went with it)")  # fmt: skip
        click.echo(f"  {r.path} goes as damaged: it never counts, and `repro run` where it is "
                   f"imported {then}")  # fmt: skip
    for r in done.runs:
        if r.status == MISPLACED:  # harness.placement
            click.echo(f"  {r.path} goes as misplaced (its records name another folder): "
                       "`repro import` refuses it; move it back where it belongs and export "
                       "again")  # fmt: skip
    for note in done.notes():
        click.echo(f"  {note}")


@main.command(name="import")
@click.argument("archives", nargs=-1, required=True,
                type=ExistingFile("store archive", "*.tar.gz", path_type=Path))  # fmt: skip
@RESULTS_OPTION
def import_(archives, results):
    """Merge archives from `repro export` into the store, run by run.

    Every file is checked against the archive's checksums first. A run is added when missing,
    advanced when the archive has more epochs of it, never replaced by a shorter history, and
    refused when its config differs from the local run's. Exit status 1 when a run was refused,
    2 when an archive cannot be read or trusted (refused whole) or the store cannot be written.
    """
    from harness.transfer import TransferError, import_archive

    refused = 0
    for archive in archives:
        try:
            merged = import_archive(archive, results)
        except TransferError as exc:
            fail(str(exc))
        click.echo(f"{archive}:")
        for text in merged.lines():
            click.echo(f"  {text}")
        refused += len(merged.refused)
    if refused:
        sys.exit(1)


@main.command(hidden=True)
@click.argument("spec")
def worker(spec):
    """Train one run described by SPEC (JSON); used by the executors, not by people."""
    from harness.executors import worker_main

    sys.exit(worker_main(spec))


# `repro compare`'s inputs; a directory given instead lists the tables `repro report` names.
CLAIM_TABLE = ExistingFile("claim table", "claims.*", path_type=Path,
                           hint="a claim table is what `repro report --out claims.json` or "
                                "`--out claims.csv` writes")  # fmt: skip


@main.command()
@click.argument("baseline", type=CLAIM_TABLE)
@click.argument("current", type=CLAIM_TABLE)
def compare(baseline, current):
    """Fail when a claim that held in BASELINE no longer holds in CURRENT.

    Both are claim tables from `repro report --format json|csv`. A claim holds when it is
    reproduced or better than claimed. Claims are matched on what they are about (the
    claim_id column), so a reworded claim is listed as reworded, not lost. Exit status 1 when
    any claim stopped holding (the nightly job's check), 2 when either table cannot be judged
    (not a claim table, cut short, unknown or missing verdicts, one claim with two verdicts),
    0 otherwise.
    """
    from harness.regressions import compare as compare_tables
    from harness.regressions import describe as describe_comparison
    from harness.regressions import read_claims

    try:
        before, now = read_claims(baseline), read_claims(current)
        result = compare_tables(before.frame, now.frame)
    except ValueError as exc:
        fail(str(exc))
    click.echo(describe_comparison(result, [*before.notes, *now.notes]))
    if len(result.lost):
        sys.exit(1)
