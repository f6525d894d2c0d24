"""Fused training (harness.fusion, harness.fused_train) is training the members apart.

The proofs run on the CPU in float64, through the real code paths (`train` for the solo
runs, `train_group` for the fused ones, both writing ordinary run directories), and compare
what the store holds: weights, batch-norm statistics, momentum buffers, every epoch's losses
and errors.

The data are uniform noise with random labels and the learning rates small. On learnable
data at larger rates, training a deep net at batch 10 is chaotic: a solo ResNet-56 whose
initial weights are scaled by (1 + 1e-15) differs from the unperturbed one by 4e-6 after 10
steps and by 1 to 6% after 20 (batch 20, rate 0.002; measured on this VM, 2026-11-26), so
no two implementations could agree to 1e-10 there, whatever their correctness. Here a
mistake (a wrong weight decay, a mask of another member, a misplaced channel) shows at 1e-4
or more, and the fused runs agree with the solo ones to about 1e-15.
"""

from __future__ import annotations

import json
import signal

import pytest
import torch
from cifar_fixture import write_cifar
from conftest import ROOT, tiny_study

from harness import stop_signals, store
from harness.data import load_cached, locate
from harness.execution import choose
from harness.fused_train import FusedTrainer, train_group
from harness.fusion import FusionError, merge_model_states, split_model_state
from harness.plan import plan
from harness.studyfile import load_study
from harness.train import RunFailed, load_checkpoint, train

CPU = torch.device("cpu")
FP64 = choose(CPU, precision="fp64")

# 30 steps an epoch: 120 of the 600 training images (a different subset per seed) at batch 4,
# and 20 test images. The step's cost grows faster than the batch on the CPU (resnet20 in
# float64: 35 ms a solo step at batch 4, 121 ms at batch 10), and the proof is as sharp: a
# member given another's weight decay, momentum, rate or normalisation still moves its
# weights by 1e-4 to 1, its momentum buffers by 0.1 to 1, against 1e-14 for the correct code
# (measured on this VM, 2026-11-26).
RECIPE = """\
    optimizer: {lr: 0.0005, momentum: 0.9, weight_decay: 5.0e-4}
    batch_size: 4
    epochs: 1
    schedule: {kind: constant}
    normalization: {kind: per_channel}
    augmentation: {crop: {padding: 2}, flip: true}
    train_images: 120
    test_images: 20
"""
# 30 steps at batch 10 (300 images), for ResNet-56 and the threshold warm-up. Through ResNet-56's
# 56 layers the rounding differences of the grouped convolutions grow to 1e-10 relative after
# 30 steps at batch 10 (8e-10 at worst, a momentum buffer), and past the tolerance (1e-9) at
# batch 4 and 8 (measured on this VM, one thread, 2026-11-26): a smaller batch would trade its
# proof for luck. The warm-up's threshold and window are set for batch 10 (at batch 4 every
# seed runs to max_iterations).
BATCH_10 = RECIPE.replace("batch_size: 4", "batch_size: 10").replace(
    "train_images: 120", "train_images: 300"
)
# A second experiment that differs in everything a member may have of its own.
OTHER = (
    ", recipe: {extends: base, optimizer: {lr: 0.001, momentum: 0.8, weight_decay: 1.0e-4,"
    " nesterov: true, no_weight_decay: [norm_scale, norm_shift]},"
    " normalization: {kind: per_pixel_mean}, warmup: {lr: 0.0002, iterations: 7}}"
)
WRN_DROPOUT = (
    "{depth: 10, width: 2, preact: true, shortcut: B, depth_convention: wrn, dropout: 0.3}"
)


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    return load_cached(locate(write_cifar(tmp_path_factory.mktemp("noise"), noise=True)))


def plans_of(tmp_path, model: str, recipe: str = RECIPE, other: str = OTHER, seeds: int = 2):
    """Two seeds of one experiment and one run of another that differs in its recipe."""
    experiments = f"  - {{name: net, model: {model}, recipe: base}}\n"
    if other:
        experiments += f"  - {{name: other, model: {model}, seeds: 1{other}}}\n"
    path = tiny_study(tmp_path / "s.yaml", experiments, recipe=recipe, seeds=seeds)
    return plan(load_study(path))


def dirs(tmp_path, name, plans):
    return [tmp_path / name / p.name for p in plans]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    if not a.is_floating_point():
        return 0.0 if torch.equal(a, b) else float("inf")
    return ((a - b).abs().max() / a.abs().max().clamp_min(1e-30)).item()


def assert_same_run(solo_dir, fused_dir, tol=1e-9):
    """The two directories hold the same run: weights, batch-norm statistics and momentum
    buffers to ``tol`` relative (per tensor, against its largest entry), every epoch's
    losses to ``tol``, errors, rates and iterations exactly."""
    a = torch.load(solo_dir / store.CHECKPOINT, weights_only=True)
    b = torch.load(fused_dir / store.CHECKPOINT, weights_only=True)
    assert (a["epoch"], a["iteration"]) == (b["epoch"], b["iteration"])
    assert a["model"].keys() == b["model"].keys()
    for key, t in a["model"].items():
        assert rel(t, b["model"][key]) <= tol, key
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and len(sa) > 0
    for i in sa:
        assert rel(sa[i]["momentum_buffer"], sb[i]["momentum_buffer"]) <= tol, i
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    assert len(a["history"]) == len(b["history"])
    for ha, hb in zip(a["history"], b["history"], strict=True):
        for key in ("train_loss", "test_loss", "val_loss"):
            if ha[key] is not None:
                assert abs(ha[key] - hb[key]) <= tol * abs(ha[key]), key
        for key in ("train_error", "test_error", "val_error", "lr", "iteration", "images"):
            assert ha[key] == hb[key], key


# --------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize(
    ("model", "recipe"),
    [("resnet20", RECIPE), ("resnet56b", BATCH_10), ("resnet11-bottleneck", RECIPE),
     ("preresnet20", RECIPE), ("wrn-10-2", RECIPE), (WRN_DROPOUT, RECIPE)],
    ids=["resnet20-A", "resnet56-B", "bottleneck", "pre-activation", "wide", "wide-dropout"],
)  # fmt: skip
def test_a_fused_group_trains_each_member_as_its_solo_run(tmp_path, noise, model, recipe):
    plans = plans_of(tmp_path, model, recipe=recipe)
    solo = [
        train(p, noise, d, FP64) for p, d in zip(plans, dirs(tmp_path, "solo", plans), strict=False)
    ]
    fused = train_group(plans, noise, dirs(tmp_path, "fused", plans), FP64)
    assert [s["status"] for s in fused] == ["complete"] * 3
    assert [s["iterations_done"] for s in fused] == [30] * 3  # K = 3 members, 30 steps
    assert [s["test_error"] for s in fused] == [s["test_error"] for s in solo]
    for a, b in zip(dirs(tmp_path, "solo", plans), dirs(tmp_path, "fused", plans), strict=False):
        assert_same_run(a, b)
    # the members were different runs, and each directory says it trained fused, with whom
    assert len({s["final_train_loss"] for s in fused}) == 3
    env = store.read_environment(dirs(tmp_path, "fused", plans)[0])  # of the shape it checks
    assert env["fused"] == 3 and env["fused_group"] == [f"{p.study}/{p.name}" for p in plans]
    assert "fused" not in store.read_environment(dirs(tmp_path, "solo", plans)[0])


# --------------------------------------------------------------------------- resuming


class KillAt:
    """A progress that interrupts training at a given step, as Ctrl-C or SIGTERM would."""

    def __init__(self, step: int) -> None:
        self.step, self.seen = step, 0

    def start(self, plan, total, done):
        pass

    def note(self, text):
        pass

    def advance(self, n):
        self.seen += n
        if self.seen == self.step:
            raise KeyboardInterrupt("killed mid-epoch")

    def epoch_done(self, record):
        pass

    def close(self):
        pass


TWO_EPOCHS = RECIPE.replace("epochs: 1", "epochs: 2").replace(
    "schedule: {kind: constant}", "schedule: {kind: multistep, milestones: [1], gamma: 0.1}"
)


def test_a_fused_group_killed_mid_epoch_resumes_to_the_uninterrupted_state(tmp_path, noise):
    plans = plans_of(tmp_path, "resnet8", recipe=TWO_EPOCHS)
    train_group(plans, noise, dirs(tmp_path, "whole", plans), FP64)
    killed = dirs(tmp_path, "killed", plans)
    with pytest.raises(KeyboardInterrupt):
        train_group(plans, noise, killed, FP64, progress=KillAt(45))  # mid second epoch
    for d in killed:
        assert store.read_summary(d)["status"] == store.INTERRUPTED
        assert load_checkpoint(d, json.loads((d / store.CONFIG).read_text())["hash"])["epoch"] == 1
    resumed = train_group(plans, noise, killed, FP64)
    assert [s["status"] for s in resumed] == ["complete"] * 3
    for a, b in zip(dirs(tmp_path, "whole", plans), killed, strict=False):
        assert_same_run(a, b, tol=0.0)  # the same code from the same state: bit for bit


def test_a_fused_run_resumes_solo_and_solo_runs_resume_fused(tmp_path, noise):
    plans = plans_of(tmp_path, "resnet8", recipe=TWO_EPOCHS)
    solo = dirs(tmp_path, "solo", plans)
    for p, d in zip(plans, solo, strict=False):
        train(p, noise, d, FP64)
    # fused for the first epoch, then each run alone
    mixed = dirs(tmp_path, "fused-then-solo", plans)
    with pytest.raises(KeyboardInterrupt):
        train_group(plans, noise, mixed, FP64, progress=KillAt(31))
    for p, d in zip(plans, mixed, strict=False):
        assert train(p, noise, d, FP64)["status"] == "complete"
    # alone for the first epoch, then fused
    other = dirs(tmp_path, "solo-then-fused", plans)
    for p, d in zip(plans, other, strict=False):
        with pytest.raises(KeyboardInterrupt):
            train(p, noise, d, FP64, progress=KillAt(31))
    train_group(plans, noise, other, FP64)
    for a, b, c in zip(solo, mixed, other, strict=False):
        assert_same_run(a, b)
        assert_same_run(a, c)


def test_members_at_different_epochs_are_not_fused(tmp_path, noise):
    plans = plans_of(tmp_path, "resnet8", recipe=TWO_EPOCHS, other="")
    runs = dirs(tmp_path, "runs", plans)
    with pytest.raises(KeyboardInterrupt):
        train(plans[0], noise, runs[0], FP64, progress=KillAt(31))
    with pytest.raises(Exception, match="same epoch"):
        train_group(plans, noise, runs, FP64)


# --------------------------------------------------------------------------- divergence


def poison_the_third(monkeypatch, plans) -> None:
    """The third plan's member gets NaN images from its 10th step (it diverges)."""
    import harness.fused_train as fused_train

    real = fused_train.make_loader

    class Poisoned:
        def __init__(self, loader):
            self.loader = loader

        def __len__(self):
            return len(self.loader)

        def epoch(self, e):
            for i, (x, y) in enumerate(self.loader.epoch(e)):
                yield (x * float("nan") if i >= 10 else x), y

    def make_loader(recipe, seed, run_data, ex):
        loader = real(recipe, seed, run_data, ex)
        return Poisoned(loader) if recipe == plans[2].recipe else loader

    monkeypatch.setattr(fused_train, "make_loader", make_loader)


def test_a_member_that_diverges_is_recorded_and_the_others_go_on(tmp_path, noise, monkeypatch):
    plans = plans_of(tmp_path, "resnet8", recipe=TWO_EPOCHS)
    # Batch norm keeps these nets finite in float64 whatever the rate, so the third member
    # is made to diverge: from its 10th step its images are NaN, and so is its loss.
    poison_the_third(monkeypatch, plans)
    fused = train_group(plans, noise, dirs(tmp_path, "fused", plans), FP64)
    assert [s["status"] for s in fused] == ["complete", "complete", "diverged"]
    assert fused[2]["diverged_at"]["epoch"] == 1
    solo = [
        train(p, noise, d, FP64)
        for p, d in zip(plans[:2], dirs(tmp_path, "solo", plans), strict=False)
    ]
    for a, b in zip(
        dirs(tmp_path, "solo", plans)[:2], dirs(tmp_path, "fused", plans), strict=False
    ):
        assert_same_run(a, b)
    assert [s["test_error"] for s in fused[:2]] == [s["test_error"] for s in solo]
    # the diverged member's curves are kept, and it was not trained any further
    rows = store.read_jsonl(dirs(tmp_path, "fused", plans)[2] / store.METRICS)
    assert len(rows) == 1 and rows[0]["train_loss"] is None


def test_a_diverged_member_is_never_stepped_again(tmp_path, noise, monkeypatch):
    """Once a member is recorded as diverged, the fused step leaves its weights and momentum
    as they were: train_group drops it from the trainer. With NaN images (the test above)
    its weights are NaN either way, so here only its reported loss is NaN from its 5th step
    (of 10 an epoch): its weights stay finite, and any further update (its slot is fed zero
    images) would move them. The other goes on exactly as its solo run."""
    import harness.fused_train as fused_train

    states_by_epoch = []  # member 1's (weights, momentum buffers) after each epoch
    made = []

    def weights_and_momentum(model_state: dict, optimizer_state: dict) -> list[torch.Tensor]:
        # Running statistics move in any forward pass, stepped or not: not compared.
        kept = [
            t.clone()
            for k, t in model_state.items()
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        ]
        return kept + [s["momentum_buffer"].clone() for s in optimizer_state["state"].values()]

    class NaNLossReported(FusedTrainer):
        steps = 0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def _train_batch(self, batch):
            losses, wrong, n = super()._train_batch(batch)
            self.steps += 1
            if self.steps >= 5:
                losses = torch.where(torch.arange(self.k) == 1, float("nan"), losses)
            return losses, wrong, n

        def member_states(self):
            states = super().member_states()
            states_by_epoch.append(weights_and_momentum(*states[1]))
            return states

    monkeypatch.setattr(fused_train, "FusedTrainer", NaNLossReported)
    short = TWO_EPOCHS.replace("train_images: 120", "train_images: 40")
    plans = plans_of(tmp_path, "resnet8", recipe=short, other="")
    fused = train_group(plans, noise, dirs(tmp_path, "fused", plans), FP64)
    assert [s["status"] for s in fused] == ["complete", "diverged"]
    assert fused[1]["diverged_at"]["epoch"] == 1
    (trainer,) = made
    at_divergence = states_by_epoch[0]
    after = weights_and_momentum(*FusedTrainer.member_states(trainer)[1])
    assert all(t.isfinite().all() for t in at_divergence)
    assert len(after) == len(at_divergence) > 0
    assert all(torch.equal(a, b) for a, b in zip(at_divergence, after, strict=True))
    assert trainer.active == [0] and trainer.optimizer.active == [0]
    monkeypatch.undo()
    (solo,) = dirs(tmp_path, "solo", plans[:1])
    train(plans[0], noise, solo, FP64)
    assert_same_run(solo, dirs(tmp_path, "fused", plans)[0])


# --------------------------------------------------------------------------- errors


class FailAt(KillAt):
    """A progress that raises an error at a given step; with ``stop``, a stop signal is
    noted first, as when the signal broke something on its way (a DataLoader worker)."""

    def __init__(self, step: int, stop: pytest.MonkeyPatch | None = None) -> None:
        super().__init__(step)
        self.stop = stop

    def advance(self, n):
        self.seen += n
        if self.seen == self.step:
            if self.stop is not None:
                self.stop.setattr(stop_signals, "_stopped", signal.SIGINT)
            raise RuntimeError("boom")


def test_an_error_fails_a_group_and_a_diverged_member_keeps_its_own_end(
    tmp_path, noise, monkeypatch
):
    """Each member that was training is failed with the error and its traceback; one that
    diverged earlier stays diverged, with no traceback (it was not training)."""
    plans = plans_of(tmp_path, "resnet8", recipe=TWO_EPOCHS)
    poison_the_third(monkeypatch, plans)
    runs = dirs(tmp_path, "runs", plans)
    with pytest.raises(RunFailed, match="RuntimeError: boom"):
        train_group(plans, noise, runs, FP64, progress=FailAt(45))  # mid second epoch
    for d in runs[:2]:
        summary = store.read_summary(d)
        assert summary["status"] == store.FAILED and summary["error"] == "RuntimeError: boom"
        assert summary["epochs_done"] == 1
        text = (d / store.ERROR).read_text()
        assert text.startswith("Traceback") and "RuntimeError: boom" in text
    assert store.read_summary(runs[2])["status"] == store.DIVERGED
    assert not (runs[2] / store.ERROR).exists()


@pytest.mark.parametrize("fused", [False, True], ids=["solo", "fused"])
def test_an_error_after_a_stop_signal_is_an_interruption(tmp_path, noise, monkeypatch, fused):
    """What a stop signal broke on its way ends the run interrupted, as the signal itself
    does: KeyboardInterrupt, no traceback kept, resumable from its last epoch."""
    plans = plans_of(tmp_path, "resnet8", recipe=TWO_EPOCHS, other="")
    runs = dirs(tmp_path, "runs", plans)
    with pytest.raises(KeyboardInterrupt, match="a stop signal arrived"):
        if fused:
            train_group(plans, noise, runs, FP64, progress=FailAt(45, monkeypatch))
        else:
            train(plans[0], noise, runs[0], FP64, progress=FailAt(45, monkeypatch))
    for d in runs if fused else runs[:1]:
        summary = store.read_summary(d)
        assert summary["status"] == store.INTERRUPTED and summary["error"] is None
        assert summary["epochs_done"] == 1 and not (d / store.ERROR).exists()
        assert load_checkpoint(d, json.loads((d / store.CONFIG).read_text())["hash"])["epoch"] == 1


# --------------------------------------------------------------------------- split, merge


def test_a_fused_group_compiles_in_the_default_mode_where_a_solo_run_takes_cuda_graphs(
    tmp_path, noise, monkeypatch
):
    """On CUDA a solo run compiles in reduce-overhead by default and a fused group, whose step
    under CUDA graphs no GPU has checked yet, in the default mode; each records the mode it
    compiled in. The CUDA execution is moved to the CPU, and torch.compile only notes the mode."""
    import dataclasses

    modes = []
    monkeypatch.setattr(torch, "compile", lambda model, mode, dynamic: modes.append(mode) or model)
    ex = dataclasses.replace(choose(torch.device("cuda")), device=CPU, precision="fp32")
    plans = plans_of(tmp_path, "resnet8", other="")
    fused = train_group(plans, noise, dirs(tmp_path, "fused", plans), ex)
    assert modes == ["default"]
    assert [s["execution"]["compile_mode"] for s in fused] == ["default"] * 2
    solo = train(plans[0], noise, tmp_path / "solo", ex)
    assert modes[1:] == ["reduce-overhead"]
    assert solo["execution"]["compile_mode"] == "reduce-overhead"


def test_split_then_merge_and_merge_then_split_are_exact(tmp_path, noise):
    plans = plans_of(tmp_path, "resnet8", recipe=TWO_EPOCHS)
    runs = dirs(tmp_path, "solo", plans)
    for p, d in zip(plans, runs, strict=False):
        train(p, noise, d, FP64)
    checkpoints = [load_checkpoint(d, p.hash) for p, d in zip(plans, runs, strict=False)]
    spec = plans[0].experiment.model
    recipes, seeds = [p.recipe for p in plans], [p.seed for p in plans]
    # merge (load the members into one fused trainer), then split: the same states
    trainer = FusedTrainer(spec, recipes, seeds, FP64, checkpoints)
    for (model, optimizer), c in zip(trainer.member_states(), checkpoints, strict=True):
        assert model.keys() == c["model"].keys()
        assert all(torch.equal(model[k], c["model"][k]) for k in model)
        assert optimizer["param_groups"] == c["optimizer"]["param_groups"]
        assert optimizer["state"].keys() == c["optimizer"]["state"].keys()
        for i, s in c["optimizer"]["state"].items():
            assert torch.equal(optimizer["state"][i]["momentum_buffer"], s["momentum_buffer"])
    # split, then merge: the same fused state
    fused = trainer.model.state_dict()
    again = merge_model_states(split_model_state(fused, 3))
    assert all(torch.equal(again[k], fused[k]) for k in fused)
    rebuilt = FusedTrainer(spec, recipes, seeds, FP64, [
        {"model": m, "optimizer": o} for m, o in trainer.member_states()
    ])  # fmt: skip
    assert all(torch.equal(a, b) for a, b in
               zip(rebuilt.optimizer.buffers, trainer.optimizer.buffers, strict=True))  # fmt: skip


def test_runs_that_cannot_be_one_network_are_refused(tmp_path, noise):
    other_batch = ", recipe: {extends: base, batch_size: 20}"
    plans = plans_of(tmp_path, "resnet8", other=other_batch)
    with pytest.raises(FusionError, match="cannot be fused"):
        train_group(plans, noise, dirs(tmp_path, "x", plans), FP64)
    with pytest.raises(FusionError, match="share one architecture"):
        from harness.fusion import fuse_models
        from harness.zoo import build_model, spec_from_name

        fuse_models([build_model(spec_from_name("resnet8")), build_model(spec_from_name("plain8"))])


# Each Recipe field changed alone, from small_recipe(validation_images=20), by what fusion
# must do with it: keep runs that differ in it apart (they could not be one network with the
# same batches and steps) or fuse them, each member with its own (proven below and in
# test_a_fused_group_trains_each_member_as_its_solo_run). Written out here, apart from the
# code's sets, so that moving a field from one set to the other fails a test too.
MUST_SHARE = {
    "batch_size": {"batch_size": 16},
    "last_batch": {"last_batch": "drop"},
    "train_images": {"train_images": 300},
    "validation_images": {"validation_images": 10},
    "test_images": {"test_images": 50},
    "epochs": {"epochs": 2},
    "iterations": {"epochs": None, "iterations": 30},
}
EACH_OWN = {
    "optimizer": {"optimizer": {"lr": 0.01, "momentum": 0.5, "nesterov": True,
                                "weight_decay": 0.0, "no_weight_decay": ["bias"]}},
    "schedule": {"schedule": {"kind": "cosine", "unit": "iteration"}},
    "warmup": {"warmup": {"lr": 0.01, "iterations": 5}},
    "normalization": {"normalization": {"kind": "none"}},
    "augmentation": {"augmentation": {"crop": {"padding": 4, "fill": "reflect"}}},
    "reported_epoch": {"reported_epoch": "best_validation"},
    "note": {"note": "another"},
}  # fmt: skip


def test_every_recipe_field_is_either_shared_by_a_group_or_each_members_own():
    """A field added to the schema fails here until fusion says what it does with it: else
    the fused trainer could read it from one member for all (or FusedSGD ignore it) unseen."""
    from harness.fused_train import PER_MEMBER_RECIPE_FIELDS, SHARED_RECIPE_FIELDS
    from harness.fusion import FusedSGD
    from harness.schema import Optimizer, Recipe

    unclassified = set(Recipe.model_fields) - SHARED_RECIPE_FIELDS - PER_MEMBER_RECIPE_FIELDS
    assert not unclassified, f"say in harness/fused_train.py how fusion treats {unclassified}"
    assert set(Recipe.model_fields) == SHARED_RECIPE_FIELDS | PER_MEMBER_RECIPE_FIELDS
    assert (set(MUST_SHARE), set(EACH_OWN)) == (SHARED_RECIPE_FIELDS, PER_MEMBER_RECIPE_FIELDS)
    assert set(Optimizer.model_fields) == FusedSGD.HONOURS


def test_runs_that_differ_in_one_field_are_grouped_as_the_field_requires(tmp_path):
    """Changed alone, a field that must be shared keeps the runs apart, in the key and in the
    groups; a member's own field does not."""
    from types import SimpleNamespace

    from conftest import small_recipe

    from harness.fused_train import fusion_key
    from harness.grouping import groups
    from harness.zoo import spec_from_name

    spec = spec_from_name("resnet8")

    def run(name: str, recipe) -> SimpleNamespace:
        return SimpleNamespace(name=name, recipe=recipe, experiment=SimpleNamespace(model=spec),
                               directory=lambda results: results / name)  # fmt: skip

    base = run("base", small_recipe(validation_images=20))
    for field, change in {**MUST_SHARE, **EACH_OWN}.items():
        other = run(field, small_recipe(**{"validation_images": 20, **change}))
        apart = field in MUST_SHARE
        assert (fusion_key(other) != fusion_key(base)) == apart, field
        made = groups([base, other], tmp_path, choose(CPU), 2)
        assert len(made) == (2 if apart else 1), field


def test_nesterov_without_momentum_is_refused_at_load_not_left_to_fail_a_fused_group(tmp_path):
    """torch's SGD refuses Nesterov without momentum, so alone such a run fails at its start.
    The schema took it, and fused with runs without momentum, FusedSGD trained it as plain SGD
    for an epoch, then the first checkpoint's torch.optim.SGD failed the whole group, members
    that would have completed alone too. Refused when the study is read, it never trains."""
    from harness.studyfile import StudyError

    experiments = (
        "  - {name: a, model: resnet8, recipe: {extends: base, optimizer: {lr: 0.01,"
        " momentum: 0.0}}}\n"
        "  - {name: b, model: resnet8, recipe: {extends: base, optimizer: {lr: 0.01,"
        " momentum: 0.0, nesterov: true}}}\n"
    )
    with pytest.raises(StudyError, match="nesterov") as info:
        load_study(tiny_study(tmp_path / "s.yaml", experiments))
    assert "momentum" in str(info.value)


# Experiments that differ from the base (and each other) in what OTHER leaves alone: the
# schedule and its unit, a warm-up counted in epochs, every kind of crop, flip and draw and
# the order of normalisation and augmentation, every kind of normalisation, the reporting rule.
EACH_THEIR_OWN = (
    "  - {name: a, model: resnet8, seeds: 1, recipe: {extends: base,"
    " schedule: {kind: cosine, min_lr: 0.0001, unit: iteration}, warmup: {lr: 0.0002, epochs: 1},"
    " augmentation: {crop: {padding: 4, fill: reflect}, flip: false},"
    " normalization: {kind: per_pixel_mean_std}, reported_epoch: best_validation}}\n"
    "  - {name: b, model: resnet8, seeds: 1, recipe: {extends: base,"
    " schedule: {kind: multistep, milestones: [1], gamma: 0.5},"
    " augmentation: {crop: {padding: 3}, draw: per_batch, normalize_first: true},"
    " normalization: {kind: per_channel, mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3]}}}\n"
    "  - {name: c, model: resnet8, seeds: 1, recipe: {extends: base,"
    " schedule: {kind: cosine, unit: epoch}, augmentation: {crop: null, flip: true},"
    " normalization: {kind: none}}}\n"
)


def test_each_member_keeps_its_schedule_augmentation_normalisation_and_reporting_rule(
    tmp_path, noise
):
    two_epochs = RECIPE.replace("epochs: 1", "epochs: 2") + "    validation_images: 20\n"
    experiments = "  - {name: net, model: resnet8, recipe: base}\n" + EACH_THEIR_OWN
    plans = plan(load_study(tiny_study(tmp_path / "s.yaml", experiments, recipe=two_epochs)))
    solo = [
        train(p, noise, d, FP64) for p, d in zip(plans, dirs(tmp_path, "solo", plans), strict=True)
    ]
    fused = train_group(plans, noise, dirs(tmp_path, "fused", plans), FP64)
    assert [s["status"] for s in fused] == ["complete"] * 4
    for a, b in zip(dirs(tmp_path, "solo", plans), dirs(tmp_path, "fused", plans), strict=True):
        assert_same_run(a, b)
    for key in ("test_error", "reported_epoch", "reported_by", "normalization"):
        assert [s[key] for s in fused] == [s[key] for s in solo], key
    assert len({s["final_train_loss"] for s in fused}) == 4


# --------------------------------------------------------------------------- repro run --fuse


def test_repro_run_fuse_fuses_the_seeds_of_each_experiment(tmp_path, cifar_root):
    from click.testing import CliRunner

    from harness.cli import main

    # The smoke study (three architectures, its claims) at batch 10 on 40 test and 20
    # validation images: what --fuse does is the same, in float64 a tenth of the work.
    study = tmp_path / "smoke.yaml"
    study.write_text((ROOT / "studies" / "smoke.yaml").read_text()
                     .replace("batch_size: 100", "batch_size: 10")
                     .replace("test_images: 1000", "test_images: 40")
                     .replace("validation_images: 500", "validation_images: 20"))  # fmt: skip
    smoke = str(study)
    common = ["--smoke", "--seeds", "2", "--device", "cpu", "--precision", "fp64",
              "--data-dir", str(cifar_root), "--quiet"]  # fmt: skip
    runner = CliRunner()
    fused = runner.invoke(main, ["run", smoke, "--fuse", "2", "--results",
                                 str(tmp_path / "fused"), *common])  # fmt: skip
    assert fused.exit_code == 0, fused.output
    # three experiments of different architectures: three groups of two seeds
    assert fused.output.count("fused: 2 runs as one network") == 3
    alone = runner.invoke(main, ["run", smoke, "--results", str(tmp_path / "alone"), *common])
    assert alone.exit_code == 0 and "fused:" not in alone.output
    for exp in ("resnet8", "plain8", "wrn-10-1-dropout"):
        for seed in (0, 1):
            name = f"smoke/{exp}/seed-{seed}~smoke"
            a = store.read_summary(tmp_path / "alone" / name)
            f = store.read_summary(tmp_path / "fused" / name)
            assert f["execution"]["fused"] == 2 and "fused" not in a["execution"]
            assert f["execution"]["fused_group"] == [f"smoke/{exp}/seed-{s}~smoke" for s in (0, 1)]
            assert_same_run(tmp_path / "alone" / name, tmp_path / "fused" / name)
    # the report: the same claims and verdicts; the runs say they were fused
    pages = {}
    for kind in ("alone", "fused"):
        out = tmp_path / f"{kind}.json"
        result = runner.invoke(main, ["report", "--study", smoke, "--results",
                                      str(tmp_path / kind), "--format", "json",
                                      "--out", str(out)])  # fmt: skip
        assert result.exit_code == 0, result.output
        pages[kind] = json.loads(out.read_text())
        html = tmp_path / f"{kind}.html"
        runner.invoke(main, ["report", "--study", smoke, "--results", str(tmp_path / kind),
                             "--out", str(html)])  # fmt: skip
        pages[kind + ".html"] = html.read_text()
    assert pages["alone"] == pages["fused"]
    assert "fused group of 2" in pages["fused.html"]
    assert "fused group" not in pages["alone.html"]
    # auto does not fuse on a CPU, and says why
    auto = runner.invoke(main, ["run", smoke, "--fuse", "auto", "--only", "resnet8",
                                "--results", str(tmp_path / "auto"), *common])  # fmt: skip
    assert auto.exit_code == 0 and "fused:" not in auto.output
    assert "--fuse auto: not fusing on a CPU" in auto.output


@pytest.mark.parametrize("value", ["0", "x", "-2", "2.5"])
def test_a_bad_fuse_value_is_refused(value, tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    result = CliRunner().invoke(main, ["run", "studies/smoke.yaml", "--fuse", value])
    assert result.exit_code == 2 and "--fuse" in result.output and "auto, off" in result.output


def test_groups_are_made_even_and_never_mix_what_cannot_be_one_network(tmp_path):
    from harness.grouping import groups

    experiments = (
        "  - {name: a, model: resnet8, recipe: base}\n"
        "  - {name: b, model: resnet8, recipe: {extends: base, optimizer: {lr: 0.1}}}\n"
        "  - {name: c, model: plain8, recipe: base}\n"
        "  - {name: d, model: resnet8, recipe: {extends: base, batch_size: 20}}\n"
    )
    plans = plan(load_study(tiny_study(tmp_path / "s.yaml", experiments, seeds=3)))
    ex = choose(CPU)
    names = [[p.name for p in g] for g in groups(plans, tmp_path / "r", ex, 4)]
    # a and b differ only in the rate: six runs, at most four to a group -> 3 + 3
    assert names == [
        ["a/seed-0", "a/seed-1", "a/seed-2"],
        ["b/seed-0", "b/seed-1", "b/seed-2"],
        ["c/seed-0", "c/seed-1", "c/seed-2"],
        ["d/seed-0", "d/seed-1", "d/seed-2"],
    ]
    # auto on a CPU: no fusion, where it measured no faster (harness.grouping.AUTO_MAX_CPU)
    assert all(len(g) == 1 for g in groups(plans, tmp_path / "r", ex, "auto"))
    # where the training device is not this one (Slurm), auto takes the size it is given
    assert [len(g) for g in groups(plans, tmp_path / "r", ex, "auto", auto=8)] == [6, 3, 3]
    assert all(len(g) == 1 for g in groups(plans, tmp_path / "r", ex, 1))
    canonical = choose(CPU, pipeline="canonical")
    assert all(len(g) == 1 for g in groups(plans, tmp_path / "r", canonical, "auto"))


def test_each_member_ends_its_own_threshold_warm_up(tmp_path, noise):
    """He et al.'s ResNet-110 warm-up lasts until the training error falls below a threshold,
    which each seed reaches at its own iteration; fused, each member still ends its own."""
    warm = BATCH_10.replace(
        "schedule: {kind: constant}",
        "schedule: {kind: constant}\n"
        "    warmup: {lr: 0.0001, until_train_error_below: 89, window: 5, max_iterations: 28}",
    )
    plans = plans_of(tmp_path, "resnet8", recipe=warm, other="", seeds=3)
    solo = [
        train(p, noise, d, FP64) for p, d in zip(plans, dirs(tmp_path, "solo", plans), strict=True)
    ]
    fused = train_group(plans, noise, dirs(tmp_path, "fused", plans), FP64)
    ends = [s["warmup_ended_at_iteration"] for s in solo]
    assert [s["warmup_ended_at_iteration"] for s in fused] == ends
    assert len(set(ends)) > 1, ends  # the seeds ended their warm-ups apart
    for a, b in zip(dirs(tmp_path, "solo", plans), dirs(tmp_path, "fused", plans), strict=True):
        assert_same_run(a, b)


def test_the_cpu_stem_computed_member_by_member_is_the_grouped_convolution(monkeypatch):
    from harness.fusion import FusedConv2d, fuse_models
    from harness.zoo import build_model, spec_from_name

    torch.manual_seed(0)
    fused = fuse_models([build_model(spec_from_name("resnet8")).double() for _ in range(3)])
    x = torch.randn(4, 9, 32, 32, dtype=torch.float64, requires_grad=True)
    split = fused(x)
    (grad_split,) = torch.autograd.grad(split.sum(), x)
    monkeypatch.setattr(FusedConv2d, "SPLIT_ON_CPU_BELOW", 0)  # grouped, as on a GPU
    grouped = fused(x)
    (grad_grouped,) = torch.autograd.grad(grouped.sum(), x)
    assert torch.allclose(split, grouped, rtol=1e-12, atol=0)
    assert torch.allclose(grad_split, grad_grouped, rtol=1e-12, atol=1e-15)


def test_a_fused_group_killed_with_sigkill_resumes_bit_for_bit(tmp_path, cifar_root):
    """`repro run --fuse 2` killed with SIGKILL twice at random moments, then run again, ends
    with exactly the curves of an uninterrupted fused run, for both members (dropout on)."""
    import random

    from conftest import TINY_RECIPE
    from test_run import _cli, curves, kill_twice, repro_on_one_thread, run_args, summary

    recipe = TINY_RECIPE.replace("epochs: 3", "epochs: 5").replace("[2]", "[3]")
    recipe += "    validation_images: 100\n"
    study = tiny_study(tmp_path / "s.yaml",
                       "  - {name: w, model: {name: wrn-10-1, dropout: 0.2}, recipe: base}\n",
                       recipe, seeds=2)  # fmt: skip
    runs = ["tiny/w/seed-0", "tiny/w/seed-1"]

    def in_process(results):  # on one thread, as the killed processes (see test_run)
        result = repro_on_one_thread(*run_args(study, cifar_root, results, "--fuse", "2"))
        assert result.exit_code == 0, result.output

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    in_process(straight)
    command = [*_cli(killed, study, cifar_root), "--fuse", "2"]
    kills = kill_twice(command, killed / runs[1] / store.METRICS, random.Random(1))
    assert kills >= 1, "the group finished before it could be killed; make it longer"
    in_process(killed)
    for run in runs:
        a, b = curves(straight, run), curves(killed, run)
        assert [r["epoch"] for r in b] == [1, 2, 3, 4, 5]
        assert a == b
        resumed = summary(killed, run)
        assert resumed["status"] == "complete" and resumed["execution"]["fused"] == 2


def test_the_fused_step_never_reads_the_device(cifar_root, device_reads):
    """As the solo step: host reads (.item(), .tolist(), truth values) once per epoch, however
    many steps, so a GPU never waits for the host between steps."""
    from conftest import small_recipe

    from harness.fused_train import member_batches
    from harness.schedule import LearningRate, Length
    from harness.train import SilentProgress, make_loader, prepare_data
    from harness.zoo import spec_from_name

    dataset = load_cached(locate(cifar_root))
    reads = device_reads

    def reads_for(steps: int) -> int:
        recipe = small_recipe(train_images=steps * 32, augmentation={"crop": {"padding": 4}})
        ex = choose(CPU)
        loaders = [make_loader(recipe, s, prepare_data(recipe, s, dataset, CPU), ex)
                   for s in range(3)]  # fmt: skip
        trainer = FusedTrainer(spec_from_name("resnet8"), [recipe] * 3, [0, 1, 2], ex)
        lr_ats = [LearningRate(recipe, Length.of(recipe, len(loaders[0]))) for _ in range(3)]

        batches = member_batches(loaders, 0, len(loaders[0]))
        before = reads["n"]
        trainer.train_epoch(batches, lr_ats, 0, SilentProgress())
        return reads["n"] - before

    assert reads_for(2) == reads_for(8) <= 3


def test_the_alive_mask_is_made_once_not_copied_to_the_device_every_step():
    """On the H100 the fused step synchronised once a step: the execution's device "cuda" never
    equals a tensor's "cuda:0", so the mask of live members was rebuilt and copied over every
    step. A device named with an index on the CPU shows the same mismatch here."""
    import dataclasses

    from conftest import small_recipe

    from harness.zoo import spec_from_name

    ex = dataclasses.replace(choose(CPU), device=torch.device("cpu", 0))
    recipe = small_recipe()
    trainer = FusedTrainer(spec_from_name("resnet8"), [recipe] * 3, [0, 1, 2], ex)
    first = trainer._alive_mask()
    assert trainer._alive_mask() is first  # the same tensor: no copy per step
    trainer.drop(1)
    after = trainer._alive_mask()
    assert after is not first and after.tolist() == [True, False, True]
    assert trainer._alive_mask() is after
