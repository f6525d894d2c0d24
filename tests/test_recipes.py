"""Recipe knobs that the sources' code used and their text did not say: weight decay that
leaves some parameters alone, and (below) how they enter the config hash."""

from __future__ import annotations

import pytest
import torch
from conftest import small_recipe
from pydantic import ValidationError
from torch import nn

from harness.execution import choose
from harness.plan import config_hash, resolved_config
from harness.schema import Experiment
from harness.train import Trainer
from harness.zoo import spec_from_name

CPU = torch.device("cpu")


def planned(recipe) -> dict:
    exp = Experiment(name="e", model=spec_from_name("resnet8"), recipe=recipe)
    return resolved_config(exp, recipe, 0, "")


# --------------------------------------------------------------------------- the config hash


def test_a_new_field_at_its_default_leaves_the_config_as_format_1_wrote_it():
    config = planned(small_recipe())
    assert "no_weight_decay" not in config["recipe"]["optimizer"]


@pytest.mark.parametrize(
    "change",
    [{"optimizer": {"lr": 0.05, "weight_decay": 5e-4, "no_weight_decay": ["bias"]}}],
    ids=["no_weight_decay"],
)
def test_a_recipe_using_a_new_knob_has_another_hash(change):
    plain, changed = planned(small_recipe()), planned(small_recipe(**change))
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
