"""The model zoo: what a model spec is, the short names, and building a network from either.

A spec is plain data (a frozen pydantic model), so a study can write any architecture in YAML
without a name; a name such as ``resnet56b`` or ``wrn-16-4`` is only an alias for a spec.

Name grammar (``repro models`` lists the ones the sources use):

    plain<D>            plain network: same layers as resnet<D>, no shortcuts
    resnet<D>[a|b|c]    original (post-activation) ResNet, shortcut option A/B/C
    preresnet<D>[a|b|c] pre-activation ResNet (He et al. 2016)
    ...-bottleneck      bottleneck units (depth 9n+2) instead of basic ones (6n+2)
    wrn-<D>-<K>         Wide ResNet: pre-activation, width k, depth 6n+4

Default shortcuts when no letter is given: option A for basic ResNets (He et al. 2015's CIFAR
nets), option B for bottleneck and pre-activation nets (their first unit widens the channels even
at stride 1, and the sources' code projects there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from torch import nn

from harness.near import near_names, one_slip_away
from harness.resnet import CifarResNet
from harness.sizes import net_size

Block = Literal["basic", "bottleneck"]
Shortcut = Literal["A", "B", "C", "none"]

# Bounds that refuse a net no GPU could train before anything counts or builds it (a typo's
# `resnet1000004` once built a million layers in `repro validate`, and never ended). Neither
# enters a spec's fields, so no run's config hash moves.
# The deepest nets of the sources are ResNet-1202 (He et al. 2015) and ResNet-1001 (He et al.
# 2016); 10,000 layers leaves room eight times past them, and checking a depth costs nothing.
MAX_LAYERS = 10_000
# Width and depth together: WRN-28-10, the widest net of the sources, has 36.5M parameters.
# Training keeps each parameter's float32 weight, gradient and momentum, 12 bytes (as
# grouping.member_bytes counts them): 10 billion parameters take 120 GB before one activation
# is kept, more than an H100's 80 GB and most of an H200's 141 GB. WRN-1000-10, 1.6 billion,
# still passes; a bottleneck net of the largest depth and width (26 billion) does not.
MAX_PARAMETERS = 10**10
TOO_LARGE = "net_too_large"  # the error type of that refusal, which harness.studyfile words


class ModelSpec(BaseModel):
    """Everything that defines an architecture of the family in :mod:`harness.resnet`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: int = Field(
        ge=8, le=MAX_LAYERS, description="number of weighted layers, counted as the paper does"
    )
    block: Block = Field("basic", description="basic (two 3x3) or bottleneck (1x1-3x3-1x1) units")
    preact: bool = Field(False, description="pre-activation units (He et al. 2016)")
    shortcut: Shortcut = Field(
        "A",
        description="A: zero-padded identity; B: projection where the shape changes; "
        "C: projection everywhere; none: plain network",
    )
    width: int = Field(1, ge=1, le=16, description="width multiplier k (Wide ResNets)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout between the convolutions")
    depth_convention: Literal["he", "wrn"] = Field(
        "he",
        description="he: depth 6n+2 (basic) or 9n+2 (bottleneck); "
        "wrn: 6n+4 (Zagoruyko & Komodakis)",
    )
    init_mode: Literal["fan_in", "fan_out"] = Field(
        "fan_in", description="Kaiming-normal mode for conv and linear weights"
    )
    num_classes: int = Field(10, ge=2)

    @field_validator("dropout", mode="before")
    @classmethod
    def _dropout_is_a_probability(cls, v: object) -> object:
        # Before the range check, which would say only "< 1.0" to someone who wrote 30 for 30%.
        if isinstance(v, int | float) and not isinstance(v, bool) and v >= 1:
            as_percent = (": 1 would drop every activation" if v == 1
                          else f": {v:g}% is written {v / 100:g}" if v < 100 else "")  # fmt: skip
            raise ValueError(
                f"dropout is a probability, from 0 up to (not including) 1, not a percentage "
                f"(0.3 drops 30% of the activations){as_percent}"
            )
        return v

    @model_validator(mode="after")
    def _depth_fits_the_convention(self) -> ModelSpec:
        # Accessing the property raises ValueError with the allowed depths when it does not fit.
        _ = self.units_per_stage
        if self.depth_convention == "wrn" and self.block != "basic":
            raise ValueError("depth_convention 'wrn' is defined for basic units only")
        return self

    @model_validator(mode="after")
    def _trainable_on_one_gpu(self) -> ModelSpec:
        # After the depth's checks (a net that cannot be built has no size); counted from the
        # spec's shape, at no cost whatever the depth (harness.sizes).
        if (params := net_size(self).parameters()) > MAX_PARAMETERS:
            raise PydanticCustomError(
                TOO_LARGE,
                "{label} has {params} parameters, more than one GPU could train",
                {"label": self.label(), "params": f"{params:,}",
                 "allowed": f"at most {MAX_PARAMETERS:,} parameters (training keeps 12 bytes "
                 "of each: its weight, gradient and momentum)"},
            )  # fmt: skip
        return self

    @property
    def units_per_stage(self) -> int:
        """n, the number of units in each of the three stages."""
        offset, per_unit = self._depth_rule()
        n, rest = divmod(self.depth - offset, per_unit)
        if rest or n < 1:
            nearest = sorted({max(1, n) * per_unit + offset, (max(1, n) + 1) * per_unit + offset})
            nearest = [d for d in nearest if d <= MAX_LAYERS] or nearest
            raise ValueError(
                f"depth {self.depth} does not fit {self.block} units under the "
                f"'{self.depth_convention}' convention, which needs depth = "
                f"{per_unit}n+{offset} (nearest: {', '.join(map(str, nearest))})"
                f"{self._other_convention()}"
            )
        return n

    def _other_convention(self) -> str:
        """Where the depth fits the other convention, what to write for it: a Wide ResNet's
        depth (6n+4: WRN-16-4, WRN-28-10) read under He et al.'s rule, or the reverse."""
        if self.block != "basic":
            return ""
        if self.depth_convention == "wrn":
            if (self.depth - 2) % 6:
                return ""
            return (f"; depth {self.depth} fits He et al.'s convention (6n+2): leave out "
                    "depth_convention: wrn")  # fmt: skip
        if (self.depth - 4) % 6 or self.depth < 10:
            return ""
        name = f"wrn-{self.depth}-{self.width}"
        hint = "; for a Wide ResNet, whose depth is 6n+4 (Zagoruyko & Komodakis), add "
        # Or its name (pre-activation, shortcut B), with the fields the spec writes otherwise
        # (`{depth: 16, width: 4, preact: true}` is `wrn-16-4` in a word). Fields the spec
        # leaves to ModelSpec's defaults (shortcut A) differ from the name's: then the two
        # are two nets, and the message says which is which.
        try:
            named = spec_from_name(name)
        except UnknownModelError:
            return hint + "depth_convention: wrn"
        given = [f for f in type(self).model_fields
                 if f in self.model_fields_set and f != "depth_convention"]  # fmt: skip
        changed = {f: getattr(self, f) for f in given if getattr(named, f) != getattr(self, f)}
        written = ", ".join(f"{f}: {_yaml(v)}" for f, v in changed.items())
        by_name = f"{{name: {name}, {written}}}" if changed else name
        as_written = self.model_copy(update={"depth_convention": "wrn"})
        apart = [
            f
            for f in type(self).model_fields
            if getattr(as_written, f) != getattr(named.model_copy(update=changed), f)
        ]
        if not apart:
            return hint + f"depth_convention: wrn, or write it by name: model: {by_name}"
        return (hint + f"depth_convention: wrn for the net as written "
                f"({_fields(as_written, apart)}), or write model: {by_name} for "
                f"WRN-{self.depth}-{self.width} as Zagoruyko & Komodakis built it "
                f"({_fields(named, apart)})")  # fmt: skip

    def _depth_rule(self) -> tuple[int, int]:
        if self.depth_convention == "wrn":
            return 4, 6
        return (2, 9) if self.block == "bottleneck" else (2, 6)

    def describe(self) -> str:
        unit = "pre-activation" if self.preact else "original"
        parts = [f"{self.block} {unit} units", f"shortcut {self.shortcut}"]
        if self.width > 1:
            parts.append(f"width x{self.width}")
        if self.dropout:
            parts.append(f"dropout {self.dropout}")
        return ", ".join(parts)

    def label(self) -> str:
        """The name a paper prints: "ResNet-56", "plain-20", "pre-act ResNet-164", "WRN-16-4",
        with what sets it apart from its family's usual form in brackets ("ResNet-56
        (bottleneck)", "WRN-16-4 (dropout 0.3)"). A WRN's depth follows its own convention,
        so it is never a "ResNet-16"."""
        extras = []
        if self.depth_convention == "wrn":
            name = f"WRN-{self.depth}-{self.width}"
        else:
            family = ("plain" if self.shortcut == "none"
                      else "pre-act ResNet" if self.preact else "ResNet")  # fmt: skip
            name = f"{family}-{self.depth}"
            bottleneck = self.block == "bottleneck"
            if bottleneck and f"resnet{self.depth}" not in _BOTTLENECK_BY_NAME:
                extras.append("bottleneck")
            usual = "B" if (bottleneck or self.preact) else "A"
            if self.shortcut not in ("none", usual):
                extras.append(f"option {self.shortcut}")
            if self.width > 1:
                extras.append(f"width x{self.width}")
        if self.dropout:
            extras.append(f"dropout {self.dropout:g}")
        return name + (f" ({', '.join(extras)})" if extras else "")


def _yaml(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _fields(spec: ModelSpec, names: list[str]) -> str:
    """A spec's ``names`` fields as a paper would say them: "pre-activation, shortcut B"."""
    said = {"preact": "pre-activation" if spec.preact else "original units",
            "shortcut": f"shortcut {spec.shortcut}"}  # fmt: skip
    return ", ".join(said.get(f, f"{f} {_yaml(getattr(spec, f))}") for f in names)


class UnknownModelError(ValueError):
    """A model name that neither the catalogue nor the grammar knows, or one it cannot build;
    ``allowed`` says what would be (a study's problem prints it on its own line)."""

    def __init__(self, message: str, allowed: str | None = None) -> None:
        self.message, self.allowed = message, allowed
        super().__init__(message + (f" (allowed: {allowed})" if allowed else ""))


_FAMILY_NAME = re.compile(
    r"^(?P<family>plain|resnet|preresnet)(?P<depth>\d+)(?P<option>[abc])?(?P<bottleneck>-bottleneck)?$"
)
_WRN_NAME = re.compile(r"^wrn-(?P<depth>\d+)-(?P<width>\d+)$")

# Names whose block is fixed by the paper that introduced them rather than by the grammar.
_BOTTLENECK_BY_NAME = {"preresnet164", "preresnet1001", "resnet164", "resnet1001"}


def spec_from_name(name: str) -> ModelSpec:
    """Resolve a short name to its spec; raises UnknownModelError with a hint when it cannot."""
    key = name.strip().lower()
    if m := _WRN_NAME.match(key):
        return _make(
            name,
            depth=_number(name, "depth", m["depth"]),
            width=_number(name, "width", m["width"]),
            preact=True,
            shortcut="B",
            depth_convention="wrn",
        )
    m = _FAMILY_NAME.match(key)
    if not m:
        raise UnknownModelError(
            f"unknown model name {_shown(name)};{_did_you_mean(key)} names look like resnet56, "
            "resnet56b, plain20, preresnet164, resnet110-bottleneck or wrn-16-4 "
            "(see `repro models`)"
        )
    family, depth = m["family"], _number(name, "depth", m["depth"])
    bottleneck = bool(m["bottleneck"]) or f"{family}{depth}" in _BOTTLENECK_BY_NAME
    preact = family == "preresnet"
    if family == "plain":
        if m["option"]:
            raise UnknownModelError(f"{name!r}: plain networks have no shortcut option")
        shortcut = "none"
    elif m["option"]:
        shortcut = m["option"].upper()
    else:
        shortcut = "B" if (bottleneck or preact) else "A"
    return _make(
        name,
        depth=depth,
        block="bottleneck" if bottleneck else "basic",
        preact=preact,
        shortcut=shortcut,
    )


def _make(name: str, **fields: object) -> ModelSpec:
    try:
        return ModelSpec(**fields)
    except ValidationError as exc:
        said = [_said(e) for e in exc.errors()]
        reason = "; ".join(why for why, _ in said)
        allowed = "; ".join(a for _, a in said if a) or None
        raise UnknownModelError(f"model name {_shown(name)} is not buildable: {reason}",
                                allowed) from None  # fmt: skip


_BOUNDS = {"greater_than_equal": ("ge", ">="), "less_than_equal": ("le", "<=")}


def _said(error: dict) -> tuple[str, str | None]:
    """One refusal of a name's spec as (why, what is allowed), in harness.studyfile's words
    for a field out of range ("value out of range", allowed "a number <= 10000"), with the
    field named: a name writes no field, so "Input should be less than or equal to 10000"
    said neither which nor why."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _BOUNDS and error["loc"]:
        field = error["loc"][0]
        key, sign = _BOUNDS[kind]
        return f"{field} {error['input']} is out of range", f"{field} {sign} {ctx[key]}"
    return error["msg"].removeprefix("Value error, "), ctx.get("allowed")


# A depth or width of more digits than this is out of range whatever they are, and is not read
# (Python refuses to read a whole number of over 4,300 digits: a traceback, not a refusal).
# Fewer are read, so that the refusal quotes the value (depth 1000004 is out of range).
_MOST_DIGITS = 100


def _number(name: str, field: str, digits: str) -> int:
    """The depth or width a name writes, or a refusal where it is too long to be one."""
    if len(digits.lstrip("0")) > _MOST_DIGITS:
        most = next(m.le for m in ModelSpec.model_fields[field].metadata if hasattr(m, "le"))
        allowed = f"{field} <= {most}"
        raise UnknownModelError(f"model name {_shown(name)} is not buildable: its {field} has "
                                f"{len(digits):,} digits, out of range", allowed)  # fmt: skip
    # Read without the leading zeros the check left out: thousands of them are as many digits
    # to int(), which refuses over 4,300 with a ValueError.
    return int(digits.lstrip("0") or "0")


def _shown(name: str) -> str:
    """A name as a message quotes it: a pasted thousand digits would fill the screen."""
    if len(name) <= _LONGEST_NAME:
        return repr(name)
    return f"{name[:_LONGEST_NAME]!r}... ({len(name):,} characters)"


def _did_you_mean(key: str) -> str:
    """The names one slip away that the grammar builds (``resnt8`` -> resnet8, ``wrn16-4`` ->
    wrn-16-4), else the catalogue's closest: from the catalogue alone, ``resnt8`` was offered
    resnet68b, resnet56 and resnet44, though resnet8 works."""
    listed = [e.name for e in CATALOGUE]
    if len(key) > _LONGEST_NAME:
        return ""  # no slip makes it a name, and its slips would be millions of strings
    fixed = sorted(n for n in one_slip_away(key, _NAME_CHARACTERS) if _buildable(n))
    # A slip in the letters keeps the depth and width as written (resnet-56 is resnet56, not
    # resnet356): only those where there are any, the sources' models first.
    fixed = [n for n in fixed if _digits(n) == _digits(key)] or fixed
    fixed.sort(key=lambda n: n not in listed)
    close = fixed[:3] or near_names(key, listed, n=3)
    return f" did you mean {' or '.join(close)}?" if close else ""


_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789-"
# Longer than any name the grammar builds ("preresnet10000c-bottleneck" is 26) and a slip.
_LONGEST_NAME = 40


def _digits(name: str) -> str:
    return re.sub(r"\D", "", name)


def _buildable(name: str) -> bool:
    if not (_FAMILY_NAME.match(name) or _WRN_NAME.match(name)):
        return False
    try:
        spec_from_name(name)
    except UnknownModelError:
        return False
    return True


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    note: str


# The models the sources talk about, in the order `repro models` prints them.
CATALOGUE: tuple[CatalogueEntry, ...] = (
    *(
        CatalogueEntry(f"plain{d}", "He 2015 Fig. 6; documents 000, 002")
        for d in (20, 32, 44, 56, 110)
    ),
    *(
        CatalogueEntry(
            f"resnet{d}", "He 2015 Table 6 (option A); documents 000, 002; He 2016 original unit"
        )
        for d in (20, 32, 44, 56, 110, 1202)
    ),
    CatalogueEntry("resnet56b", "document 000: option B"),
    CatalogueEntry("resnet68b", "document 003: 3 x 11 basic units, option B"),
    CatalogueEntry("resnet56-bottleneck", "document 002: bottleneck once depth exceeds 50"),
    CatalogueEntry("resnet110-bottleneck", "document 002: bottleneck once depth exceeds 50"),
    CatalogueEntry("plain56-bottleneck", "document 002: the bottleneck net without shortcuts"),
    CatalogueEntry("plain110-bottleneck", "document 002: the bottleneck net without shortcuts"),
    CatalogueEntry("resnet164", "He 2016 Table 3: original bottleneck unit"),
    CatalogueEntry("preresnet110", "He 2016 Table 3; document 004"),
    CatalogueEntry("preresnet164", "He 2016 Table 3; document 004"),
    CatalogueEntry("preresnet1001", "He 2016 Table 3"),
    CatalogueEntry("wrn-16-4", "Zagoruyko & Komodakis Table; document 004 (with dropout 0.3)"),
    CatalogueEntry("wrn-40-4", "Zagoruyko & Komodakis"),
    CatalogueEntry("wrn-16-8", "Zagoruyko & Komodakis"),
    CatalogueEntry("wrn-28-10", "Zagoruyko & Komodakis"),
)


def build_model(spec: ModelSpec) -> nn.Module:
    return CifarResNet(spec)


def count_parameters(model: nn.Module, counts: str = "all") -> int:
    """Trainable parameters, the figure papers report (BN running statistics excluded).

    ``counts="without_batchnorm"`` also leaves out batch norm's scale and shift, the way
    some papers count: He et al. 2016's 10.2M for pre-activation ResNet-1001 is 10,178,490
    without them and 10,327,706 with them.
    """
    skip = set()
    if counts == "without_batchnorm":
        skip = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d)
                for p in m.parameters(recurse=False)}  # fmt: skip
    return sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in skip)
