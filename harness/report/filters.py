"""The template's filters and globals: anchors (:func:`slug`), verdict tones, quoted
statements, signed percentages, tolerance digits, Markdown code spans and which columns are
filled.
"""

from __future__ import annotations

import math
import re

import markupsafe

from harness import verdicts
from harness.report.text import _curly_quotes


def slug(text: str) -> str:
    """An HTML id from a name: what the page's anchors are made of."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())


def _filled(rows: list, attr: str, empty: tuple = (None, "", "\u2013")) -> bool:
    """Whether any row has a value for ``attr``: a column that is all "–" is left out."""
    return any(_get(row, attr) not in empty for row in rows)


def _get(row, attr: str):
    return row.get(attr) if isinstance(row, dict) else getattr(row, attr)


def _tone(outcome: str) -> str:
    """The verdict a colour stands for, on any data (a CSS class suffix)."""
    base = outcome.removesuffix(f" {verdicts.ON_NONOFFICIAL_DATA}")
    return "".join(ch if ch.isalnum() else "-" for ch in base)


def _brief(outcome: str) -> str:
    """A verdict for a scoreboard cell: "not reproduced*" where the page explains the *."""
    base = outcome.removesuffix(f" {verdicts.ON_NONOFFICIAL_DATA}")
    return base + ("*" if base != outcome else "")


def _quoted(statement: str) -> str:
    """A source's words in quotation marks, once: a statement that quotes the source itself
    ('"As the layer increasing, ...", at 56 layers') keeps its own marks, made curly, and is
    not wrapped again."""
    if '"' not in statement:
        return f"\u201c{statement}\u201d"
    return _curly_quotes(statement)


def _signed_percent(fraction: float | None) -> str:
    """A relative difference as "+1.25%" (exactly 0: "0%")."""
    if fraction is None:
        return "\u2013"
    return "0%" if fraction == 0 else f"{100 * fraction:+.2f}%"


def _tolerance_digits(tolerance: float | None) -> int:
    """Decimals that show a tolerance to two significant figures, at least two: released
    weights' 0.035 (rounding plus 3 test images) read "± 0.03" beside a reason that said
    0.035, and its range 8.23 – 8.30% was not 8.27 ± 0.035."""
    if tolerance is None or not math.isfinite(tolerance) or tolerance <= 0:
        return 2
    return min(4, max(2, 1 - math.floor(math.log10(tolerance))))


def _code_spans(text: str, *, names: bool = False) -> markupsafe.Markup:
    """Text written with Markdown's code spans (the rules' `pool_executions: true`, a study's
    `repro evaluate`) as HTML: escaped, each span in <code>, no backticks left on the page,
    and the quotation marks outside the spans typographic (_curly_quotes: a study file's
    notes are written with straight ones); ``names``: the names outside the spans kept whole
    (_names)."""
    plain = _names if names else markupsafe.escape
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: not a code span, leave it as written
        return plain(_curly_quotes(str(text)))
    out, quotes = [], 0  # the quotation marks so far outside the spans: which one opens
    for i, part in enumerate(parts):
        if i % 2:
            out.append(markupsafe.Markup("<code>{}</code>").format(part))
        else:
            out.append(plain(_curly_quotes(part, quotes)))
            quotes += part.count('"')
    return markupsafe.Markup("").join(out)


def _words(text: str) -> markupsafe.Markup:
    """A command, escaped, each of its words in a box that a line breaks around (CSS .word):
    a browser broke "--data-dir" after its first hyphen, where a reader sees two options."""
    return markupsafe.Markup(" ").join(
        markupsafe.Markup('<span class="word">{}</span>').format(word) for word in str(text).split()
    )


# A word longer than this is no name (a hash, a path): left to break where a line must.
LONGEST_NAME = 40


def _names(text: str) -> markupsafe.Markup:
    """Text, escaped, each word with a hyphen in it (a model's or an experiment's name:
    "ResNet-110", "tseng-resnet110") in a box no line breaks inside (CSS .name), the text
    still breaking at its spaces: in a narrow column a browser broke "ResNet-110" as
    "ResNet-" over "110", and "tseng-resnet20" as "tseng-" over "resnet20", two names to a
    reader. A path or a word longer than LONGEST_NAME is left as it is."""
    parts = re.split(r"(\s+)", str(text))
    return markupsafe.Markup("").join(
        markupsafe.Markup('<span class="name">{}</span>').format(part)
        if "-" in part and "/" not in part and len(part) <= LONGEST_NAME
        else markupsafe.escape(part)
        for part in parts
    )
