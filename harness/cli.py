"""The `repro` command: parses arguments, calls one function, prints. No logic lives here."""

from __future__ import annotations

import contextlib
import json
import sys
from collections import Counter
from pathlib import Path

import click

from harness import describe
from harness.plan import Overrides, PlanError
from harness.studyfile import StudyError, load_studies, load_study

RESULTS_OPTION = click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Root of the run store.",
)


def fail(message: str, code: int = 2) -> None:
    """A user-facing error: the message, no traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def studies_or_fail(files) -> list:
    try:
        return load_studies(files)
    except StudyError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail("fix the study file(s) above; nothing was run")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="repro")
def main() -> None:
    """Reproduce published CIFAR-10 residual-network results, with evidence.

    \b
    Typical session:
      repro validate studies/degradation.yaml   check a study before spending GPU time
      repro run studies/degradation.yaml        train every experiment x seed of it
      repro report --out report.html            paper versus reproduction, as one page
    """


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def models(as_json: bool) -> None:
    """List the named models with their parameter counts.

    \b
    Names follow a grammar, so models not listed work too:
      plain<D>             plain net (no shortcuts), e.g. plain56
      resnet<D>[a|b|c]     ResNet with shortcut option A (default), B or C, e.g. resnet56b
      preresnet<D>         pre-activation ResNet, e.g. preresnet110
      <name>-bottleneck    bottleneck units (depth 9n+2), e.g. resnet110-bottleneck
      wrn-<D>-<K>          Wide ResNet of depth D (6n+4) and width K, e.g. wrn-16-4
    A study may also write any architecture as a spec; see studies/*.yaml.
    """
    if as_json:
        click.echo(json.dumps(describe.catalogue_json(), indent=2))
    else:
        click.echo(describe.catalogue_table())


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check study files without training anything.

    Prints a one-screen summary of each valid study (experiments, runs, claims) and every
    problem of each invalid one, with the file, line, field path, what was given and what is
    allowed. Exits with status 1 if any file has a problem.
    """
    failed = 0
    for path in files:
        try:
            study = load_study(path)
        except StudyError as exc:
            failed += 1
            click.echo(f"{path}: {len(exc.problems)} problem(s)", err=True)
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            click.echo("", err=True)
            continue
        click.echo(describe.study_summary(study, path))
        click.echo("")
    if failed:
        click.echo(f"{failed} of {len(files)} study file(s) invalid", err=True)
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
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
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to train.",
)
@click.option(
    "--epochs",
    type=click.IntRange(1),
    help="Quick trial: the recipe squeezed into "
    "N epochs (milestones scaled). Stored apart; never counts as a reproduction.",
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
    help="Redo runs that already ended (the old ones are moved to .superseded/, not deleted).",
)
@RESULTS_OPTION
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding cifar-10-batches-py/ (else $REPRO_DATA_DIR, else the "
    "per-user cache, downloading there when online).",
)
@click.option("--quiet", is_flag=True, help="No progress bars: one line per run, for logs.")
def run(files, only, seeds, device, epochs, subset, smoke, force, results, data_dir, quiet):
    """Train every experiment x seed of the study files.

    Finished runs are skipped, interrupted ones resume from their last epoch, and runs whose
    study entry changed are moved aside and trained again. Results go to
    RESULTS/<study>/<experiment>/seed-<k>/. Exit status: 0 when every run ended (complete or
    diverged), 1 when a run failed, 2 for a problem with the request, 130 when interrupted.
    """
    from harness.runner import RunError, RunOptions, run_study

    options = RunOptions(
        results=results,
        data_dir=data_dir,
        device=device,
        force=force,
        quiet=quiet,
        overrides=Overrides(only=only, seeds=seeds, epochs=epochs, subset=subset, smoke=smoke),
    )
    tally: Counter[str] = Counter()
    for study, path in zip(studies_or_fail(files), files, strict=True):
        try:
            outcomes = run_study(study, options, click.echo, study_file=path)
        except (RunError, PlanError) as exc:
            fail(str(exc))
        tally.update(o.status for o in outcomes)
        if tally["interrupted"]:
            break
    click.echo(", ".join(f"{n} {status}" for status, n in sorted(tally.items())) or "no runs")
    if tally["interrupted"]:
        sys.exit(130)
    if tally["failed"]:
        sys.exit(1)


@main.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write (default: report.html, or claims.csv / claims.json).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "csv", "json"]),
    help="html: the page; csv/json: the claim table as data. Default: from --out's "
    "extension, else html.",
)
@RESULTS_OPTION
@click.option(
    "--study",
    "study_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Report only these study files (repeatable). Default: studies/*.yaml "
    "and the study files the runs in the store came from.",
)
def report(out, fmt, results, study_files):
    """Render paper versus reproduction: verdicts, curves, speeds and provenance.

    Works on a partial or empty store: missing runs are shown as not yet run. The page is
    one self-contained HTML file (no external assets); open it anywhere.
    """
    from harness.report import report_for, write
    from harness.results import scan

    fmt = fmt or (
        out.suffix.lstrip(".").lower()
        if out and out.suffix in (".csv", ".json", ".html")
        else "html"
    )
    out = out or Path({"html": "report.html", "csv": "claims.csv", "json": "claims.json"}[fmt])
    files = list(study_files) or default_study_files(scan(results))
    studies_or_fail(files)  # one pass to report every problem before building anything
    built = report_for([Path(f) for f in files], results)
    write(built, out, fmt)
    claims = sum(len(s.all_claims) for s in built.studies)
    click.echo(
        f"wrote {out} ({fmt}: {len(built.studies)} studies, {claims} claims, "
        f"{built.total_runs} runs)"
    )


def default_study_files(records) -> list[str]:
    """studies/*.yaml here, plus the files recorded by runs whose study is not among them."""
    from harness.studyfile import load_study

    files = sorted(str(p) for p in Path("studies").glob("*.yaml"))
    names = set()
    for f in files:
        with contextlib.suppress(StudyError):  # reported by studies_or_fail afterwards
            names.add(load_study(f).name)
    for r in records:
        recorded = (r.summary or {}).get("study_file")
        if r.study not in names and recorded and Path(recorded).exists():
            files.append(recorded)
            names.add(r.study)
    return files
