"""The `repro` command: parses arguments, calls one function, prints. No logic lives here."""

from __future__ import annotations

import json
import sys

import click

from harness import describe
from harness.studyfile import StudyError, load_study


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
