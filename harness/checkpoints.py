"""Released weights: fetch them (hash verified), read them safely, map them onto the zoo strictly.

A study declares a checkpoint (:class:`harness.schema.CheckpointSpec`) and, once per source, a
:class:`harness.schema.WeightLayout`: where the tensors sit in the file, a prefix to strip
(``module.`` of ``torch.nn.DataParallel``), renaming rules from the source's names to the zoo's,
and the declared transforms that a different convention of the source's code needs. Loading is
strict: every tensor of the file must find a place in the model, every tensor of the model must
be filled, and every shape must agree; the first tensor that breaks this is named in a
:class:`CheckpointError`, before anything is evaluated or stored.

Files are read with ``torch.load(weights_only=True)``: tensors, numbers, strings and plain
containers only. A file that needs anything else (a class of the source's code, a function)
would run code from the file to be loaded, and is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import torch
from torch import nn

from harness import store
from harness.data import cache_dir
from harness.resnet import STAGE_WIDTHS, STEM_WIDTH, CifarResNet, ZeroPadShortcut
from harness.schema import TEMPLATE_FIELD, CheckpointSpec, WeightLayout
from harness.zoo import ModelSpec, build_model

MAX_DOWNLOAD_BYTES = 1 << 30  # a CIFAR ResNet is a few MB; ResNet-1202 is 80 MB
DOWNLOAD_TIMEOUT_S = 30
# A BN buffer that counts training steps: it does not enter the function in evaluation (the
# running statistics are used, and momentum is set), and checkpoints saved before PyTorch
# 0.4.1 do not have it. The only tensor of the model a checkpoint may leave out.
OPTIONAL_SUFFIX = ".num_batches_tracked"
_STAGE_ADDRESS = re.compile(r"^stages\.(?P<stage>\d+)\.(?P<unit>\d+)\.(?P<rest>.+)$")


class CheckpointError(Exception):
    """A checkpoint that cannot be fetched, read or mapped; the message says what to do."""


# --------------------------------------------------------------------------- fetching


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    origin: str  # "cache", "downloaded" or "local path"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_path(spec: CheckpointSpec) -> Path:
    """Where a downloaded checkpoint lives: the per-user cache (as CIFAR-10), one folder per
    content hash so two sources' "model.th" never collide."""
    name = PurePosixPath(urlparse(spec.url or "").path).name or "checkpoint.pt"
    return cache_dir() / "checkpoints" / (spec.sha256 or "unhashed")[:12] / name


def fetch(spec: CheckpointSpec, study_dir: Path, *, download: bool = True) -> Fetched:
    """The checkpoint's file, verified against the declared SHA-256; downloaded into the cache
    when it is not there. Never returns a file whose hash differs from the study's."""
    if spec.path is not None:
        path = Path(spec.path).expanduser()
        path = path if path.is_absolute() else study_dir / path
        if not path.is_file():
            raise CheckpointError(
                f"checkpoint {spec.name}: no file at {path} (`path:` in the "
                "study, relative to the study file)"
            )
        return Fetched(path, _verified(spec, path, "the file at `path:`"), "local path")
    target = cache_path(spec)
    if target.is_file():
        return Fetched(target, _verified(spec, target, "the cached file"), "cache")
    if not download:
        raise CheckpointError(_where_to_put_it(spec, target, "downloading was not allowed"))
    _download(spec, target)
    return Fetched(target, spec.sha256, "downloaded")


def _verified(spec: CheckpointSpec, path: Path, what: str) -> str:
    digest = sha256_of(path)
    if spec.sha256 is not None and digest != spec.sha256:
        raise CheckpointError(
            f"checkpoint {spec.name}: {what} {path} has SHA-256 {digest}, the study says "
            f"{spec.sha256}: it is not the released file (another version, or damaged). "
            "Nothing was evaluated. Replace the file with the one the study names, or delete it "
            "to download it again."
        )
    return digest


def _download(spec: CheckpointSpec, target: Path) -> None:
    """Download to a temporary file beside the target, hashing as it comes; only a file with
    the declared hash is renamed into place, so the cache never holds a wrong one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    with contextlib.suppress(OSError):  # readable as the user's other files are, not 0600
        os.fchmod(fd, store.new_file_mode())
    h, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(spec.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        size += len(block)
                        if size > MAX_DOWNLOAD_BYTES:
                            raise CheckpointError(
                                f"checkpoint {spec.name}: {spec.url} is larger "
                                f"than {MAX_DOWNLOAD_BYTES >> 20} MiB; "
                                "refusing it"
                            )
                        h.update(block)
                        out.write(block)
            except OSError as exc:  # URLError, refused connections and timeouts are OSErrors
                reason = getattr(exc, "reason", None) or exc
                raise CheckpointError(
                    _where_to_put_it(spec, target, f"downloading {spec.url} failed: {reason}")
                ) from None
        if h.hexdigest() != spec.sha256:
            raise CheckpointError(
                f"checkpoint {spec.name}: the file downloaded from {spec.url} has SHA-256 "
                f"{h.hexdigest()}, the study says {spec.sha256}; it was discarded and nothing "
                "was evaluated. The release changed, or the study's hash is wrong."
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _where_to_put_it(spec: CheckpointSpec, target: Path, reason: str) -> str:
    return (
        f"checkpoint {spec.name}: {reason}.\n"
        f"Offline, fetch {spec.url} on a machine with internet access and put it at\n"
        f"  {target}\n"
        f"(SHA-256 {spec.sha256}), then run the same command again."
    )


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Loaded:
    """A checkpoint mapped onto its zoo model, ready to evaluate."""

    model: nn.Module
    tensors: int  # how many tensors of the file were used (all of them)
    metadata: dict = field(default_factory=dict)  # numbers and strings stored beside them


def read_tensors(path: Path, layout: WeightLayout, name: str) -> tuple[dict, dict]:
    """The file's tensors by name, and the plain numbers and strings stored beside them (such
    as a recorded accuracy). Refuses a file that needs code to load, or holds no state dict."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global it does not know (a class or function of other
        # code, which unpickling would call), and any byte it cannot parse.
        text = str(exc)
        if code := re.search(r"GLOBAL [\w.]+", text):
            raise CheckpointError(
                f"checkpoint {name}: {path} refused: loading it would run code the file names "
                f"({code[0]}). Only tensors, numbers, strings and plain containers are read "
                "(torch.load with weights_only=True); ask the source for a file that holds its "
                "state dict only."
            ) from None
        why = re.search(r"WeightsUnpickler error:\s*([^\n]+(?:\n\n[^\n]+)?)", text)
        reason = " ".join(why[1].split()) if why else text.splitlines()[0]
        raise CheckpointError(f"checkpoint {name}: {path} is not a file torch.load can read "
                              f"safely ({reason})") from None  # fmt: skip
    except Exception as exc:  # torch raises many kinds for a file that is not its format
        raise CheckpointError(
            f"checkpoint {name}: {path} is not a file torch.load can read "
            f"({type(exc).__name__}: {exc})"
        ) from None
    metadata: dict = {}
    where = "the file"
    if layout.state_dict_key is not None:
        if not isinstance(obj, dict) or layout.state_dict_key not in obj:
            keys = (
                f"its keys: {', '.join(map(str, list(obj)[:8]))}"
                if isinstance(obj, dict)
                else f"it holds a {type(obj).__name__}"
            )
            raise CheckpointError(
                f"checkpoint {name}: {path} is not a state dict under "
                f"{layout.state_dict_key!r}, as the layout says ({keys})"
            )
        metadata = {
            k: v
            for k, v in obj.items()
            if isinstance(v, int | float | str)
            and not isinstance(v, bool)
            and k != layout.state_dict_key
        }
        obj, where = obj[layout.state_dict_key], f"its {layout.state_dict_key!r}"
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"checkpoint {name}: {where} is not a state dict (a mapping of "
            f"names to tensors): it is {_kind(obj)}"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"checkpoint {name}: {where} is not a state dict: its entry "
                f"{key!r} is {_kind(value)}, not a tensor"
            )
    return dict(obj), metadata


def _kind(obj: object) -> str:
    if isinstance(obj, dict):
        return "an empty mapping" if not obj else "a mapping"
    return f"a {type(obj).__name__}"


# --------------------------------------------------------------------------- mapping


def map_names(
    tensors: dict[str, torch.Tensor], layout: WeightLayout, spec: ModelSpec, name: str
) -> dict[str, tuple[str, torch.Tensor]]:
    """The zoo's name for every tensor of the file, with the file's name: {zoo: (file, t)}."""
    rules = [(re.compile(r.pattern), r.to) for r in layout.rules]
    units = spec.units_per_stage
    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    for original, tensor in tensors.items():
        key = original
        if layout.strip_prefix and key.startswith(layout.strip_prefix):
            key = key[len(layout.strip_prefix) :]
        for pattern, template in rules:
            if m := pattern.fullmatch(key):
                target = _render(template, m, original, name)
                break
        else:
            raise CheckpointError(
                f"checkpoint {name}: extra tensor {original!r}: no rule of the layout names it, "
                "so the model has no place for it"
            )
        if a := _STAGE_ADDRESS.match(target):
            stage, unit = int(a["stage"]), int(a["unit"])
            if stage >= len(STAGE_WIDTHS) or unit >= units:
                raise CheckpointError(
                    f"checkpoint {name}: extra tensor {original!r} is in stage {stage} unit "
                    f"{unit} (from 0), but the model has {len(STAGE_WIDTHS)} stages of {units} "
                    "units: a deeper network than the study says?"
                )
            target = f"units.{stage * units + unit}.{a['rest']}"
        if target in mapped:
            raise CheckpointError(
                f"checkpoint {name}: {original!r} and {mapped[target][0]!r} "
                f"are both named {target!r} by the layout"
            )
        mapped[target] = (original, tensor)
    return mapped


def _render(template: str, m: re.Match, original: str, name: str) -> str:
    def field(f: re.Match) -> str:
        value = m[f["group"]]
        if not f["shift"]:
            return value
        if value is None or not value.isdigit():
            raise CheckpointError(
                f"checkpoint {name}: {original!r}: the rule's {{{f[0][1:-1]}}} "
                f"needs a number, and the group is {value!r}"
            )
        return str(int(value) + int(f["shift"]))

    return TEMPLATE_FIELD.sub(field, template)


def load(spec: CheckpointSpec, layout: WeightLayout, path: Path) -> Loaded:
    """Read ``path``, map it strictly onto a fresh zoo model, apply the layout's transforms."""
    tensors, metadata = read_tensors(path, layout, spec.name)
    mapped = map_names(tensors, layout, spec.model, spec.name)
    model = build_model(spec.model)
    own = model.state_dict()
    for target, (original, _) in mapped.items():
        if target not in own:
            raise CheckpointError(
                f"checkpoint {spec.name}: extra tensor {original!r} is named {target!r} by the "
                f"layout, which {spec.model_name or 'the model'} does not have (its names look "
                f"like {', '.join(list(own)[:3])}, ...)"
            )
    missing = [k for k in own if k not in mapped and not k.endswith(OPTIONAL_SUFFIX)]
    if missing:
        raise CheckpointError(
            f"checkpoint {spec.name}: missing tensor: the model's {missing[0]!r} gets nothing "
            f"from the file ({len(missing)} missing in all): a shallower network, or a layout "
            "rule that names it otherwise"
        )
    state = {}
    for target, (original, tensor) in mapped.items():
        mine = own[target]
        if tuple(tensor.shape) != tuple(mine.shape):
            raise CheckpointError(
                f"checkpoint {spec.name}: shape mismatch: {original!r} (the model's {target!r}) "
                f"is {list(tensor.shape)} in the file and {list(mine.shape)} in the model"
            )
        if mine.is_floating_point() != tensor.is_floating_point():
            raise CheckpointError(
                f"checkpoint {spec.name}: {original!r} holds {tensor.dtype}, "
                f"the model's {target!r} {mine.dtype}"
            )
        state[target] = tensor.to(mine.dtype)
    for transform in layout.transforms:
        state = TRANSFORMS[transform].apply(state, model)
    model.load_state_dict(state, strict=False)  # every tensor checked above; only counters left
    return Loaded(model.eval(), len(mapped), metadata)


# --------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class Transform:
    """A convention of another code base that changes the function, not only the names."""

    name: str
    description: str
    apply: Callable[[dict[str, torch.Tensor], CifarResNet], dict[str, torch.Tensor]]
    misfit: Callable[[ModelSpec], str | None]  # why the model cannot take it, or None


def _option_a_both_sides(state: dict[str, torch.Tensor], model: CifarResNet) -> dict:
    """Reorder channels so a net whose option-A shortcut pads zeros on both sides of the
    identity computes, in the zoo (which appends them), the same function.

    At a unit that widens ``cin`` channels to ``cin + extra``, the source's shortcut output is
    ``[extra//2 zeros, x, the other zeros]``; the zoo's is ``[x, zeros]``. So the zoo's channel
    c of the residual stream is the source's channel ``perm[c]``, where ``perm`` follows the
    identity through the network: ``left + perm_before`` for the carried channels, then the
    source's zero channels in order. Tensors that write the stream (a unit's last conv and BN)
    take their output channels through ``perm``; tensors that read it (a unit's first conv,
    the classifier) take their input channels through it. Channels inside a unit are free, so
    they keep the source's order.
    """
    state = dict(state)
    perm = torch.arange(STEM_WIDTH)  # the stem writes the first stage's stream in its order
    for i, unit in enumerate(model.units):
        before = perm
        shortcut = unit.shortcut
        if isinstance(shortcut, ZeroPadShortcut) and shortcut.extra_channels:
            cin, extra = len(before), shortcut.extra_channels
            left = extra // 2
            perm = torch.cat(
                [left + before, torch.arange(left), torch.arange(left + cin, cin + extra)]
            )
        last = len(unit.convs) - 1
        first_conv, last_conv = f"units.{i}.convs.0.weight", f"units.{i}.convs.{last}.weight"
        state[first_conv] = state[first_conv][:, before]
        state[last_conv] = state[last_conv][perm]
        for kind in ("weight", "bias", "running_mean", "running_var"):
            key = f"units.{i}.norms.{last}.{kind}"
            state[key] = state[key][perm]
    state["classifier.weight"] = state["classifier.weight"][:, perm]
    return state


def _option_a_misfit(spec: ModelSpec) -> str | None:
    if spec.shortcut != "A":
        return f"which is for option-A nets, and this model has shortcut {spec.shortcut}"
    if spec.preact or spec.block != "basic":
        return (
            "which is proven for original basic units only (He et al. 2015's CIFAR nets), "
            "and this model has " + spec.describe()
        )
    return None


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform(
            "option_a_both_sides",
            "the source's option-A shortcut pads its new zero channels on both sides of the "
            "identity (F.pad with planes//4 channels before and after, as in akamaster/"
            "pytorch_resnet_cifar10), where the zoo appends them; the weights are carried over "
            "through a channel permutation per stage that follows the identity channels",
            _option_a_both_sides,
            _option_a_misfit,
        ),
    )
}


def transform_misfit(name: str, spec: ModelSpec) -> str | None:
    """Why ``spec`` cannot take the transform (for `repro validate`), or None."""
    return TRANSFORMS[name].misfit(spec)
