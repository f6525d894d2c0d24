"""The `kind:` tags of a study's mappings: which kinds each tagged mapping has, and the class
that validates each, in one register, so that every misspelt or missing kind gets one message
in one wording (harness.studyfile), whatever mapping it is in.

Two shapes of tag are registered. A union (a schedule, a claim) is a mapping whose kind picks
the class that validates the rest: :func:`union` builds its pydantic discriminator, which
names no class for a kind it does not know, so pydantic reports the kind (a ``kind_tag``
error) instead of validating the wrong class and listing its keys as unknown. A literal kind
(a normalization, a reporting rule) is a field of one class: :func:`literal` registers it.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, Discriminator

# The pydantic error type of a kind a union does not know (or that is missing).
KIND_TAG = "kind_tag"


@dataclass(frozen=True)
class Tagged:
    """One tagged mapping: how messages name it, and its kinds with the class of each."""

    what: str
    variants: dict[str, type[BaseModel]]
    # The kind a mapping without `kind:` is, and how a message says so; None: `kind:` is
    # required (a claim without one states a value; a schedule must say which it is).
    default: str | None = None
    default_means: str | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.variants)

    def own_keys(self, kind: str) -> tuple[str, ...]:
        """The keys only ``kind``'s class has, none of the other kinds'."""
        mine = self.variants[kind]
        others = {k for c in set(self.variants.values()) - {mine} for k in c.model_fields}
        return tuple(k for k in mine.model_fields if k not in others)

    def kind_by_keys(self, data: dict[str, Any]) -> tuple[str, tuple[str, ...]] | None:
        """The one kind whose own keys ``data`` has (and those keys), where no other kind's own
        keys are there too: what a mapping of no known kind was probably meant to be."""
        found = [(k, keys) for k in self.kinds if (keys := tuple(x for x in self.own_keys(k)
                                                               if x in data))]  # fmt: skip
        return found[0] if len(found) == 1 else None

    def owners(self, key: str) -> list[str]:
        """The kinds whose class has ``key``."""
        return [k for k, c in self.variants.items() if key in c.model_fields]

    def kind_of(self, model: type[BaseModel]) -> str | None:
        """The kind a class validates, where it validates one kind only."""
        kinds = [k for k, c in self.variants.items() if c is model]
        return kinds[0] if len(kinds) == 1 else None


REGISTER: dict[str, Tagged] = {}
M = TypeVar("M", bound=type[BaseModel])


def _kinds_of(model: type[BaseModel]) -> tuple[str, ...]:
    return typing.get_args(model.model_fields["kind"].annotation)


def union(what: str, *members: type[BaseModel], default: str | None = None,
          default_means: str | None = None) -> Discriminator:  # fmt: skip
    """The discriminator of a union of ``members`` (each tagged with ``Tag(kind)``), each of
    which has ``kind: Literal[...]``. It picks the class of a known kind; a mapping without
    `kind:` is ``default``'s, unless its keys are another kind's alone (then that kind is the
    mistake to name); anything else is a KIND_TAG error, worded by harness.studyfile."""
    tagged = Tagged(what, {k: m for m in members for k in _kinds_of(m)}, default, default_means)
    REGISTER[what] = tagged

    def pick(data: Any) -> str | None:
        if not isinstance(data, dict):
            kind = getattr(data, "kind", None)
            return kind if kind in tagged.variants else None
        if "kind" not in data:
            if default is None:
                return None
            other = tagged.kind_by_keys(data)
            return None if other and other[0] != default else default
        kind = data["kind"]
        return kind if isinstance(kind, str) and kind in tagged.variants else None

    return Discriminator(
        pick,
        custom_error_type=KIND_TAG,
        custom_error_message=f"a {what}'s kind is one of {', '.join(tagged.kinds)}",
        custom_error_context={"what": what},
    )


def literal(what: str) -> Callable[[M], M]:
    """Register a class whose ``kind: Literal[...]`` field names a variant of it (a class
    decorator)."""

    def register(model: M) -> M:
        REGISTER[what] = Tagged(what, dict.fromkeys(_kinds_of(model), model))
        return model

    return register


def tagged_by(model: type[BaseModel] | None) -> Tagged | None:
    """The tagged mapping ``model`` validates (a kind of), if any."""
    return next((t for t in REGISTER.values() if model in t.variants.values()), None)
