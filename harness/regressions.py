"""Comparing two claim tables: which claims held before and no longer do (the nightly check).

A claim "holds" when its verdict is reproduced or better than claimed, on the official data
(a verdict "on non-official data" does not hold: a night on a copy of CIFAR-10 loses
claims). Claims are matched on what they claim (study, kind, experiment, source, place,
metric, rule, claimed value), so a claim added or reworded since the baseline is new, not a
regression.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import verdicts

HOLDS = (verdicts.REPRODUCED, verdicts.BETTER)
KEY = ["study", "kind", "experiment", "source", "where", "metric", "rule", "claimed"]


NOT_A_TABLE = "is not a claim table (write one with `repro report --format json` or csv)"


def read_claims(path: Path) -> pd.DataFrame:
    """A claim table from ``repro report --format json|csv``; anything else (text, HTML, an
    empty file, other JSON) is a ValueError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} {NOT_A_TABLE}: cannot read it as text ({exc})") from None
    if not text.strip():
        raise ValueError(f"{path} {NOT_A_TABLE}: the file is empty")
    if path.suffix == ".csv":
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ValueError(f"{path} {NOT_A_TABLE}: not readable as CSV ({exc})") from None
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            start = text.strip().splitlines()[0][:20]
            raise ValueError(f"{path} {NOT_A_TABLE}: not JSON ({exc.msg} at line {exc.lineno}; "
                             f"it begins {start!r})") from None  # fmt: skip
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{path} {NOT_A_TABLE}: JSON, but not a list of claim rows")
        if not rows:
            raise ValueError(f"{path} {NOT_A_TABLE}: an empty list, no claims to compare")
        frame = pd.DataFrame(rows)
    if frame.empty:  # a CSV of the header alone, like JSON's empty list
        raise ValueError(f"{path} {NOT_A_TABLE}: a header and no rows, no claims to compare")
    missing = [c for c in [*KEY, "verdict"] if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} {NOT_A_TABLE}: no column(s) {', '.join(missing)}")
    _check_verdicts(frame, path)
    if "reason" not in frame.columns:  # it only words the report of a lost claim
        frame["reason"] = ""
    return _one_row_per_claim(frame.astype({c: str for c in KEY}), path)


def _one_row_per_claim(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A claim given twice (repeated in a study file) counts once; one claim with two
    verdicts cannot be matched with the other table's, so it is refused, not guessed."""
    frame = frame.drop_duplicates(subset=[*KEY, "verdict"])
    torn = frame[frame.duplicated(KEY, keep=False)]
    if not torn.empty:
        row = torn.iloc[0]
        rows = torn[(torn[KEY] == row[KEY]).all(axis=1)]
        raise ValueError(
            f"{path}: claim {_name(row)} has {len(rows)} rows with different verdicts "
            f"({', '.join(map(repr, rows['verdict']))}); claims are matched on "
            f"{', '.join(KEY)}, so these cannot be told apart: make them differ in the study file"
        )
    return frame


def _name(row: pd.Series) -> str:
    return (f"{row['study']}: {row['experiment']} {row['metric']} (claimed {row['claimed']}, "
            f"{row['source']}, {row['where']})")  # fmt: skip


def _check_verdicts(frame: pd.DataFrame, path: Path) -> None:
    """Every row has one of this version's verdicts. A verdict it does not know (another
    version's words, a row cut short or edited) would read as "did not hold" in a baseline, so
    the claim could never be lost and the check would pass without having checked."""
    words = frame["verdict"].fillna("").astype(str)
    blank = [i + 1 for i, w in enumerate(words) if not w.strip()]
    if blank:
        raise ValueError(f"{path} {NOT_A_TABLE}: claim row {blank[0]} has no verdict "
                         f"({len(blank)} such row(s)); was the file cut short or edited? "
                         "write it again with `repro report`")  # fmt: skip
    unknown = sorted(set(words) - set(verdicts.OUTCOMES))
    if unknown:
        raise ValueError(f"{path} {NOT_A_TABLE}: unknown verdict(s) "
                         f"{', '.join(map(repr, unknown))} (it knows "
                         f"{', '.join(map(repr, verdicts.OUTCOMES))}); a table from another "
                         "version of repro? render both with this one")  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    lost: pd.DataFrame  # held before, not now (or gone): with verdict_before, verdict_now
    kept: int
    gained: int


def compare(before: pd.DataFrame, now: pd.DataFrame) -> Comparison:
    merged = before[[*KEY, "verdict"]].merge(
        now[[*KEY, "verdict", "reason"]], on=KEY, how="left", suffixes=("_before", "_now")
    )
    held_before = merged["verdict_before"].isin(HOLDS)
    holds_now = merged["verdict_now"].isin(HOLDS)
    lost = merged[held_before & ~holds_now].fillna({"verdict_now": "missing", "reason": ""})
    gained_frame = now.merge(before[[*KEY, "verdict"]], on=KEY, how="left",
                             suffixes=("", "_before"))  # fmt: skip
    gained = gained_frame["verdict"].isin(HOLDS) & ~gained_frame["verdict_before"].isin(HOLDS)
    return Comparison(lost=lost, kept=int((held_before & holds_now).sum()),
                      gained=int(gained.sum()))  # fmt: skip


def describe(result: Comparison) -> str:
    lines = [f"{result.kept} claim(s) held before and still hold; {result.gained} hold now "
             f"that did not; {len(result.lost)} no longer hold."]  # fmt: skip
    for _, row in result.lost.iterrows():
        lines.append(
            f"  NO LONGER HOLDS: {_name(row)}: {row['verdict_before']} -> {row['verdict_now']}"
            + (f" ({row['reason']})" if row["reason"] else "")
        )
    return "\n".join(lines)
