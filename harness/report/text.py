"""Figures, counts and sources written as words, for every part of the report: "8.27%",
"2 runs", "epochs 60 and 90", "He et al. 2016", and study files' quotation marks as the page
prints its own (“...”).
"""

from __future__ import annotations

import math


def _epochs_text(epochs: tuple[int, ...]) -> str:
    """ "epoch 90", "epochs 60 and 90"."""
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    return f"epochs {', '.join(map(str, epochs[:-1]))} and {epochs[-1]}"


def _source_label(source) -> str:
    """A short citation: "He et al. 2016", "Muellerklein"; the full one is listed above."""
    authors = [a.strip() for a in source.authors.replace(" and ", ",").split(",") if a.strip()]
    first = authors[0].split()[-1] if authors else source.title
    names = (
        authors[0]
        if len(authors) == 1
        else (f"{first} and {authors[1].split()[-1]}" if len(authors) == 2 else f"{first} et al.")
    )
    return f"{names} {source.year}" if source.year else names


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    if unit == "" and abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) < 0.5 * 10**-digits:
        value = 0.0  # no "-0.00"
    return f"{value:.{digits}f}{unit}"


def _curly_quotes(text: str, before: int = 0) -> str:
    """Straight double quotation marks as opening and closing ones, in turn, as the page
    writes its own: a study file's notes and places ("Figure 4 ("90.pth")") sat straight
    beside them. ``before``: how many the text had before this part (a part between code
    spans), so that a quotation around a code span still closes."""
    parts = text.split('"')
    return "".join(part + ("\u201c\u201d"[(before + i) % 2] if i < len(parts) - 1 else "")
                   for i, part in enumerate(parts))  # fmt: skip
