"""The claim rows of runs we trained: a value (:func:`_value_row`), a parameter count
(:func:`_params_row`), a speed (:func:`_speed_claim_row`, and the measured speeds of
:func:`_speed_rows`) and an ordering (:func:`_ordering_row`), each with its verdict, what it
stands on and how far the runs under way have got.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from harness import timings, verdicts
from harness.describe import parameter_count
from harness.metrics import METRICS, SECONDS, short_label
from harness.metrics import label as metric_label
from harness.plural import noun, plural
from harness.report.counting import (
    _apart,
    _by_pool,
    _Classified,
    _counted_runs,
    _execution_text,
    _kept_apart,
    _official,
    _on_data,
    _Pool,
    _pool_of,
    _rank,
    _solo_timed,
)
from harness.report.runs import _execution, trained_on
from harness.report.text import _fmt
from harness.report.views import PARAMETERS, ClaimRow, SpeedRow
from harness.results import RunRecord
from harness.schema import Claim, OrderingClaim, Study


def _diverged_note(runs: list[tuple[RunRecord, float]], metric: str, of: str = "") -> list[str]:
    """How many of the runs used diverged and what each counts as; ``of``: whose runs they
    are (an ordering's experiment)."""
    counts_as = METRICS[metric].diverged
    diverged = sum(1 for r, _ in runs if r.status == "diverged")
    if not diverged or counts_as is None:  # a figure divergence leaves alone (parameters)
        return []
    whose = f" of {of}" if of else ""
    return [f"{diverged} of the {plural(len(runs), 'run')}{whose} used diverged (loss NaN/inf); "
            f"each counts as {counts_as.means}"]  # fmt: skip


def _run_notes(exp_runs: list[_Classified], metric: str = "",
               epoch: int | None = None) -> list[str]:  # fmt: skip
    """What exists for the experiment beyond the counted runs, said once per kind. An
    unfinished run that counts for this claim all the same (a test error at an epoch it has
    passed) is said to count here, not listed as not counted."""
    early = [c for c in exp_runs if not c.counted and c.counts_for(metric, epoch)]
    reasons = Counter(c.why_not for c in exp_runs
                      if not c.counted and not c.counts_for(metric, epoch))  # fmt: skip
    notes = [f"{plural(n, 'run')} not counted: {why}" for why, n in sorted(reasons.items())]
    if early:
        status = "/".join(sorted({c.record.status for c in early}))
        notes.insert(
            0,
            f"{len(early)} unfinished ({status}) {noun(len(early), 'run')} counted: "
            f"{'it has' if len(early) == 1 else 'each has'} recorded epoch {epoch}, and later "
            "epochs cannot change its test error there",
        )
    return notes


def _claimed_text(claim: Claim, unit: str) -> str:
    spread = f" \u00b1 {claim.std:g}" if claim.std is not None else ""
    return f"{claim.stated()}{spread}{unit} ({claim.rule})"


def _value_row(study, claim: Claim, by_exp, anchor, source_label) -> ClaimRow:
    metric = METRICS[claim.metric]
    exp_runs = by_exp.get(claim.experiment, [])
    groups = _by_pool(exp_runs, study.pools_executions(claim), metric=claim.metric,
                      epoch=claim.epoch)  # fmt: skip
    chosen = max(groups, key=lambda k: _rank(k, len(groups[k]))) if groups else None
    runs = _counted_runs(groups.get(chosen, []), claim.metric, claim.epoch)
    repro = verdicts.apply_rule([v for _, v in runs], claim.rule, metric.lower_is_better)
    # Runs under way that do not count yet (_Classified.under_way): a damaged, stale,
    # override, subset or failed run is not (its note says why it does not count).
    pending = sum(c.pending_for(claim.metric, claim.epoch) for c in exp_runs)
    verdict = _on_data(verdicts.judge_value(claim, repro, pending=pending), chosen)
    unit = metric.unit
    return ClaimRow(
        study=study.name,
        anchor=anchor,
        kind="value",
        experiment=claim.experiment,
        source=source_label[claim.source],
        where=claim.where,
        metric=_value_metric_label(study, claim),
        unit=unit,
        claimed=_claimed_text(claim, unit),
        claimed_value=claim.value,
        claimed_std=claim.std,
        claimed_stated=claim.stated(),
        rule=str(claim.rule),
        reproduced=_reproduced_text(repro, unit),
        reproduced_value=repro.value if repro else None,
        rule_applied=repro.rule_applied if repro else "",
        n=repro.n if repro else 0,
        minimum=repro.minimum if repro else None,
        maximum=repro.maximum if repro else None,
        std=repro.std if repro else None,
        difference=verdict.difference,
        tolerance=verdict.tolerance,
        verdict=verdict.outcome,
        reason=verdict.reason,
        notes=[
            *filter(None, [claim.note]),
            *_diverged_note(runs[: repro.n] if repro else [], claim.metric),
            *_kept_apart(groups, chosen),
            *_run_notes(exp_runs, claim.metric, claim.epoch),
        ],
        interval_low=verdict.interval[0] if verdict.interval else None,
        interval_high=verdict.interval[1] if verdict.interval else None,
        execution=_execution_text(chosen, groups.get(chosen, [])),
        data=chosen.data if chosen else "",
        short_metric=_value_metric_label(study, claim, short=True),
        progress=_progress(exp_runs, claim, judged=repro is not None),
        used_runs=[str(r.path) for r, _ in runs[: repro.n]] if repro else [],
        kept_apart_runs=_apart(groups, chosen),
    )


def _value_metric_label(study: Study, claim: Claim, *, short: bool = False) -> str:
    """The metric's label; a test error that the experiment's recipe reports at its
    best-validation epoch (a run's summary ``test_error``) says so instead of "final epoch"."""
    text = (short_label if short else metric_label)(claim.metric, claim.epoch)
    recipe = study.experiment(claim.experiment).recipe
    if claim.metric in ("test_error", "test_accuracy") and (
        recipe.reported_epoch == "best_validation"
    ):
        if short:
            return text + " (best val.)"
        return text.replace("(final epoch)", "(best-validation epoch)")
    return text


def _progress(exp_runs: list[_Classified], claim: Claim, *, judged: bool = False) -> str:
    """Where the unfinished runs of a claim's experiment stand (paused, running, interrupted):
    the claim's metric at their last epoch, which decides nothing until a run counts. Beside a
    verdict already reached (``judged``), only that they are under way: the verdict is of the
    runs that count now, and may change once these count too."""
    runs = _unfinished(exp_runs, claim.metric, claim.epoch)
    if not runs:
        return ""
    if judged:
        more = f"{len(runs)} more run{'s' if len(runs) > 1 else ''}"
        return (f"{more} under way at {_where(runs, count=False)}: not counted yet; the "
                "verdict may change once they count")  # fmt: skip
    unit = METRICS[claim.metric].unit
    values = [v for r in runs if (v := _so_far(r.history, claim.metric, claim.epoch)) is not None]
    where = _where(runs)
    if not values:
        return f"at {where}: not counted"
    value = statistics.median(values)
    return f"so far {_fmt(value, unit, 2 if unit else 3)} at {where}: not counted"


def _unfinished(exp_runs: list[_Classified], metric: str = "",
                epoch: int | None = None) -> list[RunRecord]:  # fmt: skip
    """The runs under way with curves that do not already count for ``metric`` (a run past a
    claimed epoch does)."""
    return [c.record for c in exp_runs if c.pending_for(metric, epoch) and c.record.history]


def _where(runs: list[RunRecord], *, count: bool = True) -> str:
    """Where unfinished runs stand: "epoch 145/164 (paused)", "epoch 2-3/4 (paused, 2 runs)"."""
    done = sorted({len(r.history) for r in runs})
    total = {(r.summary or {}).get("epochs_total") for r in runs} - {None}
    epochs = f"{done[0]}" if len(done) == 1 else f"{done[0]}-{done[-1]}"
    epochs += f"/{total.pop()}" if len(total) == 1 else ""
    status = "/".join(sorted({r.status for r in runs}))
    where = f"epoch {epochs} ({status}" + (f", {len(runs)} runs" if count and len(runs) > 1 else "")
    return where + _copies(runs)


def _copies(runs: list[RunRecord]) -> str:
    """The end of a progress line's "(paused, 2 runs" that says where unfinished runs train
    on a copy of the data: a paused run's error on the JPEG copy is not the official data's,
    and is read against the source's figure before it counts."""
    copies = sum(_official(r) is False for r in runs)
    if not copies:
        return ")"
    if copies == len(runs):
        return f") {verdicts.ON_NONOFFICIAL_DATA}"
    return f", {copies} of them {verdicts.ON_NONOFFICIAL_DATA})"


def _so_far(history: list[dict], metric: str, epoch: int | None) -> float | None:
    """A metric as of a run's last epoch (the final-epoch metrics as if it ended there)."""
    last = history[-1]
    if metric == "test_error_at_epoch":
        at = [h.get("test_error") for h in history if h["epoch"] == epoch]
        return at[0] if at else None
    if metric == "best_test_error":
        errors = [h["test_error"] for h in history if h.get("test_error") is not None]
        return min(errors) if errors else None
    if metric == "test_accuracy":
        error = last.get("test_error")
        return None if error is None else 100.0 - error
    key = {"test_error": "test_error", "final_train_loss": "train_loss",
           "final_train_error": "train_error"}.get(metric)  # fmt: skip
    return last.get(key) if key else None


def _reproduced_text(repro: verdicts.Reproduction | None, unit: str) -> str:
    if repro is None:
        return "\u2013"
    text = _fmt(repro.value, unit)
    if repro.std is not None and repro.rule_applied.startswith("mean"):
        text += f" \u00b1 {repro.std:.2f}"
    return f"{text} ({repro.rule_applied})"


def _params_row(study, claim: Claim, anchor, source_label, kind: str = "params") -> ClaimRow:
    counts = claim.counts or "all"
    declared = (study.experiment(claim.experiment) if claim.experiment is not None
                else study.checkpoint(claim.checkpoint))  # fmt: skip
    measured = parameter_count(declared.model, counts)
    others = {c: parameter_count(declared.model, c) for c in verdicts.COUNT_CONVENTIONS
              if c != counts}  # fmt: skip
    verdict = verdicts.judge_params(claim, measured, others)
    stated = f"{claim.value:,.0f}"
    if claim.resolution is not None and claim.resolution >= 1e4:
        # In millions to the digits the source printed: WRN-16-8's "11.0M" read "11M".
        digits = max(0, round(math.log10(1e6 / claim.resolution)))
        stated = f"{claim.value / 1e6:.{digits}f}M"
    return ClaimRow(
        study=study.name, anchor=anchor, kind=kind, experiment=claim.subject,
        source=source_label[claim.source], where=claim.where, metric=PARAMETERS, unit="",
        claimed=stated, claimed_value=claim.value, claimed_std=None,
        rule=("exact" if claim.resolution is None else f"rounded to {claim.resolution:,.0f}")
        + ("" if counts == "all" else ", without batch-norm parameters"),
        reproduced=f"{measured:,}", reproduced_value=measured, rule_applied="counted",
        n=1, minimum=measured, maximum=measured, std=None, difference=verdict.difference,
        tolerance=verdict.tolerance, verdict=verdict.outcome, reason=verdict.reason,
        notes=[*filter(None, [claim.note])],
        relative_difference=measured / claim.value - 1, severity=verdict.severity,
        short_metric=PARAMETERS,
    )  # fmt: skip


def _speed_claim_row(study, claim: Claim, by_exp, anchor, source_label) -> ClaimRow:
    counted = [c.record for c in by_exp.get(claim.experiment, []) if c.timed]
    speed = _speed_verdict(claim, counted, by_exp.get(claim.experiment, []),
                           study.pools_executions(claim))  # fmt: skip
    verdict, values, devices = speed.verdict, speed.used, speed.devices
    measured = statistics.median(values) if values else None
    return ClaimRow(
        study=study.name, anchor=anchor, kind="speed", experiment=claim.experiment,
        source=source_label[claim.source], where=claim.where, metric="seconds per epoch",
        unit=" s", claimed=f"{claim.stated()} s", claimed_value=claim.value, claimed_std=None,
        claimed_stated=claim.stated(),
        rule=str(claim.rule), reproduced=_fmt(measured, " s"), reproduced_value=measured,
        rule_applied=f"median of {len(values)}" if values else "", n=len(values),
        minimum=min(values) if values else None, maximum=max(values) if values else None,
        std=None, difference=verdict.difference, tolerance=verdict.tolerance,
        verdict=verdict.outcome, reason=verdict.reason, hardware=claim.hardware or "",
        notes=([f"solo runs measured on {', '.join(devices)}"] if devices else [])
        + _kept_apart(speed.pools, speed.chosen),
        execution=_execution_text(speed.chosen, speed.pools.get(speed.chosen, [])),
        data=speed.chosen.data if speed.chosen else "",
        short_metric=short_label("sec_per_epoch"),
        used_runs=[str(c.record.path) for c in speed.pools.get(speed.chosen, [])],
        kept_apart_runs=_apart(speed.pools, speed.chosen),
    )  # fmt: skip


@dataclass
class _Speed:
    """A speed claim's verdict, the seconds per epoch it took the median of, the devices of
    the solo runs, and the pools of the solo runs on the claim's hardware (the chosen one's
    runs are those judged)."""

    verdict: verdicts.Verdict
    used: list[float]
    devices: list[str]
    pools: dict[_Pool, list[_Classified]] = field(default_factory=dict)
    chosen: _Pool | None = None


def _speed_verdict(
    claim: Claim, counted: list[RunRecord], exp_runs: list[_Classified], pooled: bool
) -> _Speed:
    """A speed claim's verdict over the counted complete runs of its experiment. A source's
    timing is of a run that had its device alone: only solo runs compare (harness.timings), so
    only a run under way alone on the claim's hardware so far leaves the claim under way. Of
    the solo runs on the claim's hardware, those of one execution and data count, chosen as
    for any claim (_rank): a median over bf16 and fp32 runs is neither's time, and runs on a
    copy of the data give a verdict marked as such."""
    solo = [r for r in counted if not timings.not_solo(r)]
    pending = sum(c.under_way and not timings.not_solo(c.record)
                  and verdicts.same_hardware(timings.devices(c.record)[0], claim.hardware or "")
                  for c in exp_runs)  # fmt: skip
    classified = {id(c.record): c for c in exp_runs}
    pools: dict[_Pool, list[_Classified]] = defaultdict(list)
    elsewhere = []  # on other hardware: judge_speed says how many it left out
    for r in solo:
        if verdicts.same_hardware(timings.devices(r)[0], claim.hardware or ""):
            pools[_pool_of(r, pooled)].append(classified[id(r)])
        else:
            elsewhere.append(r)
    chosen = max(pools, key=lambda k: _rank(k, len(pools[k]))) if pools else None
    judged = [c.record for c in pools.get(chosen, [])] + elsewhere
    verdict, used = verdicts.judge_speed(
        claim,
        [(timings.devices(r)[0], v) for r in judged if (v := r.value("sec_per_epoch")) is not None],
        pending=pending,
    )
    verdict = _on_data(verdict, chosen)
    if counted and not solo:
        why = "; ".join(sorted({timings.not_solo(r) for r in counted}))
        verdict = verdicts.Verdict(
            verdicts.NOT_COMPARABLE,
            f"no counted run had its device alone ({why}); a solo run is needed to compare "
            "with the source's timing",
        )
    return _Speed(verdict, used, sorted({timings.devices(r)[0] for r in solo}), dict(pools),
                  chosen)  # fmt: skip


def _ordering_row(study, claim: OrderingClaim, by_exp, anchor, source_label) -> ClaimRow:
    pooled = study.pools_executions(claim)
    exp_runs = [by_exp.get(name, []) for name in claim.experiments]
    # Seconds compare as a speed claim's do: solo runs only, every side on one device.
    timed = METRICS[claim.metric].scale is SECONDS
    left_out: dict[str, list[str]] = {}
    if timed:
        solo = [_solo_timed(runs) for runs in exp_runs]
        exp_runs = [kept for kept, _ in solo]
        left_out = {n: why for n, (_, why) in zip(claim.experiments, solo, strict=True) if why}
    groups = [_by_pool(runs, pooled, by_device=timed, metric=claim.metric, epoch=claim.epoch)
              for runs in exp_runs]  # fmt: skip
    keys = {key for g in groups for key in g}
    # One execution for every side: the one that covers most sides, then as for values.
    chosen = max(keys, key=lambda k: (sum(k in g for g in groups),
                                      *_rank(k, sum(len(g.get(k, [])) for g in groups))),
                 default=None)  # fmt: skip
    sides, used, diverged_notes = [], [], []
    for name, g in zip(claim.experiments, groups, strict=True):
        runs = _counted_runs(g.get(chosen, []), claim.metric, claim.epoch)
        diverged = sum(1 for r, _ in runs if r.status == "diverged")
        sides.append(verdicts.Side(name, [v for _, v in runs], diverged))
        used += [str(r.path) for r, _ in runs]
        diverged_notes += _diverged_note(runs, claim.metric, of=name)
    # Sides with runs that may yet count (a side on seconds: runs alone on their device so far).
    under_way = [name for name in claim.experiments
                 if any(c.pending_for(claim.metric, claim.epoch)
                        and not (timed and timings.not_solo(c.record))
                        for c in by_exp.get(name, []))]  # fmt: skip
    verdict = _on_data(verdicts.judge_ordering(claim, sides, under_way), chosen)
    stranded = [(name, g) for name, g in zip(claim.experiments, groups, strict=True)
                if g and chosen not in g]  # fmt: skip
    if stranded:
        found = "; ".join(f"{name}: {' | '.join(sorted(p.describe() for p in g))}"
                          for name, g in stranded)  # fmt: skip
        verdict = verdicts.Verdict(
            verdicts.NOT_COMPARABLE,
            f"no counted runs of every experiment under one execution and data"
            f"{' on one device' if timed else ''} ({chosen.describe()} for the others; "
            f"{found}); runs on other data never pool, nor runs of another precision or "
            "pipeline unless the study or claim says `pool_executions: true`"
            + ("; seconds on one device say nothing of another's" if timed else ""),
        )
    if unsolo := [n for n, g in zip(claim.experiments, groups, strict=True)
                  if not g and n in left_out]:  # fmt: skip
        why = "; ".join(sorted({w for n in unsolo for w in left_out[n]}))
        verdict = verdicts.Verdict(
            verdicts.NOT_COMPARABLE,
            f"no counted run of {', '.join(unsolo)} had its device alone ({why}); a source "
            "times a run that had its GPU alone, so only solo runs' seconds compare",
        )
    arrow = " < " if claim.direction == "increasing" else " > "
    return ClaimRow(
        study=study.name, anchor=anchor, kind="ordering", experiment=", ".join(claim.experiments),
        source=source_label[claim.source], where=claim.where,
        metric=metric_label(claim.metric, claim.epoch), unit="", claimed=claim.statement,
        claimed_value=None, claimed_std=None,
        rule=arrow.join(claim.experiments), reproduced=verdict.reason if sides else "",
        reproduced_value=None,
        rule_applied="mean over counted " + ("solo runs on one device" if timed else "runs"),
        n=min(len(s.values) for s in sides), minimum=None, maximum=None, std=None,
        difference=None, tolerance=None, verdict=verdict.outcome, reason=verdict.reason,
        notes=[*filter(None, [claim.note]), *diverged_notes,
               *(f"{plural(k, 'run')} of {n} left out: {w}" for n, ws in left_out.items()
                 for w, k in Counter(ws).items())],
        execution=_execution_text(chosen, [c for g in groups for c in g.get(chosen, [])]),
        data=chosen.data if chosen else "",
        short_metric=short_label(claim.metric, claim.epoch),
        progress=_ordering_progress(claim, by_exp, verdict),
        under_way=under_way,
        # Runs no comparison stands on (not comparable) are not counted by this verdict.
        used_runs=used if verdict.outcome != verdicts.NOT_COMPARABLE else [],
        kept_apart_runs={k: v for g in groups for k, v in _apart(g, chosen).items()},
    )  # fmt: skip


def _ordering_progress(claim: OrderingClaim, by_exp, verdict: verdicts.Verdict) -> str:
    """The runs under way of an ordering's experiments, each side's where it stands."""
    sides = [(name, runs) for name in claim.experiments
             if (runs := _unfinished(by_exp.get(name, []), claim.metric, claim.epoch))]  # fmt: skip
    if not sides:
        return ""
    where = "; ".join(f"{name} at {_where(runs)}" for name, runs in sides)
    if verdict.outcome in (verdicts.UNDER_WAY, verdicts.NOT_RUN):
        return f"under way, not counted: {where}"
    return f"under way, not counted yet (the verdict may change once they count): {where}"


def _speed_rows(study: Study, by_exp) -> list[SpeedRow]:
    claims = {c.experiment: c for c in study.claims
              if isinstance(c, Claim) and c.metric == "sec_per_epoch"}  # fmt: skip
    rows = []
    for exp in study.experiments:
        # Every run whose seconds are a whole run's, solo or not (the table says which), but
        # not one whose environment was ignored: it cannot say on what or how they were made.
        counted = [c.record for c in by_exp.get(exp.name, [])
                   if c.timed and not c.record.environment_damage]  # fmt: skip
        claim = claims.get(exp.name)
        if not counted and claim is None:
            continue
        spe = [v for r in counted if (v := r.value("sec_per_epoch")) is not None]
        ips = [h["images_per_second"] for r in counted for h in r.history
               if h.get("full_epoch") and not h.get("first_of_session")
               and h.get("images_per_second")]  # fmt: skip
        # every device a run trained on, not only its latest session's
        devices = {device for r in counted
                   for device, _ in trained_on(r.history, r.environment or {})}  # fmt: skip
        verdict = judged = ""
        if claim:
            speed = _speed_verdict(
                claim, counted, by_exp.get(exp.name, []), study.pools_executions(claim)
            )
            verdict = speed.verdict.outcome
            if speed.used:
                # The row's sec/epoch is over every counted run, fused, shared or on another
                # GPU too; the verdict is over solo runs on the claim's hardware alone, and
                # "30 s | 10 s | reproduced" must not read as 30 s reproducing 10.
                judged = (f"{statistics.median(speed.used):.3g} s, the median of "
                          f"{plural(len(speed.used), 'solo run')} on {claim.hardware}")  # fmt: skip
        rows.append(
            SpeedRow(
                experiment=exp.name,
                sec_per_epoch=statistics.median(spe) if spe else None,
                images_per_second=statistics.median(ips) if ips else None,
                runs=len(counted),
                devices=", ".join(sorted(devices)) or "\u2013",
                precision=", ".join(
                    sorted({_execution(r.environment or {}, r.summary) for r in counted})
                )
                or "\u2013",
                claimed=f"{claim.value:g} s" if claim else "",
                claimed_hardware=claim.hardware or "" if claim else "",
                verdict=verdict,
                judged=judged,
            )
        )
    return rows
