"""Recipe knobs that the sources' code used and their text did not say: weight decay that
leaves some parameters alone, the test error of the best-validation epoch, augmentation drawn
once per batch, padding after normalisation; and how such knobs enter the config hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import small_recipe
from PIL import Image
from pydantic import ValidationError
from test_fastpath import coordinate_image, decode
from torch import nn

from harness.canonical import BatchAugment, CanonicalLoader, transform_for
from harness.execution import choose
from harness.loader import DeviceLoader, Normalizer, augment, augment_and_normalize, generator
from harness.plan import config_hash, resolved_config
from harness.schema import Augmentation, Crop, Experiment, Normalization
from harness.train import Trainer, reported_record
from harness.zoo import spec_from_name

CPU = torch.device("cpu")


def planned(recipe) -> dict:
    exp = Experiment(name="e", model=spec_from_name("resnet8"), recipe=recipe)
    return resolved_config(exp, recipe, 0, "")


# --------------------------------------------------------------------------- the config hash


def test_a_new_field_at_its_default_leaves_the_config_as_format_1_wrote_it():
    config = planned(small_recipe(validation_images=100))
    assert "no_weight_decay" not in config["recipe"]["optimizer"]
    assert "reported_epoch" not in config["recipe"]
    assert "draw" not in config["recipe"]["augmentation"]
    assert "normalize_first" not in config["recipe"]["augmentation"]


# (the recipe without the knob, the knob): a run using a knob must never share a hash with
# one that does not.
KNOBS = {
    "no_weight_decay": (
        {},
        {"optimizer": {"lr": 0.05, "weight_decay": 5e-4, "no_weight_decay": ["bias"]}},
    ),
    "reported_epoch": ({"validation_images": 100}, {"reported_epoch": "best_validation"}),
    "draw": ({}, {"augmentation": {"crop": {"padding": 4}, "draw": "per_batch"}}),
    "normalize_first": ({}, {"augmentation": {"crop": {"padding": 4}, "normalize_first": True}}),
}


@pytest.mark.parametrize(("base", "knob"), KNOBS.values(), ids=KNOBS.keys())
def test_a_recipe_using_a_new_knob_has_another_hash(base, knob):
    plain, changed = planned(small_recipe(**base)), planned(small_recipe(**base, **knob))
    assert config_hash(plain) != config_hash(changed)


def test_the_same_exemptions_in_another_order_are_the_same_config():
    def recipe(names):
        return small_recipe(optimizer={"lr": 0.05, "no_weight_decay": names})

    assert recipe(["bias", "norm_shift"]) == recipe(["norm_shift", "bias"])
    assert config_hash(planned(recipe(["bias", "norm_shift"]))) == config_hash(
        planned(recipe(["norm_shift", "bias"]))
    )
    with pytest.raises(ValidationError, match="names a kind twice"):
        recipe(["bias", "bias"])
    with pytest.raises(ValidationError):
        recipe(["gamma"])


# --------------------------------------------------------------------------- weight decay


def one_step_without_gradient(no_weight_decay: list[str]) -> tuple[nn.Module, dict[str, bool]]:
    """One SGD step with every gradient zero: only weight decay moves a parameter. Returns the
    model and, for each parameter name, whether it moved."""
    recipe = small_recipe(
        optimizer={"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1,
                   "no_weight_decay": no_weight_decay}
    )  # fmt: skip
    trainer = Trainer(spec_from_name("resnet8"), recipe, 0, choose(CPU))
    model = trainer.model
    with torch.no_grad():  # biases and shifts start at 0, where decay cannot show
        for p in model.parameters():
            p.add_(0.5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    trainer.optimizer.step()
    return model, {n: not torch.equal(p, before[n]) for n, p in model.named_parameters()}


def kind_of(model: nn.Module, name: str) -> str:
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name)
    if isinstance(module, nn.BatchNorm2d):
        return "norm_scale" if leaf == "weight" else "norm_shift"
    return "bias" if leaf == "bias" else "weight"


@pytest.mark.parametrize(
    ("exempt", "decayed"),
    [
        ([], {"weight", "norm_scale", "norm_shift", "bias"}),
        # seed 004's code: Lasagne's L2 penalty covers batch norm's gamma, not beta or biases
        (["norm_shift", "bias"], {"weight", "norm_scale"}),
        # weights only: no decay on any batch-norm parameter or bias
        (["norm_scale", "norm_shift", "bias"], {"weight"}),
    ],
    ids=["all", "lasagne", "weights-only"],
)
def test_weight_decay_applies_only_to_the_parameters_not_exempted(exempt, decayed):
    model, moved = one_step_without_gradient(exempt)
    kinds = {kind_of(model, n) for n in moved}
    assert kinds == {"weight", "norm_scale", "norm_shift", "bias"}
    for name, did_move in moved.items():
        assert did_move == (kind_of(model, name) in decayed), name


def test_without_exemptions_the_optimizer_has_its_one_group_as_before():
    trainer = Trainer(spec_from_name("resnet8"), small_recipe(), 0, choose(CPU))
    (group,) = trainer.optimizer.param_groups
    assert group["params"] == list(trainer.model.parameters())
    assert group["weight_decay"] == 5e-4


# --------------------------------------------------------------------------- reported epoch


def epochs(*val_test: tuple[float | None, float]) -> list[dict]:
    return [{"epoch": i + 1, "val_error": v, "test_error": t} for i, (v, t) in enumerate(val_test)]


def test_the_best_validation_epoch_is_the_first_with_the_lowest_validation_error():
    history = epochs((30.0, 29.0), (20.0, 21.0), (25.0, 18.0), (20.0, 17.0))
    chosen = reported_record(history, "best_validation")
    assert (chosen["epoch"], chosen["test_error"]) == (2, 21.0)  # not the lowest test error
    assert reported_record(history, "last")["epoch"] == 4
    assert reported_record([], "best_validation") is None


def test_selection_on_validation_needs_a_hold_out():
    with pytest.raises(ValidationError, match="give validation_images"):
        small_recipe(reported_epoch="best_validation")


def test_a_run_reports_the_test_error_of_its_best_validation_epoch(tmp_path, cifar_root):
    from conftest import TINY_RECIPE, tiny_study

    from harness import store
    from harness.cli import main

    recipe = TINY_RECIPE + "    validation_images: 100\n    reported_epoch: best_validation\n"
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n",
                       recipe=recipe)  # fmt: skip
    results = tmp_path / "results"
    result = CliRunner().invoke(main, ["run", str(study), "--data-dir", str(cifar_root),
                                       "--results", str(results), "--device", "cpu", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    run = results / "tiny" / "r8" / "seed-0"
    rows = store.read_jsonl(run / "metrics.jsonl")
    summary = store.read_summary(run)
    best = min(rows, key=lambda r: r["val_error"])
    assert summary["data"]["validation_images"] == 100
    assert summary["reported_by"] == "best_validation"
    assert summary["reported_epoch"] == best["epoch"]
    assert summary["test_error"] == best["test_error"]
    assert summary["reported_val_error"] == best["val_error"]
    assert summary["final_test_error"] == rows[-1]["test_error"]


# --------------------------------------------------------------------------- per-batch draws

PER_BATCH = Augmentation(crop=Crop(padding=4), flip=True, draw="per_batch")
NO_NORMALISATION = Normalizer(
    Normalization(kind="none"), torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
)


def fast_batch_draws(batches: int, size: int, aug: Augmentation) -> list[list[tuple]]:
    images = torch.from_numpy(np.stack([coordinate_image()] * size))
    return [
        [
            decode(o, aug.crop.padding)
            for o in augment(images, aug, generator(CPU, 0, "e", k)).numpy()
        ]
        for k in range(batches)
    ]


def canonical_batch_draws(batches: int, size: int, aug: Augmentation) -> list[list[tuple]]:
    to_tensor = transform_for(aug, NO_NORMALISATION)
    collate = BatchAugment(aug, NO_NORMALISATION)
    samples = [(to_tensor(Image.fromarray(coordinate_image().transpose(1, 2, 0))), 0)] * size
    torch.manual_seed(1)
    out = []
    for _ in range(batches):
        x, _ = collate(samples)
        pixels = np.rint(x.numpy() * 255).astype(np.uint8)
        out.append([decode(o, aug.crop.padding) for o in pixels])
    return out


def test_per_batch_draws_are_shared_by_a_batch_and_alike_in_both_pipelines():
    n = 1500
    fast, canonical = fast_batch_draws(n, 4, PER_BATCH), canonical_batch_draws(n, 4, PER_BATCH)
    cells = [(dy, dx) for dy in range(9) for dx in range(9)]
    for batches in (fast, canonical):
        assert all(len(set(b)) == 1 for b in batches)  # one offset and flip per batch
        assert {b[0][:2] for b in batches} <= set(cells)
    # Chi-square test of homogeneity over the 81 offsets (df = 80; 0.1% critical value 124.8).
    f = np.array([sum(b[0][:2] == c for b in fast) for c in cells], dtype=float)
    g = np.array([sum(b[0][:2] == c for b in canonical) for c in cells], dtype=float)
    expected = (f + g) / 2
    assert (((f - expected) ** 2 + (g - expected) ** 2) / expected).sum() < 124.8
    for batches in (fast, canonical):
        rate = np.mean([b[0][2] for b in batches])
        assert abs(rate - 0.5) < 4 * (0.25 / n) ** 0.5


@pytest.mark.parametrize("fill", ["zeros", "reflect"])
def test_a_per_batch_crop_is_a_window_of_the_padded_image_in_both_pipelines(fill):
    from torchvision.transforms import functional as TF

    img = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    aug = Augmentation(crop=Crop(padding=4, fill=fill), flip=False, draw="per_batch")
    mode = "reflect" if fill == "reflect" else "constant"
    padded = np.asarray(TF.pad(Image.fromarray(img.transpose(1, 2, 0)), 4, padding_mode=mode))
    windows = [padded[dy : dy + 32, dx : dx + 32].transpose(2, 0, 1)
               for dy in range(9) for dx in range(9)]  # fmt: skip
    fast = augment(torch.from_numpy(np.stack([img] * 8)), aug, generator(CPU, 0, "e", 0))
    to_tensor = transform_for(aug, NO_NORMALISATION)
    x, _ = BatchAugment(aug, NO_NORMALISATION)(
        [(to_tensor(Image.fromarray(img.transpose(1, 2, 0))), 0)] * 8
    )
    canonical = np.rint(x.numpy() * 255).astype(np.uint8)
    for out in (fast.numpy(), canonical):
        assert all(any(np.array_equal(o, w) for w in windows) for o in out)


def test_the_canonical_loader_draws_per_batch_in_its_workers():
    images = np.stack([coordinate_image()] * 24)
    loader = CanonicalLoader(images, np.zeros(24, dtype=np.int64), batch_size=8,
                             augmentation=PER_BATCH, normalizer=NO_NORMALISATION,
                             drop_last=False, seed=0, device=CPU, workers=1)  # fmt: skip
    batches = [np.rint(x.numpy() * 255).astype(np.uint8) for x, _ in loader.epoch(0)]
    draws = [{decode(o, 4) for o in b} for b in batches]
    assert len(draws) == 3 and all(len(d) == 1 for d in draws)


def test_per_batch_needs_something_to_draw():
    with pytest.raises(ValidationError, match="needs a crop or a flip"):
        Augmentation(crop=None, flip=False, draw="per_batch")


# --------------------------------------------------------------------------- normalise first


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def normalised_windows(img: np.ndarray, normalizer: Normalizer, fill: str) -> list[torch.Tensor]:
    """Every crop of the normalised image padded by 4 (zeros: the mean; or reflection), plain
    and flipped: what normalising first, then padding, cropping and flipping can give."""
    x = normalizer(torch.from_numpy(img)[None])
    padded = torch.nn.functional.pad(
        x, (4, 4, 4, 4), mode="reflect" if fill == "reflect" else "constant"
    )[0]
    crops = [padded[:, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
    return crops + [c.flip(-1) for c in crops]


def is_window(out: torch.Tensor, windows: list[torch.Tensor]) -> bool:
    return any(torch.allclose(out, w, atol=1e-5) for w in windows)


@pytest.mark.parametrize("draw", ["per_image", "per_batch"])
@pytest.mark.parametrize("fill", ["zeros", "reflect"])
def test_normalising_first_pads_with_the_mean_in_both_pipelines(fill, draw):
    # A per-pixel mean makes the order visible everywhere, not only in the border: a pixel is
    # normalised with the statistics of where it came from.
    normalizer = Normalizer(
        Normalization(kind="per_pixel_mean_std"), torch.from_numpy(images(50, 1))
    )
    aug = Augmentation(crop=Crop(padding=4, fill=fill), flip=True, draw=draw, normalize_first=True)
    img = images(1)[0]
    windows = normalised_windows(img, normalizer, fill)
    batch = torch.from_numpy(np.stack([img] * 8))
    fast = augment_and_normalize(batch, aug, normalizer, generator(CPU, 0, "e", 0))
    pil = Image.fromarray(img.transpose(1, 2, 0))
    transform = transform_for(aug, normalizer)
    torch.manual_seed(0)
    if draw == "per_image":
        canonical = torch.stack([transform(pil) for _ in range(8)])
    else:
        canonical, _ = BatchAugment(aug, normalizer)([(transform(pil), 0)] * 8)
    for out in (fast, canonical):
        assert all(is_window(o, windows) for o in out)
    # Torchvision's order (augment the pixels, then normalise) gives other images.
    other = aug.model_copy(update={"normalize_first": False})
    default = augment_and_normalize(batch, other, normalizer, generator(CPU, 0, "e", 0))
    assert not all(is_window(o, windows) for o in default)


def test_the_device_loader_normalises_first_when_asked():
    x = torch.from_numpy(images(16))
    normalizer = Normalizer(Normalization(kind="per_channel"), x)
    aug = Augmentation(crop=Crop(padding=4), flip=True, normalize_first=True)
    loader = DeviceLoader(x, torch.arange(16), batch_size=8, augmentation=aug,
                          normalizer=normalizer, drop_last=False, seed=0)  # fmt: skip
    for xb, yb in loader.epoch(0):
        for out, label in zip(xb, yb, strict=True):
            assert is_window(out, normalised_windows(x[label].numpy(), normalizer, "zeros"))


def test_normalising_first_needs_a_crop_or_a_flip():
    with pytest.raises(ValidationError, match="normalize_first"):
        Augmentation(crop=None, flip=False, normalize_first=True)


# --------------------------------------------------------------------------- the study


def test_seed_004_is_trained_both_as_its_document_says_and_as_its_code_does():
    from conftest import ROOT

    from harness.studyfile import load_study

    study = load_study(ROOT / "studies" / "preact_wide.yaml")
    for name in ("preresnet110", "preresnet164", "wrn-16-4-dropout"):
        text, code = study.experiment(f"mk-{name}"), study.experiment(f"mk-code-{name}")
        assert text.model == code.model
        r = code.recipe
        assert (r.optimizer.weight_decay, r.optimizer.no_weight_decay) == (
            2e-4,
            ("bias", "norm_shift"),
        )
        assert (r.validation_images, r.reported_epoch, r.last_batch) == (
            5000,
            "best_validation",
            "keep",
        )
        assert (r.augmentation.draw, r.augmentation.normalize_first) == ("per_batch", True)
        assert r.warmup is not None and r.warmup.epochs == 10
        t = text.recipe
        assert (t.optimizer.no_weight_decay, t.reported_epoch, t.augmentation.draw) == (
            (),
            "last",
            "per_image",
        )
    # The papers' recipe, for the same nets: option B at the transitions, said in the study.
    he = study.experiment("he2016-preresnet110")
    assert he.model.shortcut == "B" and "option B" in he.note


def test_the_report_says_which_epoch_a_test_error_comes_from(tmp_path):
    from conftest import TINY_RECIPE, tiny_study
    from fake_runs import fake_run

    from harness.report import build
    from harness.results import scan
    from harness.studyfile import load_study

    recipe = TINY_RECIPE + "    validation_images: 100\n"
    path = tiny_study(tmp_path / "s.yaml", """\
  - {name: last, model: resnet8, recipe: base}
  - {name: chosen, model: resnet8, recipe: {extends: base, reported_epoch: best_validation}}
claims:
  - {source: test, where: T1, experiment: last, metric: test_error, value: 10}
  - {source: test, where: T1, experiment: chosen, metric: test_error, value: 10}
""", recipe=recipe)  # fmt: skip
    study = load_study(path)
    for name in ("last", "chosen"):
        fake_run(tmp_path / "results", study, name, test_error=10.0)
    report = build([(study, str(path))], scan(tmp_path / "results"), str(tmp_path / "results"))
    labels = {c.experiment: c.metric for c in report.studies[0].all_claims}
    assert labels == {
        "last": "test error (final epoch)",
        "chosen": "test error (best-validation epoch)",
    }
