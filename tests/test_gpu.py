"""What only a CUDA device can show about the fast path, checked wherever one is present (the
GPU slot's runbook, benchmarks/gpu_box.sh, runs this file before it trains; the nightly GPU
job runs it after its training; CI has no GPU and skips it).

- the training step makes no host synchronisation (torch's sync debug mode counts them), in
  the fast path's default compile mode on CUDA, reduce-overhead (CUDA graphs);
- torch.compile really compiles there (its fp32 step matches eager's), bf16 autocast stays
  close to fp32, and CUDA graphs (reduce-overhead) train like the default compile mode (and
  `repro bench --profile`'s host time per step runs under them);
- NVML telemetry reads real figures;
- a whole `repro run` takes the fast path's defaults (CUDA graphs among them) and records them;
- a fused group compiles there (in the default mode, a fused group's default) and trains each
  member like its solo run (fp32), and the fused step makes no host synchronisation either;
- a fused group under CUDA graphs trains like one in the default mode: what would make
  reduce-overhead a fused group's default too (harness.execution.default_compile_mode).

The eight tests before reduce-overhead became the default all passed on one H200 (2026-11-27,
commit 9f221eb); the last one and the compile mode in the others are not yet run on a GPU.
"""

from __future__ import annotations

import itertools
import json
import warnings

import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_RECIPE, small_recipe, tiny_study

from harness import data as cifar
from harness import store
from harness.cli import main
from harness.execution import choose, configure_backends
from harness.schedule import LearningRate, Length
from harness.schema import Recipe
from harness.step_phases import time_phases
from harness.telemetry import Telemetry
from harness.train import SilentProgress, Trainer, make_loader, prepare_data
from harness.zoo import spec_from_name

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")


def _recipe(images: int) -> Recipe:
    augmentation = {"crop": {"padding": 4}, "flip": True}
    return small_recipe(epochs=4, train_images=images, augmentation=augmentation)


def _syncs_in_an_epoch(trainer, loader, lr_at, epoch: int, steps: int) -> list[str]:
    """The synchronising operations torch reports while the trainer runs ``steps`` steps."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.train_epoch(itertools.islice(loader.epoch(epoch), steps), lr_at, 0,
                                SilentProgress())  # fmt: skip
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [str(w.message) for w in caught if "synchroniz" in str(w.message)]


# First the two tests that failed on the second H100 slot (2026-11-26, box-call3.log) and
# were fixed on the CPU since: a check stopped by the slot's timeout loses the last ones.


@pytest.fixture
def true_fp32():
    """fp32 without TF32: with PyTorch's default TF32 convolutions, compiled and eager
    resnet20 differed by 0.5% at the third step on the H100 (2026-11-26), rounding that says
    nothing about the compiler."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_a_compiled_resnet20_step_matches_eager_in_fp32(cifar_root, true_fp32):
    """The model every slot trains first: Inductor's CUDA code computes what eager does."""
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    recipe = _recipe(images=96)
    losses = {}
    for name, compile in (("eager", False), ("compiled", True)):
        ex = choose(CUDA, precision="fp32", compile=compile)
        configure_backends(ex)
        run_data = prepare_data(recipe, 0, dataset, CUDA)
        loader = make_loader(recipe, 0, run_data, ex)
        trainer = Trainer(spec_from_name("resnet20"), recipe, 0, ex)
        trainer.model.train()
        losses[name] = [trainer.step(x, y)[1].item() for x, y in loader.epoch(0)]
        assert trainer.compile_fallback is None
    # The first step is one function on the same weights; each later one also carries the
    # earlier steps' rounding, grown by training (lr 0.1): the second GPU slot measured the
    # third step's loss 1.05e-3 apart with TF32 off, the first two within 1e-3.
    assert losses["compiled"][0] == pytest.approx(losses["eager"][0], rel=1e-3)
    assert losses["compiled"][1:] == pytest.approx(losses["eager"][1:], rel=5e-3)
    assert losses["compiled"][-1] != losses["compiled"][0]


def test_the_fused_step_never_synchronises_with_the_host(cifar_root):
    """Three resnet8 runs as one compiled bf16 network: as many syncs for 16 steps as for 2."""
    from harness.fused_train import FusedTrainer, member_batches

    dataset = cifar.load(cifar_root / cifar.FOLDER)
    recipe = _recipe(images=640)
    ex = choose(CUDA).fused(("seed-0", "seed-1", "seed-2"))  # as train_group compiles a group
    configure_backends(ex)
    loaders = [make_loader(recipe, s, prepare_data(recipe, s, dataset, CUDA), ex)
               for s in range(3)]  # fmt: skip
    trainer = FusedTrainer(spec_from_name("resnet8"), [recipe] * 3, [0, 1, 2], ex)
    lr_ats = [LearningRate(recipe, Length.of(recipe, len(loaders[0]))) for _ in range(3)]

    def syncs(epoch: int, steps: int) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                batches = member_batches(loaders, epoch, steps)
                trainer.train_epoch(batches, lr_ats, 0, SilentProgress())
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return [str(w.message) for w in caught if "synchroniz" in str(w.message)]

    trainer.train_epoch(member_batches(loaders, 0, len(loaders[0])), lr_ats, 0, SilentProgress())
    assert trainer.compile_fallback is None
    syncs(1, 2)  # the first measured epoch's one-off, as in the solo test
    few, many = syncs(2, 2), syncs(3, 16)
    assert len(few) == len(many) <= 3, (few, many)


def test_the_fast_path_step_never_synchronises_with_the_host(cifar_root):
    """In the fast path's defaults, CUDA graphs among them (the default compile mode's step
    passed on an H100 and an H200 before they became the default)."""
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    recipe = _recipe(images=640)
    ex = choose(CUDA)
    assert ex.compile_mode == "reduce-overhead"
    configure_backends(ex)
    run_data = prepare_data(recipe, 0, dataset, CUDA)
    loader = make_loader(recipe, 0, run_data, ex)
    trainer = Trainer(spec_from_name("resnet8"), recipe, 0, ex)
    lr_at = LearningRate(recipe, Length.of(recipe, len(loader)))
    trainer.train_epoch(loader.epoch(0), lr_at, 0, SilentProgress())  # compile, autotune
    assert trainer.compile_fallback is None
    # Measured once before counting: on the H100 (2026-11-26) the first epoch under sync
    # debug mode reported one synchronisation more than the later ones (3 for 2 steps, then
    # 2 for 8), a one-off that is not a cost per step.
    _syncs_in_an_epoch(trainer, loader, lr_at, 1, 2)
    # The epoch's own reads (loss and error sums) are a fixed number, whatever the steps.
    few, many = (_syncs_in_an_epoch(trainer, loader, lr_at, e, n) for e, n in ((2, 2), (3, 16)))
    assert len(few) == len(many) <= 3, (few, many)


def test_cuda_graphs_train_like_the_default_compile_mode(cifar_root):
    """reduce-overhead replays CUDA graphs whose outputs the next replay overwrites: the
    step's metric sums must read them in time. Measured 3.8x the canonical pipeline on the
    H100 (2026-11-26); this decides whether it can become the fast path's default."""
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    recipe = _recipe(images=320)
    results = {}
    for mode in ("default", "reduce-overhead"):
        ex = choose(CUDA, compile_mode=mode)
        configure_backends(ex)
        run_data = prepare_data(recipe, 0, dataset, CUDA)
        loader = make_loader(recipe, 0, run_data, ex)
        trainer = Trainer(spec_from_name("resnet20"), recipe, 0, ex)
        lr_at = LearningRate(recipe, Length.of(recipe, len(loader)))
        epochs = [trainer.train_epoch(loader.epoch(e), lr_at, e * len(loader), SilentProgress())
                  for e in range(3)]  # fmt: skip
        assert trainer.compile_fallback is None
        results[mode] = [(r.train_loss, r.train_error) for r in epochs]
    # The bench's host time per step (repro bench --profile) under CUDA graphs, on the warm
    # trainer: its CUDA events are asked, never waited for, and the graphs still replay.
    phases = time_phases(trainer, (loader.epoch(e) for e in range(3, 6)), lr_at, 0, steps=8)
    assert phases.steps == 8 and 0 <= phases.device_waited <= 7
    assert phases.wall_ms > 0 and trainer.compile_fallback is None
    for (loss_d, err_d), (loss_g, err_g) in zip(*results.values(), strict=True):
        assert loss_g == pytest.approx(loss_d, rel=0.05)
        assert abs(err_g - err_d) < 5.0  # percentage points, over 320 images


def test_compiled_bf16_stays_close_to_eager_fp32(cifar_root):
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    recipe = _recipe(images=96)
    losses = {}
    executions = {"fast": choose(CUDA), "fp32": choose(CUDA, precision="fp32", compile=False)}
    for name, ex in executions.items():
        run_data = prepare_data(recipe, 0, dataset, CUDA)
        loader = make_loader(recipe, 0, run_data, ex)
        trainer = Trainer(spec_from_name("resnet8"), recipe, 0, ex)
        lr_at = LearningRate(recipe, Length.of(recipe, len(loader)))
        result = trainer.train_epoch(loader.epoch(0), lr_at, 0, SilentProgress())
        assert trainer.compile_fallback is None
        losses[name] = result.train_loss
    assert losses["fast"] == pytest.approx(losses["fp32"], rel=0.05)


def test_nvml_telemetry_reads_the_gpu():
    telemetry = Telemetry(CUDA, interval=0.05)
    assert telemetry.available, telemetry.reason
    assert telemetry.driver_version()
    telemetry.start()
    a = torch.randn(4096, 4096, device=CUDA)
    for _ in range(200):
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
    figures = telemetry.take_epoch()
    telemetry.stop()
    assert figures["samples"] >= 1
    assert figures["gpu_memory_mib_max"] > 0 and figures["power_w_mean"] > 0
    assert figures["energy_j"] > 0 and figures["torch_peak_memory_mib"] >= 64


def test_a_run_on_cuda_takes_and_records_the_fast_path(tmp_path, cifar_root):
    """At batch 64 the 600 images end each epoch with a batch of 24, which runs eagerly
    between CUDA-graph replays, as CIFAR-10's 50,000 at batch 128 end with one of 80."""
    partial = TINY_RECIPE.replace("batch_size: 50", "batch_size: 64")
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n",
                       recipe=partial)  # fmt: skip
    results = tmp_path / "results"
    outcome = CliRunner().invoke(main, ["run", str(study), "--data-dir", str(cifar_root),
                                        "--results", str(results), "--quiet"])  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "compiled (reduce-overhead) = CUDA graphs, channels_last" in outcome.output
    summary = json.loads((results / "tiny" / "r8" / "seed-0" / "summary.json").read_text())
    execution = summary["execution"]
    assert (execution["pipeline"], execution["precision"], execution["compile"],
            execution["compile_mode"], execution["channels_last"],
            execution["cudnn_benchmark"]) == (
        "fast", "bf16", True, "reduce-overhead", True, True)  # fmt: skip
    assert summary["sessions"][0]["compile_mode"] == "reduce-overhead"
    assert summary["status"] == "complete" and summary["compile_fallback"] is None
    assert summary["telemetry"]["energy_j"] > 0
    epochs = store.read_jsonl(results / "tiny" / "r8" / "seed-0" / store.METRICS)
    assert [e["images"] for e in epochs] == [600] * 3  # the partial batch trained too
    assert all(e["train_loss"] == e["train_loss"] for e in epochs)  # and nothing went NaN


def test_a_fused_group_trains_on_cuda_compiled_like_its_members_apart(tmp_path, cifar_root,
                                                                      true_fp32):  # fmt: skip
    """The fused network compiles on the GPU (grouped convolutions, the batched classifier)
    and, in fp32 without TF32, each member's run stays within rounding of its solo run."""
    from harness.fused_train import train_group
    from harness.plan import plan
    from harness.studyfile import load_study
    from harness.train import train

    dataset = cifar.load(cifar_root / cifar.FOLDER)
    study = tiny_study(tmp_path / "s.yaml", "  - {name: net, model: resnet8, recipe: base}\n",
                       seeds=3)  # fmt: skip
    plans = plan(load_study(study))
    # The default mode for the solo runs too, a fused group's default: like against like.
    ex = choose(CUDA, precision="fp32", compile_mode="default")
    fused = train_group(plans, dataset, [tmp_path / "f" / p.name for p in plans], ex)
    assert all(s["status"] == "complete" and s["compile_fallback"] is None for s in fused)
    for p in plans:
        train(p, dataset, tmp_path / "s" / p.name, ex)
    for p, summary in zip(plans, fused, strict=True):
        assert summary["execution"]["fused"] == 3
        # The first epoch (12 steps): later, training amplifies the kernels' different
        # rounding as it amplifies any difference (see tests/test_fusion.py's docstring).
        a = store.read_jsonl(tmp_path / "s" / p.name / store.METRICS)[0]["train_loss"]
        b = store.read_jsonl(tmp_path / "f" / p.name / store.METRICS)[0]["train_loss"]
        assert abs(a - b) < 1e-3 * a, (p.name, a, b)


def test_a_fused_group_trains_under_cuda_graphs_like_the_default_mode(tmp_path, cifar_root):
    """A group compiles in the default mode unless --compile-mode says otherwise, as its step
    under CUDA graphs was never checked on a GPU: this is that check, as the solo one above
    (each member's losses within 5% relative and training errors within 5 points, per epoch).
    It passing is what would make reduce-overhead a fused group's default too."""
    from harness.fused_train import train_group
    from harness.plan import plan
    from harness.studyfile import load_study

    dataset = cifar.load(cifar_root / cifar.FOLDER)
    study = tiny_study(tmp_path / "s.yaml", "  - {name: net, model: resnet8, recipe: base}\n",
                       seeds=2)  # fmt: skip
    plans = plan(load_study(study))
    curves = {}
    for mode in ("default", "reduce-overhead"):
        ex = choose(CUDA, compile_mode=mode)
        summaries = train_group(plans, dataset, [tmp_path / mode / p.name for p in plans], ex)
        assert all(s["status"] == "complete" and s["compile_fallback"] is None
                   and s["execution"]["compile_mode"] == mode for s in summaries)  # fmt: skip
        curves[mode] = [[(e["train_loss"], e["train_error"])
                         for e in store.read_jsonl(tmp_path / mode / p.name / store.METRICS)]
                        for p in plans]  # fmt: skip
    for default, graphs in zip(curves["default"], curves["reduce-overhead"], strict=True):
        for (loss_d, err_d), (loss_g, err_g) in zip(default, graphs, strict=True):
            assert loss_g == pytest.approx(loss_d, rel=0.05)
            assert abs(err_g - err_d) < 5.0  # percentage points, over 600 images
