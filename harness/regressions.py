"""Comparing two claim tables: which claims held before and no longer do (the nightly check).

A claim "holds" when its verdict is reproduced or better than claimed, on the official data
(a verdict "on non-official data" does not hold: a night on a copy of CIFAR-10 loses
claims). Claims are matched on what they are about, their ``claim_id``
(:func:`harness.claimtable.claim_id`), so a claim reworded since the baseline (where the
source says it, an ordering's statement) is the same claim, listed as reworded; a claim about
something else (another experiment, metric, rule) is new, and the old one is lost. A table
from before the ``claim_id`` column is matched on the claims' text (study, kind, experiment,
source, place, metric, rule, claimed value), as then.

A table that lost rows would silently drop claims from the comparison, so a table whose
row count (:data:`harness.claimtable.ROWS`) disagrees with its rows is refused.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from csv import Error as csv_error
from csv import reader as csv_rows
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import claimtable, verdicts
from harness.plural import noun, plural

HOLDS = (verdicts.REPRODUCED, verdicts.BETTER)
# The text of a claim: what matched claims before they had an identity, and what a
# rewording changes.
KEY = ["study", "kind", "experiment", "source", "where", "metric", "rule", "claimed"]
IDENTITY = ["study", claimtable.ID]


NOT_A_TABLE = "is not a claim table (write one with `repro report --format json` or csv)"
WRITE_AGAIN = "fetch it again, or write it again with `repro report`"


@dataclass(frozen=True)
class ClaimTable:
    """A claim table as read, one row per claim, and what could not be checked in it."""

    path: Path
    frame: pd.DataFrame
    notes: list[str]


def read_claims(path: Path) -> ClaimTable:
    """A claim table from ``repro report --format json|csv``; anything else (text, HTML, an
    empty file, other JSON, a table cut short) is a ValueError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} {NOT_A_TABLE}: cannot read it as text ({exc})") from None
    if not text.strip():
        raise ValueError(f"{path} {NOT_A_TABLE}: the file is empty")
    csv = path.suffix == ".csv"
    if csv:
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            if (row := _row_left_open(text)) is not None:
                raise ValueError(f"{path} is cut short: claim row {row} ends inside a quoted "
                                 f"field (cut mid-row?); {WRITE_AGAIN}") from None  # fmt: skip
            raise ValueError(f"{path} {NOT_A_TABLE}: not readable as CSV ({exc})") from None
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            if _cut_json(text):
                raise ValueError(
                    f"{path} is cut short: its JSON ends before the table does "
                    f"(a download or copy that stopped?); {WRITE_AGAIN}"
                ) from None
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
    notes = []
    if claimtable.ROWS in frame.columns:
        _check_complete(frame, path)
    elif csv:  # JSON cut anywhere no longer parses: its closing bracket is its count
        notes.append(f"note: {path} has no row count (written by an older repro): whether it "
                     "was cut short cannot be checked")  # fmt: skip
    missing = [c for c in [*KEY, "verdict"] if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} {NOT_A_TABLE}: no {noun(len(missing), 'column')} {', '.join(missing)}"
        )
    _check_verdicts(frame, path)
    if "reason" not in frame.columns:  # it only words the report of a lost claim
        frame["reason"] = ""
    if claimtable.ID in frame.columns:
        _check_identities(frame, path)
    else:
        notes.append(f"note: {path} has no {claimtable.ID} column (written by an older repro): "
                     "claims are matched by their wording, so a claim reworded since reads as "
                     "lost and a new one")  # fmt: skip
    frame = frame.astype({c: str for c in [*KEY, claimtable.ID] if c in frame.columns})
    if claimtable.ID in frame.columns:  # an older table's ids of orderings, in today's form
        frame[claimtable.ID] = frame[claimtable.ID].map(claimtable.canonical)
    return ClaimTable(path, _one_row_per_claim(frame, path), notes)


# The last token of a JSON text cut inside a number or a true, false or null.
_LAST_TOKEN = re.compile(r"(-?[0-9][0-9.eE+-]*|-|[a-z]+)$")
_NUMBER_BEGUN = re.compile(r"-?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][-+]?[0-9]*)?")
_LITERALS = ("true", "false", "null")


def _cut_json(text: str) -> bool:
    """Whether ``text``, which json refuses, is the beginning of a JSON document: what a
    download or copy that stopped leaves (json says only "Expecting ',' delimiter" or
    "Unterminated string"). It is where json stops at the end of the text, or where the text
    ends in a string, number or literal cut short and, that token completed, json stops at
    the end; anything else (text, HTML, a stray character, data after a whole document) is
    not."""
    text = text.rstrip()
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            return True
        token = _LAST_TOKEN.search(text)
        if exc.msg.startswith("Unterminated string"):  # open from exc.pos to the end
            whole = text[: exc.pos] + '""'
        elif token is None or token.start() > exc.pos:
            return False
        elif _NUMBER_BEGUN.fullmatch(token[0]):
            whole = text + ("0" if token[0][-1] in "-+.eE" else "")
        elif word := next((w for w in _LITERALS if w.startswith(token[0])), None):
            whole = text[: token.start()] + word
        else:
            return False
        try:
            json.loads(whole)
        except json.JSONDecodeError as again:  # stops at the end, as a cut between tokens
            return again.pos >= len(whole)
        return True
    return False  # whole: not cut


def _row_left_open(text: str) -> int | None:
    """The claim row (1 = the first after the header) that a CSV ends inside a quoted field
    of, or None. A table cut there is cut short like one cut between rows, but pandas refuses
    it as unreadable ("EOF inside string"), which says neither that nor what to do. The CSV
    we write quotes a field with a comma or quote in it and doubles the quotes inside, so
    whole, it holds an even number of them; an odd number leaves the last field open."""
    if text.count('"') % 2 == 0:
        return None
    try:
        rows = len(list(csv_rows(io.StringIO(text))))  # lenient: the open field runs to the end
    except csv_error:  # a NUL byte, a field past the csv module's limit: no table we wrote
        return None
    return rows - 1 if rows > 1 else None


def _check_complete(frame: pd.DataFrame, path: Path) -> None:
    """Every row says how many rows were written. Fewer rows: some were lost on the way (a
    download or copy that stopped between two); a row without its count lost its end (the
    count is its last field); a row with another count came from another table."""
    counts = frame[claimtable.ROWS].fillna("").astype(str).str.strip()
    written = counts.iloc[0]
    if not written.isdigit():
        raise ValueError(f"{path} {NOT_A_TABLE}: its {claimtable.ROWS} reads {written!r}, not a "
                         f"count of rows; {WRITE_AGAIN}")  # fmt: skip
    if len(frame) < int(written):
        raise ValueError(f"{path} is cut short: {plural(len(frame), 'claim row')} of the {written} "
                         f"written (a download or copy that stopped?); {WRITE_AGAIN}")  # fmt: skip
    if len(frame) > int(written):
        raise ValueError(f"{path} has {len(frame)} claim rows but {written} were written: rows "
                         f"added by hand, or two tables joined? {WRITE_AGAIN}")  # fmt: skip
    odd = next(((i + 1, c) for i, c in enumerate(counts) if c != written), None)
    if odd and not odd[1]:
        raise ValueError(f"{path} is cut short: claim row {odd[0]} ends before its "
                         f"{claimtable.ROWS} (cut mid-row?); {WRITE_AGAIN}")  # fmt: skip
    if odd:
        raise ValueError(f"{path} is cut short or edited: claim row {odd[0]} says {odd[1]} "
                         f"rows were written, the first says {written}; {WRITE_AGAIN}")  # fmt: skip


def _check_identities(frame: pd.DataFrame, path: Path) -> None:
    blank = [i + 1 for i, c in enumerate(frame[claimtable.ID].fillna("").astype(str)) if not c]
    if blank:
        raise ValueError(f"{path} {NOT_A_TABLE}: claim row {blank[0]} has no "
                         f"{claimtable.ID} ({plural(len(blank), 'such row')}); "
                         f"{WRITE_AGAIN}")  # fmt: skip


def _one_row_per_claim(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A claim given twice (repeated in a study file) counts once; one claim with two
    verdicts cannot be matched with the other table's, so it is refused, not guessed: by its
    text, and by its identity where the table has one (two claims about the same thing, told
    apart only by their wording)."""
    frame = frame.drop_duplicates(subset=[c for c in [*KEY, claimtable.ID, "verdict"]
                                          if c in frame.columns])  # fmt: skip
    for key in (KEY, IDENTITY) if claimtable.ID in frame.columns else (KEY,):
        torn = frame.drop_duplicates(subset=[*key, "verdict"])
        torn = torn[torn.duplicated(key, keep=False)]
        if not torn.empty:
            row = torn.iloc[0]
            rows = torn[(torn[key] == row[key]).all(axis=1)]
            raise ValueError(
                f"{path}: claim {_name(row)} has {len(rows)} rows with different verdicts "
                f"({', '.join(map(repr, rows['verdict']))}); claims are matched on "
                f"{', '.join(key)}, so these cannot be told apart: make them differ in the "
                "study file (give each its own `id:`)"
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
                         f"({plural(len(blank), 'such row')}); was the file cut short or edited? "
                         "write it again with `repro report`")  # fmt: skip
    unknown = sorted(set(words) - set(verdicts.OUTCOMES))
    if unknown:
        raise ValueError(f"{path} {NOT_A_TABLE}: unknown {noun(len(unknown), 'verdict')} "
                         f"{', '.join(map(repr, unknown))} (it knows "
                         f"{', '.join(map(repr, verdicts.OUTCOMES))}); a table from another "
                         "version of repro? render both with this one")  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    # Held before, not now (or gone): the claim's text (tonight's where it is still there),
    # verdict_before, verdict_now, reason.
    lost: pd.DataFrame
    kept: int
    gained: int
    # Claims in both tables whose text changed: (tonight's text, [(column, before, now)]).
    reworded: list[tuple[pd.Series, list[tuple[str, str, str]]]]


def compare(before: pd.DataFrame, now: pd.DataFrame) -> Comparison:
    """Match the claims of two tables on their identity where both have one, else on their
    text, and sort them into kept, gained, lost and reworded."""
    by_id = claimtable.ID in before.columns and claimtable.ID in now.columns
    key = IDENTITY if by_id else KEY
    # One claim told twice (in other words, or two ids with one text): read_claims refused
    # any such rows that disagree on the verdict, so the first stands for all.
    before, now = before.drop_duplicates(key), now.drop_duplicates(key)
    columns = list(dict.fromkeys([*key, *KEY, "verdict"]))
    now = now if "reason" in now.columns else now.assign(reason="")
    merged = before[columns].merge(now[[*columns, "reason"]], on=key, how="outer",
                                   suffixes=("_before", "_now"), indicator=True)  # fmt: skip
    text = {c: merged[c] if c in key else merged[f"{c}_now"].fillna(merged[f"{c}_before"])
            for c in KEY}  # fmt: skip
    held_before = merged["verdict_before"].isin(HOLDS)
    holds_now = merged["verdict_now"].isin(HOLDS)
    lost = pd.DataFrame(text).assign(
        verdict_before=merged["verdict_before"],
        verdict_now=merged["verdict_now"].fillna("missing"),
        reason=merged["reason"].fillna(""),
    )[held_before & ~holds_now]
    reworded = []
    for i in merged.index[merged["_merge"] == "both"] if by_id else []:
        changes = [(c, merged.at[i, f"{c}_before"], merged.at[i, f"{c}_now"])
                   for c in KEY if c not in key]  # fmt: skip
        changes = [(c, b, n) for c, b, n in changes if b != n]
        if changes:
            reworded.append((pd.DataFrame(text).loc[i], changes))
    return Comparison(lost=lost, kept=int((held_before & holds_now).sum()),
                      gained=int((holds_now & ~held_before).sum()),
                      reworded=reworded)  # fmt: skip


def describe(result: Comparison, notes: Sequence[str] = ()) -> str:
    lines = [*notes]
    # the verb agrees with its count, as the noun does: "1 claim ... still holds"
    lost = len(result.lost)
    lines.append(f"{plural(result.kept, 'claim')} held before and still "
                 f"{noun(result.kept, 'holds', 'hold')}; {result.gained} "
                 f"{noun(result.gained, 'holds', 'hold')} now that did not; "
                 f"{lost} no longer {noun(lost, 'holds', 'hold')}.")  # fmt: skip
    for _, row in result.lost.iterrows():
        lines.append(
            f"  NO LONGER HOLDS: {_name(row)}: {row['verdict_before']} -> {row['verdict_now']}"
            + (f" ({row['reason']})" if row["reason"] else "")
        )
    if result.reworded:
        lines.append(f"{plural(len(result.reworded), 'claim')} reworded since, the same claims "
                     f"(matched on what they are about, their {claimtable.ID}):")  # fmt: skip
    for row, changes in result.reworded:
        said = "; ".join(f"{c} {b!r} -> {n!r}" for c, b, n in changes)
        lines.append(f"  REWORDED: {_name(row)}: {said}")
    return "\n".join(lines)
