"""Which of ``--only``'s names each study of a command runs. Given several studies, the names
select among all of them: a study runs those of the names it has and is left out when it has
none; only a name that no study given has is refused, naming each study searched and what it
has. (A name was refused before because the first study lacked it, though the second had it.)"""

from __future__ import annotations

from collections.abc import Callable

from harness.near import listing


class OnlyError(Exception):
    """--only names something that none of the studies given has."""


def split_only(
    named: tuple[str, ...],
    studies: list[tuple[str, list[str]]],
    what: str,
    hint: Callable[[list[str]], str],
) -> list[tuple[str, ...] | None]:
    """For each (study name, the names it has), the names of ``named`` it runs, in the order
    given; ``()`` for every study when nothing is named (all of each); None for a study that
    has none of them (leave it out). ``what`` is the kind of name (experiment, checkpoint),
    ``hint`` says more of the unknown names (a near name, a model named for its experiment).
    A single study is passed through unchecked: its own check words the error for it."""
    if not named or len(studies) < 2:
        return [named] * len(studies)
    every = {n for _, names in studies for n in names}
    if unknown := [n for n in named if n not in every]:
        searched = "; ".join(f"{study!r} has {listing(names, quote=False) or f'no {what}s'}"
                             for study, names in studies)  # fmt: skip
        article = "an" if what[0] in "aeiou" else "a"
        raise OnlyError(f"--only {', '.join(unknown)}: none of the studies given has such "
                        f"{article} {what}{hint(unknown)}; the studies searched: "
                        f"{searched}")  # fmt: skip
    return [tuple(n for n in named if n in names) or None for _, names in studies]
