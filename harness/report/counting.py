"""Which runs count, and which may share a verdict. :func:`_classify` sorts a study's
runs (counted, stale, diverged, unfinished, made with overrides, or holding impossible
figures); :func:`_metric` reads the figure a claim is about; the pools (:class:`_Pool`) keep
runs of different data, executions or devices apart, and :func:`_rank` picks the pool a
verdict stands on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from harness import execution, store, timings, verdicts
from harness.data import shown_apart
from harness.metrics import METRICS
from harness.placement import WHAT_TO_DO
from harness.plan import config_hash, nominal_batches_per_epoch, resolved_config
from harness.plural import plural
from harness.results import RunRecord
from harness.schedule import Length
from harness.schema import Claim, Recipe, Study
from harness.train import reported_record

UNDER_WAY = ("paused", "running", "interrupted")  # a run that may yet count


@dataclass
class _Classified:
    record: RunRecord
    counted: bool
    why_not: str
    faithful: bool  # current config, no overrides: its curves belong to the experiment
    # Unfinished (UNDER_WAY) and may yet count: faithful, on the full data. What makes a claim
    # "under way" rather than "not yet run".
    under_way: bool = False

    @property
    def timed(self) -> bool:
        """Counted and complete: its seconds per epoch are a whole run's."""
        return self.counted and self.record.status == "complete"

    def counts_for(self, metric: str, epoch: int | None = None) -> bool:
        """Counted, or, for a claim on the test error at one epoch, a run paused, interrupted
        or running past that epoch: later epochs cannot change that figure, so waiting for
        the end would only hide evidence. A subset (smoke) run or one without a summary to
        say so still waits."""
        if self.counted:
            return True
        r = self.record
        return (
            metric == "test_error_at_epoch"
            and self.under_way  # it goes on from where it is: its epochs stay
            and r.summary is not None
            and any(h["epoch"] == epoch and h.get("test_error") is not None for h in r.history)
        )

    def pending_for(self, metric: str, epoch: int | None = None) -> bool:
        """Under way and not yet counting for the claim: what leaves it "under way"."""
        return self.under_way and not self.counts_for(metric, epoch)


def _classify(study: Study, records: list[RunRecord]) -> list[_Classified]:
    names = {e.name: e for e in study.experiments}
    out = []
    for r in records:
        if r.status == store.MISPLACED:  # another folder's run: first, whatever else it is
            out.append(_Classified(r, False, f"misplaced: {r.damage}; {WHAT_TO_DO}", False))
            continue
        exp = names.get(r.experiment)
        if exp is None:
            out.append(_Classified(r, False, "experiment no longer in the study", False))
            continue
        if r.label:
            out.append(_Classified(r, False, f"override run ({r.label})", False))
            continue
        expected = config_hash(resolved_config(exp, exp.recipe, r.seed, ""))
        if r.status == store.DAMAGED and r.config_hash is None:
            # Its config cannot be read (or is missing): not an older config, which "stale"
            # would have the reader believe and `repro run` does not repair.
            out.append(_Classified(r, False, f"damaged: {r.damage}", True))
            continue
        if r.config_hash != expected:
            out.append(_Classified(r, False, "stale: made with an older config", False))
            continue
        summary = r.summary or {}
        ended = r.status in ("complete", "diverged")  # a diverged run is a result too
        # A run on a subset never counts: its recipe says so (its summary too, once written).
        subset = not exp.recipe.on_all_data or summary.get("counts_as_reproduction") is False
        if r.status == store.DAMAGED:
            out.append(_Classified(r, False, f"damaged: {r.damage}", True))
        elif broken := _impossible_figures(r):
            # Whatever its status: a paused run past a claimed epoch counts there too, and a
            # NaN reads as no worse than any claim (a -inf or a negative error as better).
            why = (f"its record holds an impossible figure ({'; '.join(broken)}): never "
                   "counted; check the run")  # fmt: skip
            out.append(_Classified(r, False, why, True))
        elif ended and subset:
            why = "the recipe trains on a subset (smoke study)"
            out.append(_Classified(r, False, why, True))
        elif _summarises_its_curve(r) and (wrong := _disagreements(exp.recipe, r)):
            # Its summary is what verdicts and the run table read, its curve what the figures
            # draw and a claim at one epoch reads: where they differ one was edited or left
            # from another attempt, and neither can be trusted (an unfinished run's either).
            why = (
                f"damaged: its summary disagrees with its curves or its recipe "
                f"({'; '.join(wrong)}); never counted: check the run, or run it again with "
                "`repro run --force`"
            )
            out.append(_Classified(r, False, why, True))
        elif ended:
            out.append(_Classified(r, True, "", True))
        else:  # unfinished: under way unless it trains on a subset
            under_way = r.status in UNDER_WAY and not subset
            why = r.status if not subset else f"{r.status} on a subset (smoke study)"
            out.append(_Classified(r, False, why, True, under_way))
    return out


def _summarises_its_curve(record: RunRecord) -> bool:
    """Whether the run's summary was derived from exactly the curve beside it, so that
    _disagreements may compare the two: an ended or paused run's (store.check_ended holds
    its epochs to the curve's); an interrupted run's where training wrote it over the epochs
    its curve holds. Not one store.mark_interrupted wrote (``stop_reason``): it keeps the
    figures of a summary training may have written an epoch ahead, and nor is a summary that
    is an epoch ahead (a stop between an epoch's checkpoint and its line)."""
    summary = record.summary or {}
    if record.status in (*store.FINAL, store.PAUSED):
        return True
    return (
        record.status == store.INTERRUPTED
        and "stop_reason" not in summary
        and summary.get("epochs_done") == len(record.history)
    )


# The figures verdicts read, and what a run can hold in each: training records a loss that
# became NaN/inf as diverged, leaving that epoch's loss and test error empty (None), and an
# error is a share of images. Anything else was written by something other than training.
def _is_error(v: float) -> bool:
    return 0.0 <= v <= 100.0


_SUMMARY_FIGURES = {"test_error": _is_error, "best_test_error": _is_error,
                    "final_test_error": _is_error, "final_train_error": _is_error,
                    "final_train_loss": lambda v: v >= 0,
                    "sec_per_epoch": lambda v: v > 0}  # fmt: skip


def _impossible_figures(record: RunRecord) -> list[str]:
    """The figures of a run's summary, and the test errors of its curve, that no run can hold
    (NaN, infinite, an error outside 0..100%, a negative loss, no time), each named."""

    def wrong(value, possible) -> bool:
        return isinstance(value, int | float) and not (math.isfinite(value) and possible(value))

    summary = record.summary or {}
    found = [f"summary {k} = {summary[k]}" for k, possible in _SUMMARY_FIGURES.items()
             if wrong(summary.get(k), possible)]  # fmt: skip
    found += [f"epoch {h['epoch']} test_error = {h['test_error']}" for h in record.history
              if wrong(h.get("test_error"), _is_error)]  # fmt: skip
    return found


def _disagreements(recipe: Recipe, record: RunRecord) -> list[str]:
    """The figures of a run's summary that its curves, read as training wrote them
    (harness.train.finish), contradict: a summary edited after the run, a curve edited or
    cut back, or a figure taken out of a summary (a seed dropped from a median unnoticed);
    for an unfinished run whose summary speaks of its curve (_summarises_its_curve), the
    figures it states.
    A diverged run's summary may leave a figure out (verdicts read its diverged value); a
    complete run's may not where its curve has it. And a complete run of fewer (or more)
    epochs than its recipe trains on the full data: the config hash says the recipe is the
    study's, but store.check_ended only checks a summary's epochs against itself."""
    summary = record.summary or {}
    done = [h for h in record.history if h.get("test_error") is not None]
    final = done[-1] if done else {}
    reported = reported_record(done, recipe.reported_epoch) or {}
    # Every epoch says whether it was a full one (older curves did not): then the seconds are
    # worked out as the harness that wrote the summary did (timings).
    full_epochs = all("full_epoch" in h for h in record.history)
    if "sec_per_epoch_device" in summary:
        speed = timings.reported_speed(timings.seconds_by_device(record.history))
        seconds = speed.sec_per_epoch if speed else None
    else:
        seconds = timings.sec_per_epoch_before_devices(record.history)
    curve = {
        "test_error": reported.get("test_error"),
        "best_test_error": min((h["test_error"] for h in done), default=None),
        "final_train_loss": final.get("train_loss"),
        "final_train_error": final.get("train_error"),
    }  # fmt: skip
    if full_epochs:  # else the curve cannot say which epochs the summary's figure is of
        curve["sec_per_epoch"] = seconds
    wrong = []
    schedule = Length.of(recipe, nominal_batches_per_epoch(recipe)).epochs
    total = summary.get("epochs_total")
    if record.status == "complete" and total != schedule:
        wrong.append(
            f"complete after {plural(total or 0, 'epoch')}, where its recipe trains {schedule}"
        )
    for key, drawn in curve.items():
        stated = summary.get(key)
        if stated is None:
            if drawn is not None and record.status == "complete":
                wrong.append(f"no {key} in the summary, {drawn:g} in the curve")
        elif drawn is None or not math.isclose(stated, drawn, rel_tol=1e-9, abs_tol=1e-12):
            wrong.append(
                f"summary {key} {stated:g}, curve " + ("none" if drawn is None else f"{drawn:g}")
            )
    return wrong


def _metric(record: RunRecord, metric: str, epoch: int | None = None) -> float | None:
    summary = record.summary or {}
    diverged = METRICS[metric].diverged
    if metric == "test_error_at_epoch":
        # Read from the curve; a run that diverged before that epoch is at chance there.
        at = [h["test_error"] for h in record.history
              if h["epoch"] == epoch and h.get("test_error") is not None]  # fmt: skip
        return at[0] if at else (diverged.value if record.status == "diverged" else None)
    if record.status == "diverged" and diverged is not None:
        if metric == "best_test_error" and summary.get(metric) is not None:
            return min(summary[metric], diverged.value)  # the epochs it had still count
        return diverged.value
    if metric == "test_accuracy":
        error = summary.get("test_error")
        return None if error is None else 100.0 - error
    if metric == "params":
        return summary.get("params")
    return summary.get(metric)


def _counted_runs(exp_runs: list[_Classified], metric: str,
                  epoch: int | None = None) -> list[tuple[RunRecord, float]]:  # fmt: skip
    """The runs counted for ``metric`` that have a value for it, with it, in seed order."""
    runs = sorted((c.record for c in exp_runs if c.counts_for(metric, epoch)),
                  key=lambda r: r.seed)  # fmt: skip
    return [(r, v) for r in runs if (v := _metric(r, metric, epoch)) is not None]


# Runs that may share a verdict: the same data, and the same precision and pipeline unless a
# study or claim pools those. Neither data nor execution is in the config hash (runs keep
# their hash whatever data and execution made them), so runs of one experiment and seed may
# differ in both; a verdict never pools them silently.

POOLED = "pooled"  # the execution of a pool of every execution


@dataclass(frozen=True)
class _Pool:
    official: bool  # the official release of CIFAR-10
    data: str  # "official release" | "not the official release (data <fingerprint>)"
    execution: str  # "bf16, fast pipeline" | POOLED
    device: str = ""  # seconds only: the one device they were measured on (harness.timings)
    # The data's fingerprint: the official release is one set of arrays, so runs that say
    # "official" but name two fingerprints did not train on the same data and never pool.
    fingerprint: str = ""

    def describe(self) -> str:
        data = self.data
        if self.official and self.fingerprint:
            data += f" (data {self.fingerprint[:12]})"
        return f"{self.execution}; {data}" + (f"; on {self.device}" if self.device else "")


def _pool_of(record: RunRecord, pooled: bool, by_device: bool = False) -> _Pool:
    official, text = _run_data(record)
    device = timings.devices(record)[0] if by_device else ""
    fingerprint = record.data.get("dataset_fingerprint") or ""
    return _Pool(official, text, POOLED if pooled else _execution_of(record), device, fingerprint)


def _data_of(data: dict) -> tuple[bool, str]:
    """Whether a run's (or an evaluation's) data is the official release, and how to say it."""
    if data.get("official") is True:
        return True, "official release"
    fingerprint = (data.get("dataset_fingerprint") or "")[:12] or "not recorded"
    return False, f"not the official release (data {fingerprint})"


def _run_data(record: RunRecord) -> tuple[bool, str]:
    """As _data_of, for a run: its summary records the latest session's data only, so a run
    whose sessions say they trained on different data (a run paused on a copy and resumed on
    the official release) is on mixed data, which is not the official release."""
    fingerprints = set(store.data_fingerprints(record.summary or {}))
    flags = {s.get("official") for s in _sessions(record)} | {record.data.get("official")}
    recorded = shown_apart(*sorted(f for f in fingerprints if f))
    if len(recorded) > 1 or {True, False} <= flags:
        return False, "mixed data: not the official release (data " + " + ".join(recorded) + ")"
    return _data_of(record.data)


def _official(record: RunRecord) -> bool | None:
    """Whether a run trained on the official release, as its summary's data says (None: not
    recorded), but False where its sessions trained on different data (_run_data)."""
    flag = record.data.get("official")
    return False if flag and not _run_data(record)[0] else flag


def _copies_trained_on(record: RunRecord) -> set[str]:
    """The fingerprints ("" where unrecorded) of the copies of the data, not the official
    release, that a run off the official release trained on: every session's, as its summary's
    data is the latest session's alone (a run paused on the JPEG copy and resumed on the
    official release named only the official release's arrays, as "the copy")."""
    copies = {d.get("dataset_fingerprint") or "" for d in [*_sessions(record), record.data]
              if d.get("official") is False}  # fmt: skip
    # Mixed by its fingerprints alone (sessions all said official): the latest, as before.
    return copies or {record.data.get("dataset_fingerprint") or ""}


def _sessions(record: RunRecord) -> list[dict]:
    """The sessions that recorded their data (older runs' did not)."""
    return [s for s in (record.summary or {}).get("sessions") or []
            if s.get("dataset_fingerprint") or s.get("official") is not None]  # fmt: skip


def _execution_of(record: RunRecord) -> str:
    """The precision and pipeline the run's epochs were computed with: "bf16, fast pipeline";
    "mixed: ..." for a run resumed under another one (before `repro run` refused that)."""
    summary = record.summary or {}
    recorded = {(s["precision"], s.get("pipeline"))
                for s in summary.get("sessions") or [] if s.get("precision")}  # fmt: skip
    if not recorded:
        ex = summary.get("execution") or record.environment or {}
        recorded = {(ex.get("precision"), ex.get("pipeline"))}
    labels = sorted(execution.label(*r) for r in recorded)
    return labels[0] if len(labels) == 1 else "mixed: " + " + ".join(labels)


def _by_pool(
    exp_runs: list[_Classified],
    pooled: bool,
    by_device: bool = False,
    metric: str = "",
    epoch: int | None = None,
) -> dict[_Pool, list[_Classified]]:
    """The runs counted for ``metric``, grouped by pool (and by device, for seconds)."""
    groups: dict[_Pool, list[_Classified]] = defaultdict(list)
    for c in exp_runs:
        if c.counts_for(metric, epoch):
            groups[_pool_of(c.record, pooled, by_device)].append(c)
    return dict(groups)


def _solo_timed(exp_runs: list[_Classified]) -> tuple[list[_Classified], list[str]]:
    """The counted runs whose seconds per epoch compare (complete, and solo on one device:
    harness.timings), and why each other counted run is left out."""
    kept, why = [], []
    for c in exp_runs:
        if not c.counted:
            continue
        reason = timings.not_solo(c.record) if c.timed else "diverged: not a whole run's seconds"
        if reason:
            why.append(reason)
        else:
            kept.append(c)
    return kept, why


def _rank(pool: _Pool, runs: int) -> tuple:
    """Which pool a verdict uses: the official data first (only it tests the claim), then
    the most runs; on a tie fp32 (the sources' precision), then the canonical pipeline (the
    kind of code they ran); the rest makes the choice the same every time."""
    ex = pool.execution
    return (pool.official, runs, ex.startswith("fp32"), "canonical" in ex, pool.data, ex,
            pool.device, pool.fingerprint)  # fmt: skip


def _execution_text(pool: _Pool | None, runs: list[_Classified]) -> str:
    if pool is None or pool.execution != POOLED:
        return pool.execution if pool else ""
    labels = sorted({_execution_of(c.record) for c in runs})
    return labels[0] if len(labels) == 1 else "pooled: " + " + ".join(labels)


def _kept_apart(groups: dict[_Pool, list[_Classified]], chosen: _Pool | None) -> list[str]:
    return [f"{plural(len(runs), 'counted run')} in {pool.describe()} kept apart: runs on other "
            "data "
            "never pool, nor runs of another precision or pipeline unless the study or claim "
            "says `pool_executions: true`"
            for pool, runs in groups.items() if pool != chosen]  # fmt: skip


def _apart(groups: dict[_Pool, list[_Classified]], chosen: _Pool | None) -> dict[str, str]:
    """The runs a verdict kept apart (each by its directory), with how their pool differs
    from the one it used: what the report's glance counts as kept apart, not counted."""
    if chosen is None:
        return {}
    return {str(c.record.path): _versus(pool, chosen)
            for pool, runs in groups.items() if pool != chosen for c in runs}  # fmt: skip


def _versus(pool: _Pool, chosen: _Pool) -> str:
    """How a kept-apart pool differs from the chosen one, in a few words ("bf16 vs fp32";
    "data cccccccccccc vs official release"): what differs only, the claim row says the rest."""
    parts = []
    if pool.execution != chosen.execution:
        mine, theirs = pool.execution.split(", "), chosen.execution.split(", ")
        if len(mine) == len(theirs) == 2 and mine[1] == theirs[1]:  # the same pipeline
            mine, theirs = mine[:1], theirs[:1]
        elif len(mine) == len(theirs) == 2 and mine[0] == theirs[0]:  # the same precision
            mine, theirs = mine[1:], theirs[1:]
        parts.append(f"{', '.join(mine)} vs {', '.join(theirs)}")
    if (pool.data, pool.fingerprint) != (chosen.data, chosen.fingerprint):
        parts.append(f"{_short_data(pool, chosen)} vs {_short_data(chosen, pool)}")
    if pool.device != chosen.device:
        parts.append(f"on {pool.device} vs on {chosen.device}")
    return "; ".join(parts)


def _short_data(pool: _Pool, other: _Pool) -> str:
    """A pool's data as the report names it, short: "official release", with its fingerprint
    where the other pool says official too (two fingerprints are two data sets), or the copy's
    fingerprint ("data cccccccccccc", not the official release), or "mixed data"."""
    # Shown beside the other's: as long as it takes to differ from it (data.shown_apart).
    mine = shown_apart(pool.fingerprint, other.fingerprint)[0]
    if pool.official:
        both = other.official and other.fingerprint != pool.fingerprint
        return "official release" + (f" (data {mine})" if both else "")
    if pool.data.startswith("mixed data"):
        return "mixed data"
    return f"data {mine}" if mine else "data not recorded"


def _on_data(verdict: verdicts.Verdict, pool: _Pool | None) -> verdicts.Verdict:
    """A verdict from runs on a copy of the data, marked as such wherever it is shown."""
    return verdict if pool is None or pool.official else verdicts.on_nonofficial_data(verdict)


def _counted_at_epochs(study: Study, c: _Classified) -> tuple[int, ...]:
    """The epochs of the study's claims on the test error at one epoch that this run, not
    counted otherwise, counts for (_Classified.counts_for)."""
    if c.counted:
        return ()
    epochs = {claim.epoch for claim in study.claims
              if isinstance(claim, Claim) and claim.metric == "test_error_at_epoch"
              and claim.experiment == c.record.experiment
              and c.counts_for(claim.metric, claim.epoch)}  # fmt: skip
    return tuple(sorted(epochs))
