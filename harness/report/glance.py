"""The report at a glance: what the verdicts stand on (:func:`_evidence`), the
headlines of each study and of the whole report, and the scoreboard of published numbers
(:func:`_scoreboard`) with its ordering lines.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace

from harness import verdicts
from harness.plural import plural
from harness.report.text import _epochs_text, _fmt
from harness.report.views import (
    PARAMETERS,
    ClaimRow,
    CopyCost,
    EvidenceLine,
    Headline,
    OrderingLine,
    RunView,
    Scoreboard,
    ScoreLine,
    ScoreRow,
    StudyReport,
    WaitingModel,
    _ScoreEntry,
    counted_at_epochs_only,
    counted_in_full,
    set_aside_text,
)
from harness.schema import Study


def _evidence(studies: list[StudyReport], copy_costs: list[CopyCost]) -> list[EvidenceLine]:
    """The runs and evaluations behind the studies shown: how many, how many random seeds,
    how many count and why the others do not (unfinished ones first), on which devices and
    how (shared or fused timings), and on what data (``copy_costs``: what is known of the
    copies' cost)."""
    runs = [(s.name, r) for s in studies for r in s.runs]
    evaluations = [e for s in studies for e in s.evaluations]
    lines = []
    if runs:
        seeds: dict[tuple[str, str], set[int]] = defaultdict(set)
        for study, r in runs:
            seeds[(study, r.experiment)].add(r.seed)
        low, high = min(map(len, seeds.values())), max(map(len, seeds.values()))
        each = f"{low} random seed{'' if high == 1 else 's'}"
        each = each if low == high else f"{low} to {high} random seeds"
        # Counted means a verdict stands on it: a run every verdict kept apart (another
        # precision, pipeline or data than the pool it used) is said apart, not counted.
        every = [r for _, r in runs]
        counted = counted_in_full(every)
        text = f"{plural(len(runs), 'run')} of {plural(len(seeds), 'experiment')} "
        # An adopted run is a copy of its twin's training: with both studies on the page, one
        # training stands as two runs, which the count must not leave the reader to find out.
        adopted = sum(bool(r.shared_with) for _, r in runs)
        shares = f"; {adopted} adopted the training of a twin in another study" if adopted else ""
        text += f"({each} each{shares}), {counted} counted"
        # An unfinished run past a claimed epoch counts there: "0 counted" alone read as if no
        # verdict stood on any run, while one did (the run table says "for ... only" too).
        if early := counted_at_epochs_only(every):
            epochs = tuple(sorted({e for r in early for e in r.counted_at_epochs}))
            text += f" in full, {len(early)} for the test error at {_epochs_text(epochs)} only"
        text += set_aside_text(every)
        # Runs that may yet count are the caveat; the others (stale, override, smoke, damaged,
        # failed) never will, whatever their status, and are counted by why.
        others = Counter(r.why_not.split(":")[0] for _, r in runs
                         if not r.counted and not r.under_way)  # fmt: skip
        if others:
            text += "; not counted: " + ", ".join(f"{n} {why}" for why, n in others.items())
        unfinished = [r for _, r in runs if not r.counted and r.under_way]
        lines.append(EvidenceLine("Runs", text, _unfinished_caveat(unfinished, counted)))
        shared = sum(bool(r.not_solo) for _, r in runs)
        # A solo run moved between devices is no solo timing either (harness.timings.not_solo).
        how = ("shared their device, trained fused or moved between devices"
               if any(len(r.trained_on) > 1 for r in every) else
               "shared their device or trained fused")  # fmt: skip
        lines.append(EvidenceLine(
            "Devices", _devices_text(every),
            f"{shared} of {len(runs)} {how}: their seconds per epoch are not solo timings, and "
            "no speed claim uses them" if shared else "",
        ))  # fmt: skip
    if runs or evaluations:
        parts = []
        for flag, what in ((True, "the official release"), (False, "not the official release"),
                           (None, "not recorded")):  # fmt: skip
            n_runs = sum(r.official_data is flag for _, r in runs)
            n_evaluations = sum(e.official_data is flag for e in evaluations)
            counts = [plural(n_runs, "run")] if n_runs else []
            counts += [plural(n_evaluations, "checkpoint evaluation")] if n_evaluations else []
            if counts:
                parts.append(f"{what}: {' and '.join(counts)}")
        costs = "; ".join(c.words("released weights") for c in copy_costs)
        lines.append(EvidenceLine("Data", "; ".join(parts), (
            f"figures on a copy are not comparable with the sources' ({costs})") if costs else "",
        ))  # fmt: skip
    if evaluations:
        counted = sum(e.counted for e in evaluations)
        devices = ", ".join(sorted({e.device for e in evaluations}))
        lines.append(EvidenceLine(
            "Released weights",
            f"{plural(len(evaluations), 'evaluation')} of released checkpoints, {counted} "
            f"counted, on {devices} (no training, so no random seeds)",
        ))  # fmt: skip
    return lines


def _devices_text(runs: list[RunView]) -> str:
    """Each device once per execution, with how many runs trained on it: "NVIDIA H100 80GB HBM3
    (6 runs): bf16 compiled". Where runs moved between devices each is in every one's count,
    and each device's epochs say how the training split: "A (6 runs, 847 epochs), B (6 runs,
    137 epochs): bf16 compiled; 6 runs moved between devices (in each device's count)"."""
    moved = sum(len(r.trained_on) > 1 for r in runs)
    on: dict[str, dict[str, list[int]]] = defaultdict(dict)  # execution: device: [runs, epochs]
    for r in runs:
        for device, epochs in r.trained_on:
            tally = on[r.precision].setdefault(device, [0, 0])
            tally[0], tally[1] = tally[0] + 1, tally[1] + epochs
    groups = []
    for execution, devices in on.items():
        named = [f"{device} ({plural(n, 'run')}" + (f", {plural(e, 'epoch')})" if moved else ")")
                 for device, (n, e) in devices.items()]  # fmt: skip
        groups.append(f"{', '.join(named)}: {execution}")
    if moved:
        groups.append(f"{plural(moved, 'run')} moved between devices (in each device's count)")
    return "; ".join(groups)


def _unfinished_caveat(unfinished: list[RunView], counted: int) -> str:
    """Runs that may yet count, and where they stand: "6 unfinished (paused) at epochs 138 to
    145 of 164: no verdict uses them yet"."""
    if not unfinished:
        return ""
    status = "/".join(sorted({r.status for r in unfinished}))
    done = sorted(r.epochs_done for r in unfinished)
    total = {r.epochs_total for r in unfinished}
    at = f"epoch {done[0]}" if done[0] == done[-1] else f"epochs {done[0]} to {done[-1]}"
    at += f" of {total.pop()}" if len(total) == 1 and None not in total else ""
    # The line's text says where they count: only where a verdict stands on them there (one
    # kept apart is said kept apart, not counted at that epoch).
    if counted_at_epochs_only(unfinished):
        uses = "not counted in full yet"
    else:
        uses = "no verdict uses them yet" if not counted else "not counted yet"
    return f"{len(unfinished)} unfinished ({status}) at {at}: {uses}"


# A verdict was reached (on any data): what "tested" counts.
JUDGED = {o for o in verdicts.OUTCOMES
          if o not in (verdicts.UNDER_WAY, verdicts.NOT_RUN, verdicts.NOT_COMPARABLE)}  # fmt: skip
HEADLINE_KINDS = ("accuracy", "orderings", "speed", "released weights", "parameter counts")
# The verdict whose colour a parameter count's severity takes.
SEVERITY_TONE = {"counting convention": verdicts.INCONCLUSIVE,
                 "small difference": verdicts.NOT_REPRODUCED,
                 "large difference": verdicts.NOT_REPRODUCED}  # fmt: skip


def _tested(kind: str, rows: list[ClaimRow], verb: str = "tested") -> Headline:
    """How many claims of a kind reached a verdict, and which."""
    seen = Counter(r.verdict for r in rows if r.verdict != verdicts.NOT_RUN)
    parts = [(o, seen[o], o) for o in verdicts.OUTCOMES if seen.get(o)]
    tested = [p for p in parts if p[0] in JUDGED]
    apart = [p for p in parts if p[0] not in JUDGED]  # under way, not comparable
    return Headline(kind, len(rows), sum(r.verdict in JUDGED for r in rows), verb, tested, apart)


def _matching(rows: list[ClaimRow]) -> Headline:
    """Parameter counts: how many match, and how far off the others are."""
    off = Counter(r.severity for r in rows if r.verdict != verdicts.REPRODUCED)
    parts = [(what, off[what], tone) for what, tone in SEVERITY_TONE.items() if off.get(what)]
    done = sum(r.verdict == verdicts.REPRODUCED for r in rows)
    return Headline("parameter counts", len(rows), done, "match", parts)


def _headlines(values, orderings, speed_claims, params, checkpoint_claims) -> list[Headline]:
    weights = [c for c in checkpoint_claims if c.kind == "checkpoint" and c.metric != PARAMETERS]
    counts = params + [c for c in checkpoint_claims if c.metric == PARAMETERS]
    heads = [_tested("accuracy", values), _tested("orderings", orderings),
             _tested("speed", speed_claims), _tested("released weights", weights, "evaluated"),
             _matching(counts)]  # fmt: skip
    return [h for h in heads if h.total]


def _merged_headlines(studies: list[StudyReport]) -> list[Headline]:
    """The studies' headlines added up, kind by kind."""
    merged: dict[str, Headline] = {}
    for h in (h for s in studies for h in s.headlines):
        if h.kind not in merged:
            merged[h.kind] = Headline(h.kind, 0, 0, h.verb, [])
        m = merged[h.kind]
        m.total, m.done = m.total + h.total, m.done + h.done
        m.parts, m.apart = _added(m.parts, h.parts), _added(m.apart, h.apart)
    return [merged[k] for k in HEADLINE_KINDS if k in merged]


def _added(mine: list[tuple[str, int, str]], theirs: list[tuple[str, int, str]]) -> list:
    """Two headlines' (what, how many, tone) parts added up, what by what, in order."""
    tally = {what: [n, tone] for what, n, tone in mine}
    for what, n, tone in theirs:
        tally.setdefault(what, [0, tone])[0] += n
    return [(what, n, tone) for what, (n, tone) in tally.items()]


def _score_entries(study: Study, rows: list[ClaimRow]) -> list[_ScoreEntry]:
    """The value claims (accuracies, losses, speeds, released weights) as scoreboard lines;
    parameter counts and orderings have their own places."""
    entries = []
    for r in rows:
        if r.metric == PARAMETERS:
            continue
        spec = (study.checkpoint(r.experiment) if r.kind == "checkpoint"
                else study.experiment(r.experiment)).model  # fmt: skip
        what = r.short_metric
        if r.kind == "checkpoint":  # a test error is what released weights are judged by
            what = "released weights" + ("" if what == "test error" else f", {what}")
        claimed = (
            f"{r.claimed_stated}{r.unit}"
            if r.claimed_stated
            else _value_text(r.claimed_value, r.unit)
        )
        if r.rule and r.rule != "single run":  # He et al.'s 6.43 is a best of 5, 6.61 a mean
            claimed += f" ({r.rule})"
        line = ScoreLine(what, claimed, r.reproduced
                         if r.reproduced_value is None else _fmt(r.reproduced_value, r.unit),
                         r.n, r.verdict, r.anchor, r.progress)  # fmt: skip
        order = (_family(spec), spec.depth, spec.label())
        entries.append(_ScoreEntry(spec.label(), order, r.source, r.experiment, line,
                                   released=r.kind == "checkpoint"))  # fmt: skip
    return entries


def _family(spec) -> int:
    """Where a model's family goes on the scoreboard: the original ResNets, then
    pre-activation ones, wide ones and plain nets last (by depth within each, so that
    WRN-16-4 does not come before ResNet-20)."""
    if spec.shortcut == "none":
        return 3
    return 2 if spec.width > 1 else 1 if spec.preact else 0


def _value_text(value: float | None, unit: str) -> str:
    return "\u2013" if value is None else f"{value:g}{unit}"


def _scoreboard(studies: list[StudyReport], waiting: list[StudyReport]) -> Scoreboard:
    """The scoreboard of the studies shown, and the models only ``waiting`` studies claim of."""
    entries = [e for s in studies for e in s.score_entries]
    sources = list(dict.fromkeys(e.source for e in entries))
    models = sorted({e.model: e.order for e in entries}.items(), key=lambda kv: kv[1])
    rows = []
    for model, _ in models:
        cells = []
        for source in sources:
            mine = [e for e in entries if e.model == model and e.source == source]
            several = len({e.experiment for e in mine}) > 1
            cells.append([replace(e.line, what=f"{e.experiment}: {e.line.what}") if several
                          else e.line for e in mine])  # fmt: skip
        rows.append(ScoreRow(model, cells))
    orderings = [o for s in studies for o in s.ordering_lines]
    return Scoreboard(sources, rows, orderings, _waiting_models(waiting))


def _waiting_models(studies: list[StudyReport]) -> list[WaitingModel]:
    found: dict[str, tuple[tuple, WaitingModel]] = {}  # model: (where its row goes, the row)
    for s in studies:
        for e in s.score_entries:
            m = found.setdefault(e.model, (e.order, WaitingModel(e.model, [], [])))[1]
            claim = f"{e.source}: {e.line.what} {e.line.claimed}"
            # Released weights are evaluated, never run: said beside the claim, in a table
            # of claims waiting for a run.
            claim += ", waiting for an evaluation" if e.released else ""
            if claim not in m.claims:  # two studies may declare one source's claim
                m.claims.append(claim)
                m.evaluations += e.released
            if s.name not in m.studies:
                m.studies.append(s.name)
    return [m for _, m in sorted(found.values(), key=lambda om: om[0])]


def _ordering_lines(study: Study, rows: list[ClaimRow]) -> list[OrderingLine]:
    """The ordering claims as chains of the nets they compare ("plain-20 < plain-56")."""
    # A row is its claim's by anchor: the rows may leave out claims (a source that is no
    # publication has none in the panel).
    claims = {f"{study.name}-claim-{i}": c for i, c in enumerate(study.claims)}
    lines = []
    for row in rows:
        claim = claims[row.anchor]
        arrow = " < " if claim.direction == "increasing" else " > "
        chain = arrow.join(study.experiment(e).model.label() for e in claim.experiments)
        lines.append(OrderingLine(row.source, row.short_metric, chain, row.verdict, row.anchor,
                                  row.progress, _ordering_note(study, row)))  # fmt: skip
    return lines


def _ordering_note(study: Study, row: ClaimRow) -> str:
    """What the orderings panel says beside a verdict of where runs under way stand."""
    if not row.progress or row.verdict == verdicts.UNDER_WAY:
        return ""
    nets = [study.experiment(e).model.label() for e in row.under_way]
    if row.verdict == verdicts.NOT_RUN and nets:  # the others have not started
        return f"{' and '.join(dict.fromkeys(nets))} under way"
    return "runs under way"
