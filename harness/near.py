"""Which of the names there are a mistyped name was meant to be: the "did you mean" of the
messages about a study's names (keys, experiments, sources, recipes, values), model names
and ``--only``, by one rule, so that the same slip gets the same hint wherever it is made.
(File paths are compared by harness.arguments without their extensions, a rule of their own.)"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


def one_slip_away(word: str, alphabet: str) -> set[str]:
    """Every string one character dropped, added, changed (to one of ``alphabet``) or two
    neighbours swapped away from ``word``."""
    out = set()
    for i in range(len(word) + 1):
        head, tail = word[:i], word[i:]
        if tail:
            out.add(head + tail[1:])
        if len(tail) > 1:
            out.add(head + tail[1] + tail[0] + tail[2:])
        for c in alphabet:
            out.add(head + c + tail)
            if tail:
                out.add(head + c + tail[1:])
    out.discard(word)
    return out


def near_names(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """Up to ``n`` of ``choices`` that ``word`` is probably a slip for, the likeliest first.

    A name one slip away always is. Beyond that, difflib's likeness counts only between names
    whose numbers agree (one's are among the other's): the numbers of a name are a depth, a
    width or a year, so ``park-resnet20`` is no slip for ``he-resnet110`` or ``mk-preresnet110``
    however many letters they share, while ``he-resnet-110`` is one for ``he2016-resnet110``.
    """
    choices = list(dict.fromkeys(choices))
    alphabet = "".join(sorted(set("".join(choices))))
    slips = one_slip_away(word, alphabet)
    numbers = _numbers(word)

    def likeness(name: str) -> float:
        return difflib.SequenceMatcher(None, word, name).ratio()

    def numbers_agree(name: str) -> bool:
        theirs = _numbers(name)
        return numbers <= theirs or theirs <= numbers

    one_slip = sorted(
        (c for c in choices if c in slips),
        # A slip in the letters keeps the numbers as written: those first.
        key=lambda c: (_numbers(c) != numbers, -likeness(c)),
    )
    alike = [c for c in choices if c not in slips and c != word and numbers_agree(c)]
    close = difflib.get_close_matches(word, alike, n=n, cutoff=0.6)
    return (one_slip + close)[:n]


def listing(names: Iterable[str], limit: int = 12, quote: bool = True) -> str:
    """``names`` joined with commas, the first ``limit`` of them and how many more: a study
    may declare dozens, and a message that lists them all hides its first line."""
    names = list(names)
    shown = [repr(n) if quote else n for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more


def _numbers(name: str) -> set[str]:
    return set(re.findall(r"\d+", name))
