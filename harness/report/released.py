"""Released checkpoints: which evaluation of the published weights counts for a claim
(:func:`_checkpoint_row`), the checkpoints, layouts and evaluations the page lists, and what
a copy of the data costs the same weights (:func:`_copy_penalty`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness import verdicts
from harness.describe import parameter_count
from harness.metrics import METRICS, short_label
from harness.plural import plural
from harness.report.claims import _claimed_text, _params_row, _reproduced_text
from harness.report.counting import _data_of, _is_error
from harness.report.runs import _in_store
from harness.report.views import (
    OUR_REFERENCE,
    STATED_REFERENCE,
    CheckpointView,
    ClaimRow,
    EvaluationView,
    LayoutView,
)
from harness.results import EvaluationRecord
from harness.schema import CIFAR10_TEST_IMAGES, CheckpointSpec, Claim, Study

# A released checkpoint's claims: an evaluation is one value of the claim's metric, judged by
# verdicts.judge_fixed_weights (the claim's rounding plus a few images: no seed noise), and
# one made on a copy of the data is marked so (on_nonofficial_data).
# What differs is only which evaluation counts: one whose declaration (file, model, layout,
# normalisation) is the study's current one, preferring the official release.

EVALUATED_WITH = "fp32, evaluation of released weights"
# A checkpoint has no epochs of ours: its figures are of the weights as released.
CHECKPOINT_LABELS = {"test_error": "test error", "test_accuracy": "test accuracy"}


@dataclass
class _Judged:
    record: EvaluationRecord
    counted: bool
    why_not: str

    @property
    def official(self) -> bool:
        return self.record.data.get("official") is True


def _classify_evaluations(study: Study, evaluations: list[EvaluationRecord]) -> list[_Judged]:
    from harness.evaluate import declaration, declaration_hash

    specs = {c.name: c for c in study.checkpoints}
    out = []
    for e in evaluations:
        spec = specs.get(e.checkpoint)
        if spec is None:
            out.append(_Judged(e, False, "checkpoint no longer in the study"))
            continue
        if e.record is None:
            out.append(_Judged(e, False, f"damaged: {e.damage}"))
            continue
        sha = spec.sha256 or ((e.record.get("file") or {}).get("sha256") or "")
        expected = declaration_hash(declaration(study, spec, sha))
        error = e.record.get("test_error")
        if e.record.get("config_hash") != expected:
            out.append(_Judged(e, False, "stale: the study's declaration of it changed since"))
        elif not isinstance(error, int | float) or not (math.isfinite(error)
                                                        and _is_error(error)):  # fmt: skip
            out.append(_Judged(e, False, "its record has no test error in 0..100%"))
        elif wrong := _disagreement(e.record):
            out.append(_Judged(e, False, f"damaged: {wrong}; never counted: evaluate it again "
                                         "with `repro evaluate`"))  # fmt: skip
        else:
            out.append(_Judged(e, True, ""))
    return out


def _disagreement(record: dict) -> str:
    """How an evaluation's test error disagrees with the counts it was computed from
    (harness.evaluate: wrong images over images), or with the test set it names: a test error
    edited after the evaluation, or one of part of the test set; "" where they agree."""
    error, images, wrong = (record.get(k) for k in ("test_error", "images", "wrong"))
    if isinstance(images, int) and isinstance(wrong, int):
        counted = 100.0 * wrong / images if images > 0 else math.nan
        if not math.isclose(error, counted, rel_tol=1e-9, abs_tol=1e-9):
            return (f"its test error {error:g}% is not its {wrong:,} wrong of {images:,} "
                    "images")  # fmt: skip
    if (
        (record.get("data") or {}).get("official") is True
        and isinstance(images, int)
        and (images != CIFAR10_TEST_IMAGES)
    ):
        return (f"evaluated on {images:,} images, where the official release's test set has "
                f"{CIFAR10_TEST_IMAGES:,}")  # fmt: skip
    return ""


def _chosen_evaluation(judged: list[_Judged], checkpoint: str) -> tuple[_Judged | None, list]:
    """The evaluation a claim uses (official data first, then the latest), and the others."""
    counted = [j for j in judged if j.counted and j.record.checkpoint == checkpoint]
    if not counted:
        return None, []
    counted.sort(key=lambda j: (j.official, j.record.value("finished") or ""), reverse=True)
    return counted[0], counted[1:]


def _checkpoint_row(study, path: str, claim: Claim, judged: list[_Judged], anchor,
                    source_label) -> ClaimRow:  # fmt: skip
    if claim.metric == "params":
        return _params_row(study, claim, anchor, source_label, kind="checkpoint")
    metric = METRICS[claim.metric]
    chosen, others = _chosen_evaluation(judged, claim.checkpoint)
    value = None
    if chosen is not None:
        error = chosen.record.value("test_error")
        value = 100.0 - error if claim.metric == "test_accuracy" else error
    repro = verdicts.apply_rule([value] if value is not None else [], claim.rule,
                                metric.lower_is_better)  # fmt: skip
    if repro is None:
        # The study file as given, which a user can run as it stands (not the study's name).
        verdict = verdicts.Verdict(verdicts.NOT_RUN, f"not evaluated yet: `repro evaluate {path}` "
                                   "(no training needed)")  # fmt: skip
    else:
        verdict = verdicts.judge_fixed_weights(claim, repro.value)
        if not chosen.official:
            verdict = verdicts.on_nonofficial_data(verdict)
    data = _data_of(chosen.record.data)[1] if chosen else ""
    notes = [*filter(None, [claim.note])]
    if chosen is not None:
        where = _evaluated_on(chosen.record.data)
        notes.append(f"evaluated {chosen.record.value('finished')} {where}: "
                     f"{_in_store(chosen.record.path)}")  # fmt: skip
        metadata = (chosen.record.value("file") or {}).get("metadata") or {}
        notes += [f"the file itself records {k} = {v:.6g}" for k, v in metadata.items()
                  if isinstance(v, int | float)]  # fmt: skip
    notes += [f"also evaluated {_evaluated_on(o.record.data)}: test error "
              f"{o.record.value('test_error'):.2f}% (not used: the official release is "
              "preferred, then the latest)" for o in others]  # fmt: skip
    reasons = Counter(j.why_not for j in judged
                      if j.record.checkpoint == claim.checkpoint and not j.counted)  # fmt: skip
    notes += [f"{plural(n, 'evaluation')} not counted: {why}" for why, n in sorted(reasons.items())]
    unit = metric.unit
    return ClaimRow(
        study=study.name, anchor=anchor, kind="checkpoint", experiment=claim.checkpoint,
        source=source_label[claim.source], where=claim.where,
        metric=CHECKPOINT_LABELS[claim.metric], unit=unit,
        claimed=_claimed_text(claim, unit), claimed_value=claim.value, claimed_std=claim.std,
        claimed_stated=claim.stated(),
        rule=str(claim.rule), reproduced=_reproduced_text(repro, unit),
        reproduced_value=repro.value if repro else None,
        rule_applied=repro.rule_applied if repro else "", n=repro.n if repro else 0,
        minimum=repro.minimum if repro else None, maximum=repro.maximum if repro else None,
        std=None, difference=verdict.difference, tolerance=verdict.tolerance,
        verdict=verdict.outcome, reason=verdict.reason, notes=notes,
        interval_low=verdict.interval[0] if verdict.interval else None,
        interval_high=verdict.interval[1] if verdict.interval else None,
        execution=EVALUATED_WITH if chosen else "", data=data,
        short_metric=short_label(claim.metric),
    )  # fmt: skip


def _evaluated_on(data: dict) -> str:
    """Where an evaluation ran, after "evaluated": "on the official release", or "on a copy
    that is not the official release (data ccecff3e0fe7)" (the banner's words; the data's
    name alone read "evaluated on not the official release")."""
    official, text = _data_of(data)
    return "on the official release" if official else f"on a copy that is {text}"


def _checkpoint_view(study: Study, spec: CheckpointSpec) -> CheckpointView:
    norm = spec.normalization
    normalization = norm.kind + (f" (mean {list(norm.mean)}, std {list(norm.std)})"
                                 if norm.mean is not None else "")  # fmt: skip
    return CheckpointView(
        name=spec.name,
        model=spec.model_name or "(spec)",
        architecture=f"depth {spec.model.depth}, {spec.model.describe()}",
        params=parameter_count(spec.model),
        origin=spec.url or spec.path or "",
        sha256=spec.sha256 or "(not declared: recorded when evaluated)",
        layout=spec.layout,
        normalization=normalization,
        notes=[n for n in (spec.note,) if n],
    )


def _layout_view(name: str, layout) -> LayoutView:
    from harness.checkpoints import TRANSFORMS

    return LayoutView(
        name=name,
        description=layout.description or "",
        strip_prefix=layout.strip_prefix or "",
        state_dict_key=layout.state_dict_key or "(the file is the state dict)",
        rules=[f"{r.pattern} \u2192 {r.to}" for r in layout.rules],
        transforms=[f"{t}: {TRANSFORMS[t].description}" for t in layout.transforms],
    )


def _evaluation_view(j: _Judged) -> EvaluationView:
    r = j.record
    env = r.value("environment") or {}
    file = r.value("file") or {}
    return EvaluationView(
        name=r.name,
        checkpoint=r.checkpoint,
        counted=j.counted,
        why_not=j.why_not,
        test_error=r.value("test_error"),
        official_data=r.data.get("official"),
        data=_data_of(r.data)[1] if r.record else "–",
        device=env.get("device_name", "–"),
        seconds=r.value("seconds"),
        finished=r.value("finished") or "",
        command=_command_text(env.get("command") or ""),
        path=_in_store(r.path),
        file=f"sha256 {file.get('sha256', '?')[:16]}, from the {file.get('origin', '?')}",
    )


def _command_text(command: str) -> str:
    """The recorded command as a person types it: `repro ...`, not the script's path."""
    parts = command.split(" ", 1)
    if parts and Path(parts[0]).name in ("repro", "__main__.py"):
        return "repro" + (f" {parts[1]}" if len(parts) > 1 else "")
    return command


def _copy_penalty(judged: list[_Judged], study: Study) -> list[dict]:
    """Each checkpoint evaluated on a copy of the data, against the same weights on the
    official release: our own evaluation where there is one, else the source's stated test
    error (a claim on the very weights evaluated). A measured figure, with where and how."""
    stated = {c.checkpoint: c.value for c in study.claims
              if isinstance(c, Claim) and c.checkpoint and c.metric == "test_error"}  # fmt: skip
    rows = []
    for j in judged:
        if not j.counted or j.official:
            continue
        ours = [o for o in judged if o.counted and o.official
                and o.record.checkpoint == j.record.checkpoint]  # fmt: skip
        if ours:
            reference, kind = ours[0].record.value("test_error"), OUR_REFERENCE
        elif j.record.checkpoint in stated:
            reference, kind = stated[j.record.checkpoint], STATED_REFERENCE
        else:
            continue
        view = _evaluation_view(j)
        error = j.record.value("test_error")
        rows.append({
            "study": study.name, "checkpoint": j.record.checkpoint,
            "data": (j.record.data.get("dataset_fingerprint") or "")[:12],
            "copy_error": error, "reference": reference, "reference_kind": kind,
            "penalty": error - reference, "finished": view.finished, "device": view.device,
            "command": view.command,
        })  # fmt: skip
    return rows
