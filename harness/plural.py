"""Counts in words: "1 problem", "2 problems", never "2 problem(s)".

One helper for every command's output (the CLI, `repro status`, `repro validate`, the
report), so that a count reads the same wherever it is written.
"""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """ "1 run", "2 runs", "0 runs"; ``many`` where the plural is not the word with an s
    ("studies")."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


def noun(n: int, word: str, many: str | None = None) -> str:
    """The word alone, as :func:`plural` would write it after ``n``: "file", "files"."""
    return word if n == 1 else many or word + "s"
