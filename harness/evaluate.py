"""`repro evaluate`: released checkpoints of a study, evaluated on the test set and stored.

For each checkpoint the study declares: fetch the file (from the cache, downloading it there
when it is missing, always checking its SHA-256), map it strictly onto its zoo model
(:mod:`harness.checkpoints`), evaluate it on the CIFAR-10 test set with the normalisation it
was trained with, and store one record beside the study's trained runs:

    <results>/<study>/<checkpoint>/data-<fingerprint[:12]>/evaluation.json

one per copy of the data, so the same weights evaluated on the official release and on an
offline copy sit side by side (their difference is what the copy costs). A checkpoint that
cannot be fetched, read or mapped is reported and nothing is stored for it; the others go on.
An evaluation whose declaration (file, model, layout, normalisation) has not changed is not
repeated; one that changed, or that ``--force`` redoes, is moved to ``.superseded/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from harness import store
from harness.checkpoints import TRANSFORMS, CheckpointError, fetch, load
from harness.data import Cifar10, DataError, load_cached, locate, non_official_warning
from harness.environment import environment, now_utc
from harness.loader import Normalizer, eval_batches
from harness.near import listing, near_names
from harness.only import split_only
from harness.schema import CheckpointSpec, Study
from harness.zoo import count_parameters

FORMAT = 1  # bump when the meaning of a stored evaluation changes
DATA_DIR_PREFIX = "data-"
Echo = Callable[[str], None]


class EvaluateError(Exception):
    """The request cannot be carried out at all (no data, an unknown checkpoint name)."""


@dataclass(frozen=True)
class EvaluateOptions:
    results: Path = Path("results")
    data_dir: Path | None = None
    device: str = "auto"
    only: tuple[str, ...] = ()
    force: bool = False
    batch_size: int = 500


@dataclass(frozen=True)
class Outcome:
    checkpoint: str
    status: str  # evaluated | skipped (already evaluated) | failed
    detail: str
    path: Path | None = None


def declaration(study: Study, spec: CheckpointSpec, sha256: str) -> dict:
    """Everything that determines an evaluation's result, the data aside (it has its own
    directory): the file's content, the model, the layout and the normalisation."""
    layout = study.layouts[spec.layout]
    return {
        "format": FORMAT,
        "sha256": sha256,
        "model": spec.model.model_dump(mode="json"),
        "layout": layout.model_dump(mode="json", exclude={"description"}),
        "normalization": spec.normalization.model_dump(mode="json"),
    }


def declaration_hash(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluation_dir(results: Path, study: str, checkpoint: str, fingerprint: str) -> Path:
    return results / study / checkpoint / f"{DATA_DIR_PREFIX}{fingerprint[:12]}"


NOTHING_TO_EVALUATE = (
    "none of the study files declares a released checkpoint (`checkpoints:`), so there is "
    "nothing to evaluate; `repro evaluate` judges released weights (e.g. "
    "studies/checkpoints.yaml), and `repro run` trains a study's experiments"
)


def options_by_study(
    studies: list[tuple[Study, str | Path]], options: EvaluateOptions
) -> list[EvaluateOptions | None]:
    """Each study's options with its own of --only's names (all when none is named); None
    for a study that has none of them, which is not evaluated (harness.only)."""
    names = [(s.name, [c.name for c in s.checkpoints]) for s, _ in studies]
    every = [n for _, checkpoints in names for n in checkpoints]

    def hint(unknown: list[str]) -> str:
        if every:
            return _near_hint(unknown, every)
        return f" (none of them declares checkpoints){_declared_beside([f for _, f in studies])}"

    return [None if mine is None else replace(options, only=mine)
            for mine in split_only(options.only, names, "checkpoint", hint)]  # fmt: skip


def _near_hint(unknown: list[str], names: list[str]) -> str:
    near = dict.fromkeys(c for n in unknown for c in near_names(n, names, n=2))
    return f" (did you mean {' or '.join(near)}?)" if near else ""


def _declared_beside(study_files: list[str | Path]) -> str:
    """The study files beside those given that declare released checkpoints, said where
    --only names a checkpoint in studies that have none (a trained study given for the
    checkpoints' one). Read as plain YAML: a file with problems of its own is passed over."""
    folders = dict.fromkeys(Path(f).parent for f in study_files)
    found = []
    for path in (p for folder in folders for p in sorted(folder.glob("*.yaml"))):
        with contextlib.suppress(OSError, UnicodeDecodeError, yaml.YAMLError):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("checkpoints"):
                found.append(str(path))
    return f"; study files that do: {', '.join(found)}" if found else ""


def evaluate_study(
    study: Study, study_file: str | Path, options: EvaluateOptions, echo: Echo
) -> list[Outcome]:
    names = [c.name for c in study.checkpoints]
    if options.only and not names:
        raise EvaluateError(
            f"--only {', '.join(options.only)}: study {study.name!r} declares no checkpoints "
            f"to evaluate (no `checkpoints:`){_declared_beside([study_file])}"
        )
    unknown = [n for n in options.only if n not in names]
    if unknown:
        raise EvaluateError(
            f"--only {', '.join(unknown)}: study {study.name!r} has no such "
            f"checkpoint{_near_hint(unknown, names)}; it has: {listing(names, quote=False)}"
        )
    chosen = [c for c in study.checkpoints if not options.only or c.name in options.only]
    if not chosen:
        echo(f"{study.name}: no checkpoints to evaluate")
        return []
    store.ensure_writable(options.results)
    device = _device(options.device)
    try:
        data = load_cached(locate(options.data_dir))
    except DataError as exc:
        raise EvaluateError(str(exc)) from None
    echo(data.describe())
    if not data.official:
        echo(non_official_warning(data))
    study_dir = Path(study_file).resolve().parent
    outcomes = []
    for spec in chosen:
        out_dir = evaluation_dir(options.results, study.name, spec.name, data.fingerprint)
        if (blocking := store.file_in_the_way(out_dir)) is not None:
            kept = store.set_aside(blocking, store.IN_THE_WAY)
            echo(f"note: {blocking} is a file where a directory of the store belongs; kept as "
                 f"{kept.name}")  # fmt: skip
        try:
            outcome = _evaluate_one(study, spec, study_dir, str(study_file), data, device, options)
        except CheckpointError as exc:
            outcome = Outcome(spec.name, "failed", str(exc))
        echo(f"{study.name}/{spec.name}: {outcome.status}: {outcome.detail}")
        outcomes.append(outcome)
    return outcomes


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EvaluateError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def _evaluate_one(
    study: Study,
    spec: CheckpointSpec,
    study_dir: Path,
    study_file: str,
    data: Cifar10,
    device: torch.device,
    options: EvaluateOptions,
) -> Outcome:
    fetched = fetch(spec, study_dir)
    config = declaration(study, spec, fetched.sha256)
    digest = declaration_hash(config)
    out_dir = evaluation_dir(options.results, study.name, spec.name, data.fingerprint)
    try:
        previous = store.read_evaluation(out_dir / store.EVALUATION)
    except store.DamagedFile:
        # None, or damaged (report and status never count it): evaluated again, and a
        # damaged record kept in .superseded/ below. One of the wrong shape gave an
        # AttributeError here; one with a field of the wrong type was skipped, so stayed.
        previous = None
    if previous is not None and previous["config_hash"] == digest and not options.force:
        return Outcome(
            spec.name,
            "skipped",
            f"already evaluated on this data: test error {previous.get('test_error')}% ({out_dir})",
            out_dir,
        )
    layout = study.layouts[spec.layout]
    loaded = load(spec, layout, fetched.path)  # raises before anything is stored
    started = time.perf_counter()
    figures = _test(loaded.model.to(device), data, spec, device, options.batch_size)
    seconds = time.perf_counter() - started
    if out_dir.exists():  # a changed declaration, or --force: keep the old one aside
        why = ("no readable record" if previous is None else
               "--force" if previous["config_hash"] == digest else "changed")  # fmt: skip
        store.supersede(out_dir, f"superseded by `repro evaluate` ({why})")
    record = {
        "kind": "checkpoint evaluation",
        "study": study.name,
        "checkpoint": spec.name,
        "study_file": study_file,
        "model_name": spec.model_name,
        "config_hash": digest,
        "config": config,
        "status": store.COMPLETE,
        "params": count_parameters(loaded.model),
        "file": {
            "path": str(fetched.path),
            "sha256": fetched.sha256,
            "origin": fetched.origin,
            "url": spec.url,
            "tensors": loaded.tensors,
            "metadata": loaded.metadata,
        },
        "transforms": [
            {"name": t, "description": TRANSFORMS[t].description} for t in layout.transforms
        ],
        "data": {
            "path": str(data.path),
            "official": data.official,
            "dataset_fingerprint": data.fingerprint,
            "test_images": len(data.test_labels),
        },
        **figures,
        "seconds": round(seconds, 3),
        "environment": environment(
            device, driver=None, execution={"precision": "fp32", "pipeline": "evaluate"}
        ),
        "finished": now_utc(),
    }
    store.write_json(out_dir / store.EVALUATION, record)
    return Outcome(
        spec.name,
        "evaluated",
        f"test error {record['test_error']:.2f}% on "
        f"{record['images']} images in {seconds:.1f} s ({out_dir})",
        out_dir,
    )


def _test(
    model: torch.nn.Module,
    data: Cifar10,
    spec: CheckpointSpec,
    device: torch.device,
    batch_size: int,
) -> dict:
    """Single-view test error and loss: the test images as they are, normalised the way the
    checkpoint was trained (statistics from the training images where the kind computes them).
    """
    normalizer = Normalizer(spec.normalization, torch.from_numpy(data.train_images)).to(device)
    images = torch.from_numpy(data.test_images).to(device)
    labels = torch.from_numpy(data.test_labels).to(device)
    wrong, loss = 0, 0.0
    model.eval()
    with torch.inference_mode():
        for x, y in eval_batches(images, labels, normalizer, batch_size):
            logits = model(x)
            wrong += int((logits.argmax(1) != y).sum())
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
    n = len(labels)
    return {
        "images": n,
        "wrong": wrong,
        "test_error": 100.0 * wrong / n,
        "test_accuracy": 100.0 * (n - wrong) / n,
        "test_loss": loss / n,
        "normalization": normalizer.describe(),
    }
