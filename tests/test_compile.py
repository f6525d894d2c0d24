"""The GPU settings of the fast path, exercised on the CPU: torch.compile (Dynamo and
Inductor), bf16 autocast and channels_last, in the trainer and in a whole run.

No GPU is needed: Inductor compiles for the CPU here, which goes through the same Dynamo
tracing and the same trainer code as on CUDA. What only a GPU can show (speed, cuDNN,
CUDA graphs) is measured by `repro bench` on one.
"""

from __future__ import annotations

import pytest
import torch
from conftest import small_recipe, tiny_study

from harness import data as cifar
from harness.execution import Execution
from harness.plan import plan
from harness.schedule import LearningRate, Length
from harness.schema import Recipe
from harness.studyfile import load_study
from harness.train import SilentProgress, Trainer, make_loader, prepare_data, train
from harness.zoo import ModelSpec, build_model, spec_from_name

CPU = torch.device("cpu")

# One small member of every code path in harness.resnet.
ARCHITECTURES = {
    "option A": ModelSpec(depth=8),
    "option B": ModelSpec(depth=8, shortcut="B"),
    "option C": ModelSpec(depth=8, shortcut="C"),
    "plain": ModelSpec(depth=8, shortcut="none"),
    "bottleneck": ModelSpec(depth=11, block="bottleneck", shortcut="B"),
    "pre-activation bottleneck": ModelSpec(depth=11, block="bottleneck", preact=True, shortcut="B"),
    "wide with dropout": ModelSpec(
        depth=10, width=2, preact=True, shortcut="B", depth_convention="wrn", dropout=0.3
    ),
}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_compiles_to_one_graph(name):
    """A graph break would split the step into pieces that run eagerly in between."""
    torch._dynamo.reset()
    model = build_model(ARCHITECTURES[name]).train()
    explained = torch._dynamo.explain(model)(torch.randn(4, 3, 32, 32))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def _recipe(**changes) -> Recipe:
    return small_recipe(augmentation={"crop": {"padding": 4}, "flip": True}, **changes)


def _losses(ex: Execution, dataset, steps: int) -> tuple[list[float], Trainer]:
    recipe = _recipe(train_images=steps * 32)
    run_data = prepare_data(recipe, 0, dataset, CPU)
    loader = make_loader(recipe, 0, run_data, ex)
    trainer = Trainer(spec_from_name("resnet8"), recipe, 0, ex)
    trainer.model.train()
    out = []
    for x, y in loader.epoch(0):
        out.append(trainer.step(x, y)[1].item())
    return out, trainer


def test_a_compiled_channels_last_step_matches_eager_in_fp32(cifar_root):
    torch._dynamo.reset()
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    eager, _ = _losses(Execution(device=CPU), dataset, steps=3)
    compiled, trainer = _losses(
        Execution(device=CPU, compile=True, channels_last=True), dataset, steps=3
    )
    assert trainer.compile_fallback is None  # it really compiled
    assert compiled == pytest.approx(eager, rel=1e-4)
    assert compiled[-1] != compiled[0]


def test_a_run_with_the_gpu_settings_completes_and_records_them(tmp_path, cifar_root):
    """bf16 autocast + channels_last + torch.compile, through train(), as on CUDA."""
    torch._dynamo.reset()
    recipe = """\
    optimizer: {lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4}
    batch_size: 50
    epochs: 2
    train_images: 100
    normalization: {kind: per_channel}
    augmentation: {crop: {padding: 2}, flip: true}
"""
    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n",
                                  recipe=recipe))  # fmt: skip
    (run,) = plan(study)
    ex = Execution(device=CPU, precision="bf16", compile=True, channels_last=True)
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    notes = []

    class Notes(SilentProgress):
        def note(self, text):
            notes.append(text)

    summary = train(run, dataset, tmp_path / "run", ex, Notes())
    assert notes == ["compiling the model (torch.compile): the first step takes a while"]
    assert summary["status"] == "complete", summary["error"]
    assert summary["compile_fallback"] is None
    assert summary["execution"]["precision"] == "bf16"
    assert summary["execution"]["compile"] and summary["execution"]["channels_last"]
    assert summary["epochs_done"] == 2 and summary["test_error"] is not None
    assert summary["sessions"][0]["precision"] == "bf16"


@pytest.fixture
def dynamo_only(monkeypatch):
    """torch.compile with Dynamo's capture and no code generation: the same graphs and
    recompilations as Inductor's, in a fraction of the time."""
    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda m, **kw: real_compile(m, backend="eager", dynamic=kw["dynamic"])
    )


def test_models_trained_one_after_another_in_a_process_are_all_compiled(dynamo_only):
    """Dynamo stops compiling a function after `recompile_limit` variants (8) and runs it
    eagerly without a word; a study trains more models than that in one process."""
    stats = torch._dynamo.utils.counters["stats"]
    recipe = _recipe()
    x, y = torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long)
    for classes in range(2, 12):  # ten architectures, more than the limit
        spec = ModelSpec(depth=8, num_classes=classes)
        trainer = Trainer(spec, recipe, 0, Execution(device=CPU, compile=True))
        before = stats["unique_graphs"]
        trainer.step(x, y)
        assert trainer.compile_fallback is None
        assert stats["unique_graphs"] == before + 1, f"model {classes - 1} ran eagerly"


def test_the_last_partial_batch_runs_eagerly_instead_of_compiling_again(dynamo_only, cifar_root):
    stats = torch._dynamo.utils.counters["stats"]
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    recipe = _recipe(train_images=80)  # batches of 32, 32 and 16
    ex = Execution(device=CPU, compile=True)
    loader = make_loader(recipe, 0, prepare_data(recipe, 0, dataset, CPU), ex)
    trainer = Trainer(spec_from_name("resnet8"), recipe, 0, ex)
    lr_at = LearningRate(recipe, Length.of(recipe, len(loader)))
    before = stats["unique_graphs"]
    result = trainer.train_epoch(loader.epoch(0), lr_at, 0, SilentProgress())
    assert (result.images, result.iteration) == (80, 3)
    assert stats["unique_graphs"] == before + 1 and trainer.compile_fallback is None


@pytest.mark.parametrize("name", [n for n in ARCHITECTURES if n != "wide with dropout"])
def test_every_fused_architecture_compiles_to_one_graph(name):
    """The fused network of three members too (grouped convolutions, the per-member zero
    padding, the batched classifier). Dropout is left out: its per-member generators are a
    graph break, which costs a fused wide net with dropout some speed, nothing else."""
    from harness.fusion import fuse_models

    torch._dynamo.reset()
    fused = fuse_models([build_model(ARCHITECTURES[name]) for _ in range(3)]).train()
    explained = torch._dynamo.explain(fused)(torch.randn(4, 9, 32, 32))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
