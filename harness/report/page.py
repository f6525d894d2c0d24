"""The report: paper versus reproduction, as plain data, rendered by a jinja2 template.

``build`` matches the runs in the store against the studies (which runs count, which are
stale, diverged, unfinished or made with overrides), and the evaluations of released
checkpoints against the checkpoints the studies declare, applies the verdict rules of
:mod:`harness.verdicts` to both, and returns a :class:`Report` of plain dataclasses.
``render_html`` hands it to ``templates/report.html.j2`` beside this module (package data);
``claims_frame`` gives the same claim table to pandas for CSV or JSON. No HTML is built in
Python.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path

import jinja2
import pandas as pd

from harness import claimtable, timings, verdicts
from harness.environment import git_commit, now_utc
from harness.plural import plural
from harness.report.claims import (
    _ordering_row,
    _params_row,
    _speed_claim_row,
    _speed_rows,
    _value_row,
)
from harness.report.counting import (
    _Classified,
    _classify,
    _copies_trained_on,
    _counted_at_epochs,
    _official,
)
from harness.report.figures import _figures
from harness.report.filters import (
    _brief,
    _code_spans,
    _filled,
    _names,
    _quoted,
    _signed_percent,
    _tolerance_digits,
    _tone,
    _words,
    slug,
)
from harness.report.glance import (
    _evidence,
    _headlines,
    _merged_headlines,
    _ordering_lines,
    _score_entries,
    _scoreboard,
)
from harness.report.provenance import _copy_costs, _provenance
from harness.report.released import (
    _checkpoint_row,
    _checkpoint_view,
    _classify_evaluations,
    _copy_penalty,
    _evaluation_view,
    _layout_view,
)
from harness.report.runs import _experiment_view, _recipe_notes, _run_view
from harness.report.text import _fmt, _source_label
from harness.report.views import ClaimRow, Report, StudyReport
from harness.results import EvaluationRecord, RunRecord
from harness.schema import Claim, OrderingClaim, Study


def build(studies: list[tuple[Study, str]], records: list[RunRecord], results_dir: str,
          evaluations: list[EvaluationRecord] | None = None, *,
          show_unrun: bool = False, figures: bool = True) -> Report:  # fmt: skip
    """The report; ``show_unrun`` shows studies with no runs and no evaluations in full
    (by default each is one line: its claims would all read "not yet run"); ``figures=False``
    leaves the figures out, for the claim table alone (they are most of the work)."""
    by_study: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        by_study[r.study].append(r)
    evaluations = evaluations or []
    evaluated: dict[str, list[EvaluationRecord]] = defaultdict(list)
    for e in evaluations:
        evaluated[e.study].append(e)
    reports = [
        _study_report(study, path, by_study.pop(study.name, []), evaluated.get(study.name, []),
                      figures=figures)
        for study, path in studies
    ]  # fmt: skip
    for r in reports:
        r.folded = not show_unrun and not r.runs and not r.evaluations
    unmatched = [
        _run_view(_Classified(r, False, "its study file is not part of this report", False))
        for rs in by_study.values()
        for r in rs
    ]
    # The page's notices and provenance speak of what it reports: the store's runs and
    # evaluations of other studies are only counted apart (a checkpoints page said "6 runs
    # ... used a copy" of the degradation study's runs, which it does not show).
    reported = {study.name for study, _ in studies}
    shown_records = [r for r in records if r.study in reported]
    shown_evaluations = [e for e in evaluations if e.study in reported]
    nonofficial = [r for r in shown_records if _official(r) is False]
    copies = [e for e in shown_evaluations if e.data.get("official") is False]
    elsewhere = [e for e in evaluations if e.study not in reported]
    provenance = _provenance(shown_records, reports, shown_evaluations)
    used = {f for r in nonofficial for f in _copies_trained_on(r)}
    used |= {e.data.get("dataset_fingerprint") or "" for e in copies}
    copy_costs = _copy_costs(used, provenance.copy_penalty)
    return Report(
        generated=now_utc(),
        harness=git_commit(),
        results_dir=results_dir,
        rules=verdicts.RULES,
        outcomes=verdicts.OUTCOMES,
        studies=reports,
        provenance=provenance,
        nonofficial_runs=len(nonofficial),
        nonofficial_fingerprints=sorted({f[:16] for f in used}),
        total_runs=len(records),
        unmatched_runs=unmatched,
        total_evaluations=len(evaluations),
        nonofficial_evaluations=len(copies),
        unmatched_evaluations=len(elsewhere),
        headlines=_merged_headlines(reports),
        copy_costs=copy_costs,
        evidence=_evidence(reports, copy_costs),
        scoreboard=_scoreboard(
            [r for r in reports if not r.folded], waiting=[r for r in reports if r.folded]
        ),
    )


def _study_report(study: Study, path: str, records: list[RunRecord],
                  evaluations: list[EvaluationRecord], *,
                  figures: bool = True) -> StudyReport:  # fmt: skip
    classified = _classify(study, records)
    judged = _classify_evaluations(study, evaluations)
    by_exp: dict[str, list[_Classified]] = defaultdict(list)
    for c in classified:
        by_exp[c.record.experiment].append(c)
    source_label = {k: _source_label(s) for k, s in study.sources.items()}

    values, params, speed_claims, orderings, checkpoint_claims = [], [], [], [], []
    for i, claim in enumerate(study.claims):
        anchor = f"{study.name}-claim-{i}"
        if isinstance(claim, Claim) and claim.checkpoint is not None:
            bucket = checkpoint_claims
            row = _checkpoint_row(study, path, claim, judged, anchor, source_label)
        elif isinstance(claim, OrderingClaim):
            bucket, row = orderings, _ordering_row(study, claim, by_exp, anchor, source_label)
        elif claim.metric == "params":
            bucket, row = params, _params_row(study, claim, anchor, source_label)
        elif claim.metric == "sec_per_epoch":
            bucket, row = speed_claims, _speed_claim_row(study, claim, by_exp, anchor, source_label)
        else:
            bucket, row = values, _value_row(study, claim, by_exp, anchor, source_label)
        row.claim_id = claimtable.claim_id(claim)  # what `repro compare` matches nights on
        bucket.append(row)
    rows = values + params + speed_claims + orderings + checkpoint_claims
    counts = Counter(r.verdict for r in rows)
    # The headlines and the scoreboard answer "do the published numbers hold?": a claim the
    # harness makes of itself (the smoke test's) stays in its study's list only.
    ours = {f"{study.name}-claim-{i}" for i, c in enumerate(study.claims)
            if not study.sources[c.source].publication}  # fmt: skip

    def published(claim_rows: list[ClaimRow]) -> list[ClaimRow]:
        return [r for r in claim_rows if r.anchor not in ours]

    # Each run's share of its GPU, not its own clock: runs sharing one GPU each record the
    # whole wall time and read the whole GPU's energy, which added up would overstate what the
    # study cost. Both from the runs' epochs, so they count the same runs (running ones too).
    gpu = sum((timings.device_time(c.record.history, c.record.environment, c.record.summary)
               for c in classified), timings.DeviceTime())  # fmt: skip
    # Each run as the run table shows it: the figures draw a run as counted where it does.
    runs = [_run_view(c, _counted_at_epochs(study, c), rows) for c in classified]
    return StudyReport(
        name=study.name,
        description=study.description,
        path=path,
        sources=[{"id": k, **s.model_dump()} for k, s in study.sources.items()],
        counts={o: counts.get(o, 0) for o in verdicts.OUTCOMES if counts.get(o)},
        values=values,
        params=params,
        speed_claims=speed_claims,
        speeds=_speed_rows(study, by_exp),
        orderings=orderings,
        experiments=[_experiment_view(study, e) for e in study.experiments],
        figures=_figures(study, classified, runs) if figures else [],
        runs=runs,
        gpu_seconds=gpu.share or None,
        gpu_unknown_seconds=gpu.unknown,
        gpu_clock_seconds=gpu.clock,
        energy_kj=gpu.energy_j / 1000 or None,
        energy_unknown_kj=gpu.energy_unknown_j / 1000,
        checkpoint_claims=checkpoint_claims,
        checkpoints=[_checkpoint_view(study, c) for c in study.checkpoints],
        layouts=[_layout_view(name, layout) for name, layout in study.layouts.items()],
        evaluations=[_evaluation_view(j) for j in judged],
        copy_penalty=_copy_penalty(judged, study),
        headlines=_headlines(
            *(
                published(rows)
                for rows in (values, orderings, speed_claims, params, checkpoint_claims)
            )
        ),
        score_entries=_score_entries(study, published(values + speed_claims + checkpoint_claims)),
        ordering_lines=_ordering_lines(study, published(orderings)),
        recipe_notes=_recipe_notes(study),
    )


def render_html(report: Report) -> str:
    env = jinja2.Environment(
        # Package data (pyproject.toml), found through the package and not by a path from a
        # checkout, so that a wheel's `repro report` renders too.
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt
    env.filters["signed_percent"] = _signed_percent
    env.filters["quoted"] = _quoted
    env.filters["tone"] = _tone
    env.globals["filled"] = _filled
    env.globals["tolerance_digits"] = _tolerance_digits
    env.filters["brief"] = _brief
    env.filters["slug"] = slug
    env.filters["code_spans"] = _code_spans
    env.filters["words"] = _words
    env.filters["names"] = _names
    env.filters["plural"] = plural  # {{ n|plural("run") }}: "1 run", "2 runs"
    return env.get_template("report.html.j2").render(report=report)


CLAIM_COLUMNS = [
    "study", "kind", "experiment", "source", "where", "metric", "claimed", "claimed_value",
    "claimed_std", "rule", "reproduced_value", "rule_applied", "n", "minimum", "maximum",
    "std", "difference", "tolerance", "interval_low", "interval_high", "verdict", "reason",
    "hardware", "execution", "data", "relative_difference", "severity", claimtable.ID,
]  # fmt: skip


def claims_frame(report: Report) -> pd.DataFrame:
    """The claim table of CSV and JSON; its last column, the same on every row, is how many
    rows it has, so that `repro compare` knows a copy cut between rows (harness.claimtable)."""
    rows = [asdict(c) for s in report.studies for c in s.all_claims]
    frame = (
        pd.DataFrame(rows, columns=CLAIM_COLUMNS) if rows else pd.DataFrame(columns=CLAIM_COLUMNS)
    )
    frame[claimtable.ROWS] = len(frame)
    return frame


def write(report: Report, out: Path, fmt: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        out.write_text(render_html(report), encoding="utf-8")
    elif fmt == "csv":
        claims_frame(report).to_csv(out, index=False)
    else:
        claims_frame(report).to_json(out, orient="records", indent=2)


def written_text(report: Report, out: Path, fmt: str) -> str:
    """What `repro report` says once it wrote ``out``: "wrote x.csv (csv: 1 study, 3 claims,
    2 runs)", each count with its own plural; the runs and checkpoint evaluations are those
    of the studies reported (the CLI notes the others apart)."""
    counts = [plural(len(report.studies), "study", "studies"),
              plural(sum(len(s.all_claims) for s in report.studies), "claim"),
              plural(report.reported_runs, "run")]  # fmt: skip
    if report.reported_evaluations:
        counts.append(plural(report.reported_evaluations, "checkpoint evaluation"))
    return f"wrote {out} ({fmt}: {', '.join(counts)})"


def report_for(study_files: list[Path], results: Path, *, show_unrun: bool = False,
               studies: list[Study] | None = None, records: list[RunRecord] | None = None,
               figures: bool = True) -> Report:  # fmt: skip
    """Load studies and the store, and build the report (what `repro report` calls).

    ``studies`` (loaded from ``study_files``, in their order) and ``records`` (the store's
    runs), where the caller has them already: reading a lab's store again cost `repro
    report` seconds (benchmarks/report-scale-2026-11-27.md). ``figures=False`` for the claim
    table alone (CSV, JSON), which draws none of them."""
    from harness.results import scan, scan_evaluations
    from harness.studyfile import load_study

    loaded = studies if studies is not None else [load_study(p) for p in study_files]
    records = records if records is not None else scan(results)
    return build(list(zip(loaded, map(str, study_files), strict=True)), records, str(results),
                 scan_evaluations(results), show_unrun=show_unrun, figures=figures)  # fmt: skip
