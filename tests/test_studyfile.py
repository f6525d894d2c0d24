"""Study files: every shipped study validates; each kind of mistake gets its own message."""

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.claimtable import claim_id
from harness.cli import main
from harness.schema import Claim, OrderingClaim
from harness.studyfile import StudyError, load_studies, load_study, study_warnings

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))

MINIMAL = """\
name: tiny
description: a minimal study used by the tests
sources:
  he2015: {title: Deep Residual Learning, authors: He et al., year: 2015}
seeds: 1
recipes:
  base:
    optimizer: {lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}
    batch_size: 128
    epochs: 164
    schedule: {kind: multistep, milestones: [81, 122]}
    normalization: {kind: per_pixel_mean}
experiments:
  - name: resnet20
    model: resnet20
    recipe: base
  - name: plain20
    model: plain20
    recipe: base
claims:
  - {source: he2015, where: Table 6, experiment: resnet20, metric: test_error, value: 8.75}
  - kind: ordering
    source: he2015
    where: Figure 6
    statement: plain nets degrade
    metric: final_train_loss
    experiments: [resnet20, plain20]
    direction: increasing
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def problems_of(tmp_path: Path, text: str) -> list:
    with pytest.raises(StudyError) as info:
        load_study(write(tmp_path, text))
    return info.value.problems


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_every_shipped_study_is_valid(path):
    study = load_study(path)
    assert study.name == path.stem, "a study's name is its file name (the store uses it)"
    assert (study.experiments or study.checkpoints) and study.claims
    for exp in study.experiments:
        assert exp.follows in study.sources
    for checkpoint in study.checkpoints:
        assert checkpoint.source in study.sources
    # `repro compare` knows a claim by its claim_id from night to night: no two alike.
    ids = [claim_id(c) for c in study.claims]
    assert len(set(ids)) == len(ids)


def test_shipped_studies_cover_every_model_in_the_sources():
    studies = load_studies(STUDIES)
    used = {e.model_name.split(" ")[0] for s in studies for e in s.experiments}
    for name in [
        "plain20", "plain56", "resnet20", "resnet56", "resnet110", "resnet56b", "resnet68b",
        "preresnet110", "preresnet164", "wrn-16-4", "resnet1202", "plain110-bottleneck",
        "resnet110-bottleneck",
    ]:  # fmt: skip
        assert name in used, name


def test_minimal_study_loads_with_its_short_forms_expanded(tmp_path):
    study = load_study(write(tmp_path, MINIMAL))
    exp = study.experiment("plain20")
    assert exp.model.shortcut == "none" and exp.model_name == "plain20"
    assert exp.recipe.epochs == 164 and exp.recipe_name == "base"
    assert isinstance(study.claims[0], Claim) and isinstance(study.claims[1], OrderingClaim)
    assert str(study.claims[0].rule) == "single run"


def test_claim_short_forms_for_rules_and_rounded_counts(tmp_path):
    text = MINIMAL.replace(
        "metric: test_error, value: 8.75}",
        "metric: test_error, value: 6.43, rule: best of 5}\n"
        "  - {source: he2015, where: T6, experiment: resnet20, metric: params, value: 0.27M}",
    ).replace("seeds: 1", "seeds: 5")
    study = load_study(write(tmp_path, text))
    best, params = study.claims[0], study.claims[1]
    assert (best.rule.kind, best.rule.n) == ("best", 5)
    assert (params.value, params.resolution) == (270_000, 10_000)


def test_a_percentage_may_carry_its_sign_and_then_may_be_under_one(tmp_path):
    # "7.17%" as a table prints it; the sign also says that 0.5 means 0.5%, not a fraction.
    text = MINIMAL.replace(
        "value: 8.75}",
        "value: 7.10%}\n  - {source: he2015, where: T, "
        "experiment: plain20, metric: test_error, value: '0.5%'}",
    )
    first, low = load_study(write(tmp_path, text)).claims[:2]
    assert (first.value, first.stated()) == (7.1, "7.10")
    assert (low.value, low.stated()) == (0.5, "0.5")


def test_a_milestone_past_the_end_among_epochs_is_not_taken_for_iterations(tmp_path):
    text = MINIMAL.replace("milestones: [81, 122]}", "milestones: [81, 200]}")
    (problem,) = problems_of(tmp_path, text)
    assert problem.message == (
        "milestones [200] (epochs) are at or past the end of training (164 epochs), so they "
        "would never apply"
    ), str(problem)


def test_a_whole_recipes_problem_is_named_once_not_again_for_each_experiment(tmp_path):
    # Both experiments use the recipe: its complaint as a whole came three times.
    text = MINIMAL.replace("    epochs: 164", "    epochs: 164\n    iterations: 64000")
    problems = problems_of(tmp_path, text)
    assert [p.path for p in problems] == ["recipes.base"], "\n".join(map(str, problems))
    # An experiment whose own override makes another complaint still gets it, at its line.
    text = MINIMAL.replace(
        "    recipe: base\n  - name: plain20",
        "    recipe: {extends: base, epochs: 100}\n  - name: plain20",
    )
    (problem,) = problems_of(tmp_path, text)
    assert problem.path == "experiments[0].recipe" and "milestones [122]" in problem.message


def test_a_normalization_kind_given_as_type_is_one_problem_saying_so(tmp_path):
    # A literal kind's missing `kind:` was named without a word of the `type:` beside it, and
    # `type` came again as an unknown key.
    text = MINIMAL.replace("{kind: per_pixel_mean}", "{type: per_pixel_mean}")
    (problem,) = problems_of(tmp_path, text)
    assert problem.path == "recipes.base.normalization"
    assert problem.message.startswith(
        "a normalization names its kind with `kind:`, not `type:`: write `kind: per_pixel_mean`"
    ), problem.message


def test_rules_load_as_the_report_prints_them_and_papers_write_them(tmp_path):
    # "single run" is how the report and the claim table print a single run's rule; it was
    # refused, as was "median of 5 runs".
    text = MINIMAL.replace("seeds: 1", "seeds: 5").replace(
        "value: 8.75}",
        "value: 8.75, rule: single run}\n  - {source: he2015, where: T, experiment: plain20, "
        "metric: test_error, value: 9.1, rule: median of 5 runs}",
    )
    single, median = load_study(write(tmp_path, text)).claims[:2]
    assert (single.rule.kind, single.rule.n, str(single.rule)) == ("single", 1, "single run")
    assert (median.rule.kind, median.rule.n, str(median.rule)) == ("median", 5, "median of 5")


def test_recipe_extends_merges_and_a_new_kind_replaces(tmp_path):
    text = MINIMAL.replace(
        "    recipe: base\n  - name: plain20",
        "    recipe:\n      extends: base\n      batch_size: 64\n"
        "      schedule: {kind: cosine}\n  - name: plain20",
    )
    exp = load_study(write(tmp_path, text)).experiment("resnet20")
    assert exp.recipe.batch_size == 64 and exp.recipe.epochs == 164
    assert exp.recipe.schedule.kind == "cosine"


# Each malformed study: (what to replace, replacement, expected path, expected message part).
MALFORMED = [
    pytest.param(
        "    batch_size: 128",
        "    batch_sise: 128",
        "recipes.base.batch_sise",
        "did you mean 'batch_size'?",
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        "batch_size: 128",
        "batch_size: many",
        "recipes.base.batch_size",
        "wrong type",
        id="wrong-type",
    ),
    pytest.param(
        "{lr: 0.1,",
        "{lr: 1e-1,",
        "recipes.base.optimizer.lr",
        "YAML 1.1 reads 1e-1 as text, not a number (it needs a decimal point and a signed "
        "exponent); write 1.0e-1 (or 0.1)",
        id="exponent-read-as-text",
    ),
    pytest.param(
        "{lr: 0.1,",
        "{lr: -0.1,",
        "recipes.base.optimizer.lr",
        "value out of range",
        id="impossible-value",
    ),
    pytest.param(
        "model: resnet20",
        "model: resnet21",
        "experiments[0].model",
        "depth 21 does not fit",
        id="unbuildable-model",
    ),
    pytest.param(
        "model: plain20",
        "model: densenet40",
        "experiments[1].model",
        "unknown model name 'densenet40'",
        id="unknown-model",
    ),
    pytest.param(
        "experiment: resnet20, metric",
        "experiment: resnet200, metric",
        "claims[0].experiment",
        "no experiment named 'resnet200'; did you mean 'resnet20'?",
        id="claim-to-missing-experiment",
    ),
    pytest.param(
        "experiments: [resnet20, plain20]",
        "experiments: [resnet20, plain32]",
        "claims[1].experiments[1]",
        "no experiment named 'plain32'",
        id="ordering-to-missing-experiment",
    ),
    pytest.param(
        "  - {source: he2015,",
        "  - {source: he2016,",
        "claims[0].source",
        "no source named 'he2016'; did you mean 'he2015'?",
        id="unknown-source",
    ),
    pytest.param(
        "    recipe: base\n  - name: plain20",
        "    recipe: bsae\n  - name: plain20",
        "experiments[0].recipe",
        "unknown recipe; did you mean 'base'?",
        id="unknown-recipe",
    ),
    pytest.param(
        "milestones: [81, 122]",
        "milestones: [122, 81]",
        "recipes.base.schedule.milestones",
        "strictly increasing",
        id="milestones-order",
    ),
    pytest.param(
        "milestones: [81, 122]}",
        "milestones: [32000, 48000]}",
        "recipes.base",
        "milestones [32000, 48000] (epochs) are at or past the end of training (164 epochs), "
        "so they would never apply; a schedule counts epochs unless it says otherwise: if these "
        "are iterations, add `unit: iteration` to it",
        id="milestones-in-iterations-without-unit",
    ),
    pytest.param(
        "    epochs: 164\n    schedule: {kind: multistep, milestones: [81, 122]}",
        "    iterations: 64000\n    schedule: {kind: multistep, milestones: [32000, 48000]}",
        "recipes.base",
        "(64000 iterations, about 164 epochs of batch 128), so they would never apply; a "
        "schedule counts epochs",
        id="milestones-in-iterations-of-an-iteration-length",
    ),
    pytest.param(
        "{kind: multistep,",
        "{type: multistep,",
        "recipes.base.schedule",
        "a schedule names its kind with `kind:`, not `type:`: write `kind: multistep` (kinds: "
        "multistep, cosine, constant)",
        id="schedule-kind-as-type",
    ),
    pytest.param(
        "  - kind: ordering",
        "  - type: ordering",
        "claims[1]",
        "a claim names its kind with `kind:`, not `type:`: write `kind: ordering`",
        id="claim-kind-as-type",
    ),
    pytest.param(
        "    batch_size: 128",
        "    batch_size: 128\n    dropout: 0.3",
        "recipes.base.dropout",
        "unknown key 'dropout': it is a field of the model, not of a recipe; change it in the "
        "experiment, `model: {name: <model>, dropout: 0.3}`",
        id="model-field-in-a-recipe",
    ),
    pytest.param(
        "    recipe: base\n  - name: plain20",
        "    recipe: base\n    batch_size: 64\n  - name: plain20",
        "experiments[0].batch_size",
        "unknown key 'batch_size': it is a field of the recipe; change it for this experiment, "
        "`recipe: {extends: <recipe>, batch_size: 64}`",
        id="recipe-field-in-an-experiment",
    ),
    pytest.param(
        "value: 8.75}",
        "value: 8.75, rule: median of five}",
        "claims[0].rule",
        "did you mean 'median of 5'?",  # it offered 'mean of five', another statistic
        id="rule-count-in-words",
    ),
    pytest.param(
        "seeds: 1",
        "seeds: [0, 1, 2]",
        "seeds",
        "seeds is how many seeds, not which: runs are seeds 0 to N-1; write `seeds: 3` for 3 runs",
        id="seeds-as-a-list",
    ),
    pytest.param(
        "    epochs: 164",
        "    epochs: 164\n    warmup: {lr: 0.01, until_train_error_below: 0.8}",
        "recipes.base.warmup.until_train_error_below",
        "until_train_error_below is in percent: 0.8 would keep the warm-up going until the "
        "training error is below 0.8%",
        id="warmup-threshold-as-a-fraction",
    ),
    pytest.param(
        "    batch_size: 128",
        "    batch_size: 128\n    reported_epoch: best",
        "recipes.base.reported_epoch",
        "not an allowed value; did you mean 'best_validation'?",
        id="choice-cut-short",
    ),
    pytest.param(
        "name: tiny",
        "name: My Tiny Study",
        "name",
        "not a valid name; did you mean 'my-tiny-study'?",
        id="study-name-as-a-title",
    ),
    pytest.param(
        "  - name: resnet20",
        "  - name: ResNet-20",
        "experiments[0].name",
        "not a valid name; did you mean 'resnet-20'?",
        id="experiment-name-as-a-paper-writes-it",
    ),
    pytest.param(
        "    epochs: 164",
        "    epochs: 164\n    warmup: {epochs: 5}",
        "recipes.base.warmup.lr",
        "required field is missing\n    allowed: the constant learning rate of the warm-up "
        "(He et al.: 0.01)",
        id="warmup-without-its-rate",
    ),
    pytest.param(
        "    epochs: 164",
        "    epochs: 164\n    iterations: 64000",
        "recipes.base",
        "exactly one of epochs, iterations",
        id="two-lengths",
    ),
    pytest.param(
        "{kind: multistep,",
        "{kind: stepwise,",
        "recipes.base.schedule.kind",
        "kind 'stepwise' is not a schedule kind",
        id="unknown-schedule-kind",
    ),
    pytest.param(
        "value: 8.75}",
        "value: 108.75}",
        "claims[0]",
        "is a percentage",
        id="percentage-out-of-range",
    ),
    pytest.param(
        "value: 8.75}",
        "value: 0.0875}",
        "claims[0]",
        "so 0.0875 claims 0.0875%, a test error below 1%: a source's fraction 0.0875 is "
        "written 8.75 here",
        id="error-as-a-fraction",
    ),
    pytest.param(
        "metric: test_error, value: 8.75}",
        "metric: test_accuracy, value: 0.9125}",
        "claims[0]",
        "a test accuracy far below chance (10%): a source's fraction 0.9125 is written 91.25",
        id="accuracy-as-a-fraction",
    ),
    pytest.param(
        "value: 8.75}",
        "value: 8.75, rule: best of 5}",
        "claims[0].rule",
        "give it `seeds: 5`",
        id="rule-needs-more-seeds",
    ),
    pytest.param(
        "value: 8.75}",
        "value: 8.75, rule: top 5}",
        "claims[0].rule",
        "is not one of 'single', 'best of N'",
        id="bad-rule",
    ),
    pytest.param(
        "  - name: plain20",
        "  - name: resnet20",
        "experiments[1].name",
        "experiment name repeated",
        id="duplicate-experiment",
    ),
    pytest.param(
        "value: 8.75}\n  - kind: ordering\n",
        "value: 8.75, id: t6}\n  - kind: ordering\n    id: t6\n",
        "claims[1].id",
        "claim id repeated (first used by claims[0])",
        id="duplicate-claim-id",
    ),
    pytest.param(
        "{kind: per_pixel_mean}",
        "{kind: per_pixel_mean, mean: [0.5, 0.5, 0.5]}",
        "recipes.base.normalization",
        "apply to kind 'per_channel' only",
        id="mean-without-kind",
    ),
    pytest.param(
        "metric: final_train_loss",
        "metric: train_loss",
        "claims[1].metric",
        "not an allowed value",
        id="unknown-metric",
    ),
    pytest.param(  # it got the list of metrics, and no pointer into it
        "metric: test_error, value: 8.75",
        "metric: test_eror, value: 8.75",
        "claims[0].metric",
        "not an allowed value; did you mean 'test_error'?",
        id="misspelt-metric",
    ),
    pytest.param(
        "    schedule:",
        "    warmup: {lr: 0.01, epochs: 2, iterations: 400}\n    schedule:",
        "recipes.base.warmup",
        "a warm-up ends in exactly one way",
        id="warmup-two-ends",
    ),
    pytest.param(
        "name: tiny",
        "name: Tiny Study",
        "name",
        "not a valid name",
        id="bad-study-name",
    ),
    pytest.param(
        "description: a minimal study used by the tests\n",
        "",
        "description",
        "required field is missing",
        id="missing-field",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "message"), MALFORMED)
def test_malformed_studies_give_their_specific_message(tmp_path, old, new, path, message):
    assert old in MINIMAL
    problems = problems_of(tmp_path, MINIMAL.replace(old, new, 1))
    matching = [p for p in problems if p.path == path and message in str(p)]
    assert matching, "\n".join(str(p) for p in problems)
    problem = matching[0]
    assert problem.file.endswith("study.yaml")
    if path != "description":  # a missing field has no line of its own
        assert problem.line is not None


SAME_CLAIM = (
    "  - {source: he2015, where: Table 6, experiment: resnet20, metric: test_error, value: 8.75}\n"
)


@pytest.mark.parametrize(
    ("second", "message"),
    [
        pytest.param(  # another figure for the same thing: which verdict is tonight's?
            SAME_CLAIM.replace("Table 6", "Table 7").replace("8.75", "7.5"),
            "this claim and claims[0] are about the same thing "
            "(he2015:resnet20:test_error:single-1), so `repro compare` cannot tell their "
            "verdicts apart; give each an `id:`",
            id="same-identity",
        ),
        pytest.param(  # an ordering turned around is the same ordering
            "  - {kind: ordering, source: he2015, where: Figure 7, statement: the other way,\n"
            "     metric: final_train_loss, experiments: [plain20, resnet20], "
            "direction: decreasing}\n",
            "this claim and claims[1] are about the same thing "
            "(he2015:resnet20<plain20:final_train_loss)",
            id="ordering-turned-around",
        ),
        pytest.param(
            SAME_CLAIM,
            "duplicate claim: the same as claims[0], field for field",
            id="exact-duplicate",
        ),
    ],
)
def test_two_claims_about_the_same_thing_are_refused_on_the_second(tmp_path, second, message):
    # Without an `id:` each, two such claims got one claim_id, and `repro compare` failed the
    # night (exit 2) once their verdicts differed; `repro validate` let them through.
    assert MINIMAL.endswith("    direction: increasing\n")
    text = MINIMAL + second
    (problem,) = problems_of(tmp_path, text)
    assert problem.path == "claims[2]" and message in problem.message, str(problem)
    assert problem.line == len(MINIMAL.splitlines()) + 1  # the second claim's own line
    # Given an `id:`, the second is a claim of its own (a copy is deleted, not named).
    named = MINIMAL + second.replace("  - {", "  - {id: second, ", 1)
    if "duplicate" not in message:
        assert len(load_study(write(tmp_path, named)).claims) == 3


def test_unknown_key_names_its_line_and_the_allowed_keys(tmp_path):
    (problem,) = problems_of(tmp_path, MINIMAL.replace("    batch_size:", "    batch_sise:"))
    assert problem.line == 9
    assert "epochs" in problem.allowed and "optimizer" in problem.allowed
    assert str(problem).startswith(f"{problem.file}:9: recipes.base.batch_sise: unknown key")


@pytest.mark.parametrize(
    ("old", "new", "path", "line", "message"),
    [
        pytest.param(
            "  - kind: ordering\n",
            "  - kind: ordreing\n",
            "claims[1].kind",
            22,
            "kind 'ordreing' is not a claim kind; did you mean 'ordering'? (kinds: value, ordering)",
            id="misspelt-ordering",
        ),
        pytest.param(
            "  - kind: ordering\n",
            "  - kind: Ordering\n",
            "claims[1].kind",
            22,
            "kind 'Ordering' is not a claim kind; did you mean 'ordering'?",
            id="capitalised-ordering",
        ),
        pytest.param(
            "  - kind: ordering\n",
            "  - kind: qualitative\n",
            "claims[1].kind",
            22,
            "kind 'qualitative' is not a claim kind; its keys (statement, experiments, direction) "
            "are those of an 'ordering' claim (kinds: value, ordering)",
            id="far-kind-with-ordering-keys",
        ),
        pytest.param(
            "  - {source: he2015,",
            "  - {kind: vlaue, source: he2015,",
            "claims[0].kind",
            21,
            "kind 'vlaue' is not a claim kind; did you mean 'value'?",
            id="misspelt-value",
        ),
        pytest.param(
            "  - kind: ordering\n    source",
            "  - source",
            "claims[1]",
            22,
            "a claim without `kind:` states a value, but this one has statement, experiments, "
            "direction, the keys of an ordering claim: add `kind: ordering`",
            id="ordering-without-kind",
        ),
    ],
)
def test_a_claim_of_no_known_kind_gets_one_message_not_the_wrong_kinds_keys(
    tmp_path, old, new, path, line, message
):
    """`kind: ordreing` was validated as a value claim: its author read that kind must be
    'value', that `value` was missing, and that statement, experiments and direction were
    unknown keys (direction: "did you mean 'resolution'?")."""
    assert old in MINIMAL
    problems = problems_of(tmp_path, MINIMAL.replace(old, new, 1))
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    (problem,) = problems
    assert (problem.path, problem.line) == (path, line)
    assert message in problem.message, problem.message


SCHEDULE_KINDS = "(kinds: multistep, cosine, constant)"
NORMALIZATION_KINDS = "(kinds: per_pixel_mean, per_pixel_mean_std, per_channel, none)"
WARM_UP = "    warmup: {kind: constant, lr: 0.01, iterations: 400}\n    normalization:"


@pytest.mark.parametrize(
    ("checkpoints", "old", "new", "path", "line", "message"),
    [
        pytest.param(
            False,
            "{kind: multistep,",
            "{kind: mulitstep,",
            "recipes.base.schedule.kind",
            11,
            f"kind 'mulitstep' is not a schedule kind; did you mean 'multistep'? {SCHEDULE_KINDS}",
            id="schedule-slip",
        ),
        pytest.param(
            False,
            "{kind: multistep,",
            "{kind: stepwise,",
            "recipes.base.schedule.kind",
            11,
            "kind 'stepwise' is not a schedule kind; its keys (milestones) are those of a "
            f"'multistep' schedule {SCHEDULE_KINDS}",
            id="schedule-far-kind",
        ),
        pytest.param(
            False,
            "{kind: multistep, ",
            "{",
            "recipes.base.schedule",
            11,
            "a schedule needs `kind:`; its keys (milestones) are those of a 'multistep' "
            f"schedule: add `kind: multistep` {SCHEDULE_KINDS}",
            id="schedule-without-kind",
        ),
        pytest.param(
            False,
            "{kind: multistep, milestones: [81, 122]}",
            "cosine",
            "recipes.base.schedule",
            11,
            f"a schedule is a mapping (key: value lines): write `{{kind: cosine}}` {SCHEDULE_KINDS}",
            id="schedule-kind-alone",
        ),
        pytest.param(
            False,
            "{kind: multistep,",
            "{kind: cosine,",
            "recipes.base.schedule.milestones",
            11,
            "unknown key 'milestones': it is a key of a 'multistep' schedule, and this one is "
            "'cosine'",
            id="schedule-another-kinds-key",
        ),
        pytest.param(
            False,
            "    recipe: base\n  - name: plain20",
            "    recipe: {extends: base, schedule: {kind: cosin}}\n  - name: plain20",
            "experiments[0].recipe.schedule.kind",
            16,
            f"kind 'cosin' is not a schedule kind; did you mean 'cosine'? {SCHEDULE_KINDS}",
            id="schedule-slip-in-an-override",
        ),
        pytest.param(
            False,
            "{kind: per_pixel_mean}",
            "{kind: per_pixel_maen}",
            "recipes.base.normalization.kind",
            12,
            "kind 'per_pixel_maen' is not a normalization kind; did you mean 'per_pixel_mean'? "
            f"{NORMALIZATION_KINDS}",
            id="normalization-slip",
        ),
        pytest.param(
            False,
            "{kind: per_pixel_mean}",
            "{}",
            "recipes.base.normalization",
            12,
            f"a normalization needs `kind:` {NORMALIZATION_KINDS}",
            id="normalization-without-kind",
        ),
        pytest.param(
            False,
            "{kind: per_pixel_mean}",
            "per_pixel_mean",
            "recipes.base.normalization",
            12,
            "a normalization is a mapping (key: value lines): write `{kind: per_pixel_mean}` "
            f"{NORMALIZATION_KINDS}",
            id="normalization-kind-alone",
        ),
        pytest.param(
            True,
            "{kind: per_channel, mean",
            "{mean",
            "checkpoints[0].normalization",
            44,
            f"a normalization needs `kind:` {NORMALIZATION_KINDS}",
            id="checkpoint-normalization-without-kind",
        ),
        pytest.param(
            False,
            "value: 8.75}",
            "value: 8.75, rule: bset of 5}",
            "claims[0].rule",
            21,
            "reporting rule 'bset of 5' is not one of 'single', 'best of N', 'median of N', "
            "'mean of N'; did you mean 'best of 5'?",
            id="rule-slip",
        ),
        pytest.param(
            False,
            "value: 8.75}",
            "value: 8.75, rule: {kind: bset, n: 5}}",
            "claims[0].rule.kind",
            21,
            "kind 'bset' is not a reporting rule kind; did you mean 'best'? "
            "(kinds: single, best, median, mean)",
            id="rule-mapping-slip",
        ),
        pytest.param(
            False,
            "    normalization:",
            WARM_UP,
            "recipes.base.warmup.kind",
            12,
            "unknown key 'kind': `recipes.base.warmup` has no kinds",
            id="warmup-has-no-kind",
        ),
        pytest.param(
            False,
            "experiments:\n",
            "executor: {kind: slurm}\nexperiments:\n",
            "executor.kind",
            13,
            "unknown key 'kind': `executor` has no kinds; give `slurm:` (a mapping of its "
            "settings) instead",
            id="executor-has-no-kind",
        ),
        pytest.param(
            False,
            "  - {source: he2015, where: Table 6,",
            "  - just a sentence\n  - {source: he2015, where: Table 6,",
            "claims[0]",
            21,
            "a claim is a mapping (key: value lines) (kinds: value, ordering)",
            id="claim-not-a-mapping",
        ),
    ],
)
def test_every_kind_slip_gets_one_message_at_its_line(
    tmp_path, checkpoints, old, new, path, line, message
):
    """A misspelt, missing or misplaced `kind:` of any tagged mapping (a schedule, a
    normalization, a reporting rule, a claim) is named once, where it is, with the kind it is
    probably a slip for and the kinds there are; a `kind:` where a mapping has none says so.
    A schedule's got "unknown or missing 'kind'" at the schedule (and `kind: one of ` with
    nothing after it, for none), a normalization's "required field is missing", a rule's was
    named at the claim with the whole claim as given, and `kind:` in a warm-up was offered
    'window'."""
    text = CHECKPOINTS if checkpoints else MINIMAL
    assert old in text
    # A rule slip leaves the rule's check against the seeds for later: said in a line apart.
    problems = [p for p in problems_of(tmp_path, text.replace(old, new, 1)) if p.path or p.line]
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    (problem,) = problems
    assert (problem.path, problem.line) == (path, line), str(problem)
    assert problem.message == message, problem.message


# Experiments whose names share letters but not depths, beside MINIMAL's resnet20 and plain20.
NAMED = MINIMAL.replace(
    "claims:\n",
    "  - {name: park-resnet-56, model: resnet56, recipe: base}\n"
    "  - {name: he-resnet110, model: resnet110, recipe: base}\n"
    "  - {name: mk-preresnet110, model: preresnet110, recipe: base}\n"
    "claims:\n",
)


@pytest.mark.parametrize(
    ("old", "given", "path", "near"),
    [
        # Each was offered a name of another depth: park-resnet-56, he-resnet110, plain20.
        pytest.param(
            "resnet20,",
            "park-resnet20",
            "claims[0].experiment",
            "resnet20",
            id="value-claim-keeps-the-depth",
        ),
        pytest.param(
            "[resnet20,",
            "park-resnet20",
            "claims[1].experiments[0]",
            "resnet20",
            id="ordering-claim-keeps-the-depth",
        ),
        pytest.param(
            "resnet20,",
            "he-resnet1202",
            "claims[0].experiment",
            None,
            id="value-claim-nothing-close",
        ),
        pytest.param(
            " plain20]",
            "plain-56",
            "claims[1].experiments[1]",
            None,
            id="ordering-claim-nothing-close",
        ),
    ],
)
def test_an_unknown_experiment_is_offered_only_a_name_that_is_close(
    tmp_path, old, given, path, near
):
    assert old in NAMED
    # `old` is the claim's reference (the first of its kind in NAMED); `given` replaces the name.
    (problem,) = problems_of(tmp_path, NAMED.replace(old, old.replace(old.strip("[, ]"), given), 1))
    assert problem.path == path
    hint = f"; did you mean {near!r}?" if near else ""
    assert problem.message == f"no experiment named {given!r}{hint}", problem.message
    # The names there are, for a reader with no near name to go on.
    assert problem.allowed == (
        "one of 'resnet20', 'plain20', 'park-resnet-56', 'he-resnet110', 'mk-preresnet110'"
    )


def test_a_long_list_of_experiments_is_shortened(tmp_path):
    many = "".join(f"  - {{name: r{i}, model: resnet20, recipe: base}}\n" for i in range(13))
    text = MINIMAL.replace("claims:\n", many + "claims:\n").replace(
        "experiment: resnet20,", "experiment: resnet-8,"
    )
    (problem,) = problems_of(tmp_path, text)
    assert problem.allowed.startswith("one of 'resnet20', 'plain20', 'r0', ")
    assert problem.allowed.endswith(", 'r9' and 3 more"), problem.allowed


def test_problem_in_a_named_recipe_is_reported_once(tmp_path):
    problems = problems_of(tmp_path, MINIMAL.replace("{lr: 0.1,", "{lr: -0.1,"))
    assert [p.path for p in problems] == ["recipes.base.optimizer.lr"]


def test_all_problems_of_a_file_are_reported_together(tmp_path):
    text = MINIMAL.replace("model: resnet20", "model: resnet21").replace(
        "value: 8.75}", "value: 108.75}"
    )
    paths = {p.path for p in problems_of(tmp_path, text)}
    assert {"experiments[0].model", "claims[0]"} <= paths


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nname: b\n", "appears twice"),
        ("name: [unclosed\n", "not valid YAML"),
        ("", "the file is empty"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
    ids=["duplicate-yaml-key", "yaml-syntax", "empty-file", "not-a-mapping"],
)
def test_unreadable_files_say_why(tmp_path, text, message):
    (problem,) = problems_of(tmp_path, text)
    assert message in problem.message


@pytest.mark.parametrize(
    ("old", "new", "line", "hint"),
    [
        ("    batch_size: 128", "\tbatch_size: 128", 9,
         "a tab at column 1: YAML indents with spaces only; replace the tab with spaces"),
        ("    batch_size: 128", "     batch_size: 128", 9,
         "line 9 (indented 5 spaces) does not line up with the lines before it"),
        ("  - name: plain20", "   - name: plain20", 17,
         "line 17 (indented 3 spaces) does not line up with the lines before it"),
        ("    epochs: 164", "    epochs:164", 10,
         "a key needs ': ' after it, with a space (`epochs: 2`, not `epochs:2`)"),
        ("seeds: 1", "seeds: 1: 2", 5, "a second ': ' on one line: put each key on its own line"),
        ("{kind: per_pixel_mean}", "{kind: per_pixel_mean", 13,
         "check the {...} or [...] (opened on line 12) for a missing comma"),
    ],
    ids=["tab", "over-indented", "list-item-out-of-line", "no-space-after-colon",
         "second-colon", "unclosed-brace"],
)  # fmt: skip
def test_a_yaml_slip_says_what_to_write_instead(tmp_path, old, new, line, hint):
    """PyYAML's words name parser states ("expected <block end>, but found '<block mapping
    start>'"); the slips a hand-edited study makes get the line that has them and what to
    write instead."""
    assert MINIMAL.count(old) == 1
    (problem,) = problems_of(tmp_path, MINIMAL.replace(old, new))
    assert problem.message.startswith("not valid YAML: ")
    assert problem.line == line, problem
    assert hint in problem.message, problem.message


def test_a_binary_file_is_not_text_and_the_message_says_so(tmp_path):
    """It said only "cannot be read: 'utf-8' codec can't decode byte 0x89 in position 0..."."""
    path = tmp_path / "study.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(StudyError) as info:
        load_study(path)
    (problem,) = info.value.problems
    assert problem.message == ("is not UTF-8 text (byte 0 cannot be decoded): a study file is "
                               "YAML text; is this the file you meant?")  # fmt: skip


def test_the_same_file_twice_is_named_so_not_a_clash_with_itself(tmp_path):
    """`repro run s.yaml ./s.yaml` said that study 'tiny' was already used by s.yaml."""
    path = write(tmp_path, MINIMAL)
    out = CliRunner().invoke(main, ["run", str(path), str(tmp_path / "." / path.name)])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "given twice; name each study file once" in out.output
    assert "already used by" not in out.output


def test_recipes_extending_in_a_cycle(tmp_path):
    text = MINIMAL.replace("recipes:\n", "recipes:\n  a: {extends: b}\n  b: {extends: a}\n")
    assert any("cycle" in p.message for p in problems_of(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(StudyError, match="file not found"):
        load_study(tmp_path / "nope.yaml")


def test_cli_validate_prints_a_summary_and_exits_zero():
    result = CliRunner().invoke(main, ["validate", *map(str, STUDIES)])
    assert result.exit_code == 0, result.output
    assert "degradation" in result.output and "tseng-resnet110" in result.output
    assert "14 experiments, 14 runs" in result.output


def test_cli_validate_reports_problems_without_a_traceback(tmp_path):
    bad = write(tmp_path, MINIMAL.replace("batch_size: 128", "batch_size: 0"))
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"{bad}:9: recipes.base.batch_size: value out of range" in result.output
    assert "allowed: a number > 0" in result.output


def test_cli_models_json_lists_names_and_counts():
    import json

    result = CliRunner().invoke(main, ["models", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["resnet56b"]["params"] == 855_770
    assert rows["wrn-16-4"]["depth"] == 16


def test_a_yaml_alias_bomb_is_refused_in_well_under_a_second(tmp_path):
    import time

    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    with pytest.raises(StudyError, match="through its aliases"):
        load_study(path)
    assert time.perf_counter() - t0 < 1.0


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 200_000)
    with pytest.raises(StudyError, match="a study is a few kilobytes"):
        load_study(path)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("epochs: 3", "epochs: true", "epochs"),
        ("lr: 0.05", "lr: '0.05'", "lr"),
        ("flip: true", "flip: 1", "flip"),
        ("batch_size: 50", "batch_size: 50.0", "batch_size"),
        ("milestones: [2]", "milestones: [2, 7]", "at or past the end"),
        ("milestones: [2]", "milestones: [3]", "at or past the end"),
    ],
)
def test_numbers_and_switches_are_strict_and_milestones_inside_the_schedule(
    tmp_path, old, new, where
):
    from conftest import TINY_RECIPE, tiny_study

    assert old in TINY_RECIPE
    path = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n",
                      recipe=TINY_RECIPE.replace(old, new))  # fmt: skip
    with pytest.raises(StudyError, match=where):
        load_study(path)


@pytest.mark.parametrize("gpus", ["0", "-1", "two", "2.5", "true", "ALL"])
def test_a_study_asks_for_gpus_as_the_command_line_does(tmp_path, gpus):
    """executor.local.gpus takes what `repro run --gpus` takes, with its words: 0 or fewer
    would have trained on no GPU, or on a slice of them counted from the end."""
    from harness.choices import GPU_COUNT

    study = MINIMAL + f"executor:\n  local: {{gpus: {gpus}}}\n"
    (problem,) = problems_of(tmp_path, study)
    assert problem.path == "executor.local.gpus" and problem.line is not None
    assert problem.message == f"not a number of GPUs; give {GPU_COUNT}"
    cli = CliRunner().invoke(main, ["run", str(write(tmp_path, MINIMAL)), "--gpus", "0"])
    assert cli.exit_code == 2 and GPU_COUNT in cli.output, cli.output


@pytest.mark.parametrize("gpus", ["all", "3"])
def test_a_study_may_ask_for_every_gpu_or_a_number_of_them(tmp_path, gpus):
    local = f"executor:\n  local: {{gpus: {gpus}, runs_per_gpu: 32}}\n"
    study = load_study(write(tmp_path, MINIMAL + local))
    assert str(study.executor.local.gpus) == gpus and study.executor.local.runs_per_gpu == 32


@pytest.mark.parametrize("runs", ["0", "33"])
def test_runs_per_gpu_in_a_study_is_bounded_as_on_the_command_line(tmp_path, runs):
    (problem,) = problems_of(tmp_path, MINIMAL + f"executor:\n  local: {{runs_per_gpu: {runs}}}\n")
    assert problem.path == "executor.local.runs_per_gpu"
    assert problem.message == "value out of range"
    cli = CliRunner().invoke(main, ["run", str(write(tmp_path, MINIMAL)), "--runs-per-gpu", runs])
    assert cli.exit_code == 2 and "1<=x<=32" in cli.output, cli.output


# Impossible slurm settings: (setting, what is said, what the refusal gives as allowed).
SLURM_REFUSALS = {
    "time_min: 0": ("value out of range", "a number > 0"),
    "gpus_per_task: -1": ("value out of range", "a number >= 0"),
    "cpus_per_task: 0": ("value out of range", "a number >= 1"),
    "mem_gb: 0": ("value out of range", "a number > 0"),
    "array_parallelism: 0": ("value out of range", "a number >= 1"),
    "cpus_per_task: 1.5": ("wrong type", "a whole number"),
    # Empty names were left out of the job without a word: it went to the cluster's default.
    "partition: ''": ("empty: it names nothing; leave the key out for the cluster's default, "
                      "or name one", None),
    "constraint: ' '": ("empty: it names nothing; leave the key out for the cluster's default, "
                        "or name one", None),
}  # fmt: skip


@pytest.mark.parametrize("setting", SLURM_REFUSALS)
def test_impossible_slurm_settings_are_refused_with_what_is_allowed(tmp_path, setting):
    message, allowed = SLURM_REFUSALS[setting]
    (problem,) = problems_of(tmp_path, MINIMAL + f"executor:\n  slurm: {{{setting}}}\n")
    assert problem.path == f"executor.slurm.{setting.split(':')[0]}" and problem.line is not None
    assert problem.message == message and problem.allowed == allowed
    assert problem.given == setting.split(": ")[1]
    out = CliRunner().invoke(main, ["validate", str(write(tmp_path, MINIMAL + "executor:\n  "
                                                          f"slurm: {{{setting}}}\n"))])  # fmt: skip
    assert out.exit_code == 1 and "executor.slurm." in out.output and "Traceback" not in out.output


# --------------------------------------------------------------------------- checkpoints

CHECKPOINTS = (
    MINIMAL
    + """\
  - {source: he2015, where: README, checkpoint: released20, metric: test_error, value: 8.27}
layouts:
  theirs:
    strip_prefix: module.
    rules:
      - {pattern: 'layer(?P<s>\\d+)\\.(?P<u>\\d+)\\.conv(?P<c>\\d+)\\.weight',
         to: 'stages.{s-1}.{u}.convs.{c-1}.weight'}
    transforms: [option_a_both_sides]
checkpoints:
  - name: released20
    model: resnet20
    source: he2015
    url: https://example.org/resnet20.th
    sha256: 12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8
    layout: theirs
    normalization: {kind: per_channel, mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2]}
"""
)

BAD_CHECKPOINTS = [
    ("layout: theirs", "layout: mine", "checkpoints[0].layout", "no layout named 'mine'"),
    ("to: 'stages.{s-1}", "to: 'stages.{stage-1}", "layouts.theirs.rules[0]",
     "{stage}, which is not a named group of the pattern"),
    ("pattern: 'layer", "pattern: '(layer", "layouts.theirs.rules[0]",
     "is not a regular expression"),
    ("    sha256: 12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8\n", "",
     "checkpoints[0]", "needs `sha256:`"),
    ("    url: https://example.org/resnet20.th\n", "", "checkpoints[0]",
     "give `url:` (with `sha256:`) or `path:`"),
    ("sha256: 12fca82f", "sha256: 12FCA82Z", "checkpoints[0].sha256", "not a SHA-256"),
    ("model: resnet20\n    source", "model: resnet20b\n    source", "checkpoints[0].model",
     "which is for option-A nets, and this model has shortcut B"),
    ("checkpoint: released20, metric: test_error", "checkpoint: released32, metric: test_error",
     "claims[2].checkpoint", "no checkpoint named 'released32'"),
    ("checkpoint: released20, metric: test_error", "checkpoint: released20, metric: final_train_loss",
     "claims[2].metric", "judged on the test set and its architecture only"),
    ("value: 8.27}", "value: 8.27, rule: best of 5}", "claims[2].rule",
     "its claims are single-run claims"),
    ("where: README, checkpoint:", "where: README, experiment: resnet20, checkpoint:",
     "claims[2]", "give exactly one of `experiment:`, `checkpoint:`"),
    ("  - name: released20", "  - name: resnet20", "checkpoints[0].name",
     "name already used by experiments[0]"),
    ("model: resnet20\n    source", "model: resnet21\n    source", "checkpoints[0].model",
     "depth 21 does not fit"),
]  # fmt: skip


def test_a_study_of_checkpoints_loads():
    study = load_study(ROOT / "studies" / "checkpoints.yaml")
    assert not study.experiments and len(study.checkpoints) == 4
    assert {c.model_name for c in study.checkpoints} == {"resnet20", "resnet32", "resnet44",
                                                        "resnet56"}  # fmt: skip
    assert {c.value for c in study.claims if c.metric == "test_error"} == {8.27, 7.37, 6.90, 6.61}


def test_checkpoints_beside_experiments_load(tmp_path):
    study = load_study(write(tmp_path, CHECKPOINTS))
    assert study.checkpoint("released20").model.depth == 20
    assert study.claims[2].subject == "released20"


@pytest.mark.parametrize(("old", "new", "path", "message"), BAD_CHECKPOINTS)
def test_a_mistake_in_a_checkpoint_gets_its_own_message(tmp_path, old, new, path, message):
    assert old in CHECKPOINTS
    problems = problems_of(tmp_path, CHECKPOINTS.replace(old, new, 1))
    matching = [p for p in problems if p.path == path and message in str(p)]
    assert matching, "\n".join(str(p) for p in problems)
    assert matching[0].line is not None


def test_a_study_needs_experiments_or_checkpoints(tmp_path):
    text = MINIMAL[: MINIMAL.index("experiments:")] + "claims: []\n"
    (problem,) = problems_of(tmp_path, text)
    assert "at least one experiment (to train) or one checkpoint" in problem.message


def test_cross_references_are_checked_in_the_same_pass_as_the_schema(tmp_path):
    """A newcomer fixed a misspelt key, ran `repro validate` again, and only then heard that
    a claim named a source and an experiment that do not exist."""
    text = MINIMAL.replace("    batch_size:", "    batch_sise:").replace(
        "{source: he2015, where: Table 6, experiment: resnet20",
        "{source: he2016, where: Table 6, experiment: resnet32",
    )
    problems = problems_of(tmp_path, text)
    assert [(p.path, p.message.split(";")[0]) for p in problems] == [
        ("recipes.base.batch_sise", "unknown key 'batch_sise'"),
        ("claims[0].source", "no source named 'he2016'"),
        ("claims[0].experiment", "no experiment named 'resnet32'"),
    ], "\n".join(str(p) for p in problems)


def test_a_malformed_experiment_is_no_unknown_one_and_what_waits_is_said(tmp_path):
    """A claim naming an experiment whose entry is malformed is not told the experiment is
    unknown; a name that may be that of an entry whose name could not be read is not checked,
    and a line says how many checks wait for the problems to be fixed."""
    text = MINIMAL.replace("    model: plain20\n", "    model: plain20\n    seeds: 0\n").replace(
        "  - name: resnet20\n", "  - nmae: resnet20\n"
    )
    problems = problems_of(tmp_path, text)
    shown = "\n".join(str(p) for p in problems)
    assert not any("no experiment named" in p.message for p in problems), shown
    assert [p.path for p in problems[:-1]] == ["experiments[0].nmae", "experiments[1].seeds"]
    # The two claims' resnet20 may be experiments[0]'s name once it is spelt right.
    assert (problems[-1].path, problems[-1].line) == ("", None)
    assert problems[-1].message.startswith(
        "2 cross-references not checked until the problems above are fixed"
    ), shown


def test_validate_counts_problems_in_words_and_not_the_line_of_what_waits(tmp_path):
    """`repro validate` headed two problems and the line saying how many cross-references wait
    for them as "3 problem(s)": that line is no problem. It says "2 problems", and counts in
    words throughout ("1 of 2 files invalid", "1 problem")."""
    text = MINIMAL.replace("    model: plain20\n", "    model: plain20\n    seeds: 0\n").replace(
        "  - name: resnet20\n", "  - nmae: resnet20\n"
    )
    bad = write(tmp_path, text)
    one = tmp_path / "one.yaml"
    one.write_text(MINIMAL.replace("year: 2015}", "year: 15}"))
    good = tmp_path / "good" / "s.yaml"
    good.parent.mkdir()
    good.write_text(MINIMAL)
    out = CliRunner().invoke(main, ["validate", str(bad), str(good)])
    assert out.exit_code == 1, out.output
    assert f"{bad}: 2 problems\n" in out.output, out.output
    assert "2 cross-references not checked" in out.output and "1 of 2 files invalid" in out.output
    out = CliRunner().invoke(main, ["validate", str(one)])
    assert f"{one}: 1 problem\n" in out.output and "1 of 1 file invalid" in out.output, out.output


def test_a_claims_epoch_is_checked_against_a_valid_experiment_beside_other_problems(tmp_path):
    text = MINIMAL.replace("year: 2015}", "year: 15}").replace(
        "metric: test_error, value: 8.75}",
        "metric: test_error_at_epoch, epoch: 200, value: 8.75}",
    )
    problems = problems_of(tmp_path, text)
    assert [(p.path, p.message.split(":")[0]) for p in problems] == [
        ("sources.he2015.year", "value out of range"),
        ("claims[0].epoch", "epoch 200 is beyond the end of training"),
    ], "\n".join(str(p) for p in problems)


def test_two_experiments_that_train_the_same_thing_are_named_by_validate(tmp_path):
    """Within one study both would train (harness.twins adopts only other studies' runs):
    every seed twice on the GPU, without a word. A note, `follows:` or a name changes no
    training. A warning, since training one config twice can be meant."""
    text = MINIMAL.replace(
        "  - name: plain20\n    model: plain20\n    recipe: base\n",
        "  - name: resnet20-again\n    model: resnet20\n"
        "    recipe: {extends: base, note: as the other source says}\n    follows: he2015\n",
    )
    text = text.replace("[resnet20, plain20]", "[resnet20, resnet20-again]")
    path = write(tmp_path, text)
    (warning,) = study_warnings(path, load_study(path))
    assert (warning.path, warning.line) == ("experiments[1]", 17), str(warning)
    assert warning.message.startswith(
        "warning: trains exactly what experiments[0] ('resnet20') trains (the same model and "
        "recipe once the short forms are expanded), so `repro run` trains every seed twice"
    ), warning.message
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}:17: experiments[1]: warning: trains exactly what" in result.output
    # The same model with another recipe is another training.
    path.write_text(text.replace("note: as the other source says", "epochs: 130"))
    assert study_warnings(path, load_study(path)) == []


SECOND_RELEASE = """\
  - name: released20
    model: resnet20
    source: he2015
    path: weights/resnet20.th
    layout: theirs
    normalization: {kind: per_channel, mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2]}
"""


@pytest.mark.parametrize("other_problem", [False, True], ids=["alone", "beside-a-schema-problem"])
def test_two_checkpoints_of_one_name_and_an_ordering_naming_one_twice_are_found_in_one_pass(
    tmp_path, other_problem
):
    """Both were checked only once the rest of the study was valid: a newcomer fixed a
    source's year, ran `repro validate` again, and only then heard of them. Each is named at
    its line, with what to do, in the first pass beside every other problem."""
    text = (CHECKPOINTS + SECOND_RELEASE).replace(
        "[resnet20, plain20]", "[resnet20, plain20, resnet20]"
    )
    if other_problem:
        text = text.replace("year: 2015}", "year: 15}")
    out = CliRunner().invoke(main, ["validate", str(write(tmp_path, text))])
    assert out.exit_code == 1, out.output
    path = tmp_path / "study.yaml"
    lines = text.splitlines()
    ordering = 1 + next(i for i, line in enumerate(lines) if "plain20, resnet20]" in line)
    second = 1 + len(lines) - SECOND_RELEASE.count("\n")
    assert (f"{path}:{second}: checkpoints[1].name: name already used by checkpoints[0]; "
            "experiments and checkpoints share the store, so their names must differ: rename "
            "this one") in out.output, out.output  # fmt: skip
    assert (f"{path}:{ordering}: claims[1].experiments[2]: experiment 'resnet20' is listed "
            "twice (also at claims[1].experiments[0]): an ordering compares different "
            "experiments, each once; remove the repeat") in out.output, out.output  # fmt: skip
    expected = "3 problems" if other_problem else "2 problems"
    assert f"{path}: {expected}\n" in out.output, out.output
    if other_problem:
        assert f"{path}:4: sources.he2015.year: value out of range" in out.output


def test_an_ordering_repeat_is_found_in_a_malformed_claim_and_each_repeat_once(tmp_path):
    """The first pass checks the list as written even where the claim has a problem of its
    own (here a misspelt direction); a name given three times is two repeats."""
    text = MINIMAL.replace("[resnet20, plain20]", "[resnet20, resnet20, plain20, resnet20]")
    text = text.replace("direction: increasing", "direction: increasnig")
    problems = problems_of(tmp_path, text)
    repeats = [p for p in problems if "listed twice" in p.message]
    assert [(p.path, p.line) for p in repeats] == [
        ("claims[1].experiments[1]", 27),
        ("claims[1].experiments[3]", 27),
    ], "\n".join(str(p) for p in problems)
    assert any(p.path == "claims[1].direction" for p in problems)


# --------------------------------------------------------------------------- fuzzing

# What `repro validate` may print for a file it refuses: problems at a line of it, never a
# traceback or the name of an exception of the harness or its libraries.
LEAK = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception)\b")
FUZZ_OPS = ("delete", "retype", "misspell", "list_for_map", "truncate", "duplicate_key",
            "empty", "junk")  # fmt: skip
ODD_VALUES = (None, -3, 2.5, True, "text", "", [], {}, [1, "a"], {"key": 1}, "1e-4", 10**30)


def _paths(node, prefix=()):
    """Every place in parsed YAML, as the keys and indices that reach it."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _mutated(text: str, op: str, draw) -> bytes:
    """One shipped study with one mistake of the kind ``op``, its choices drawn by ``draw``."""
    lines = text.splitlines(keepends=True)
    if op == "empty":
        return draw(st.sampled_from([b"", b"\n", b"# a study, one day\n", b"  \n\n"]))
    if op == "truncate":  # mid-line: a cut-off copy or a write that died
        inside = [i for i, c in enumerate(text) if c not in "\n" and i and text[i - 1] != "\n"]
        return text[: draw(st.sampled_from(inside))].encode()
    if op == "junk":
        at = draw(st.integers(0, len(text)))
        junk = draw(st.binary(min_size=1, max_size=16))
        return text[:at].encode() + junk + text[at:].encode()
    if op == "duplicate_key":
        keys = [i for i, line in enumerate(lines) if re.match(r"\s*[a-z_]+:", line)]
        i = draw(st.sampled_from(keys))
        return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]]).encode()
    data = yaml.safe_load(text)
    path = draw(st.sampled_from(list(_paths(data))))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    key, value = path[-1], parent[path[-1]]
    if op == "delete":
        del parent[key]
    elif op == "retype":
        parent[key] = draw(st.sampled_from(ODD_VALUES))
    elif op == "misspell" and isinstance(parent, dict):
        at = draw(st.integers(0, len(str(key)) - 1))
        parent[f"{str(key)[:at]}{draw(st.sampled_from('xq_'))}{str(key)[at + 1 :]}"] = parent.pop(
            key
        )
    elif op == "misspell":  # a list entry: misspell the value
        parent[key] = f"{value}x" if isinstance(value, str) else "x"
    else:  # a list where a mapping goes (and an entry where a list goes)
        parent[key] = list(value.values()) if isinstance(value, dict) else [value]
    return yaml.safe_dump(data, sort_keys=False).encode()


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(study=st.sampled_from(STUDIES), op=st.sampled_from(FUZZ_OPS), data=st.data())
def test_a_mangled_shipped_study_is_refused_at_a_line_without_a_traceback(
    tmp_path, study, op, data
):
    """Each shipped study with one mistake of the kinds people and tools make (a key deleted,
    misspelt or given twice, a value of the wrong type, a list for a mapping, a file cut off
    mid-line, empty, or with binary junk in it): `repro validate` exits 1 and names the file
    and a line for each problem, or the study is still valid; never a traceback. Derandomized
    and bounded: the same 25 mistakes each time (about 8 s)."""
    path = tmp_path / "study.yaml"
    path.write_bytes(_mutated(study.read_text(), op, data.draw))
    try:
        load_study(path)  # any exception but StudyError fails the test here, with its traceback
        return  # a mistake that leaves a valid study (an optional key deleted)
    except StudyError:
        pass
    out = CliRunner().invoke(main, ["validate", str(path)])
    assert out.exit_code == 1 and not LEAK.search(out.output), out.output
    heads = [line for line in out.output.splitlines() if line.startswith(f"{path}:")]
    problems = [h for h in heads if not re.fullmatch(rf"{re.escape(str(path))}: \d+ problems?", h)
                and "cross-reference" not in h]  # fmt: skip
    assert problems, out.output
    blank = not path.read_bytes().strip()
    for head in problems:  # an empty file has no line to name
        assert re.match(rf"{re.escape(str(path))}:\d+: ", head) or blank, out.output


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("    recipe: base\n  - name: plain20", "    recipe: {extends: {name: base}}\n  - name: plain20",
         "experiments[0].recipe.extends"),
        ("    recipe: base\n  - name: plain20", "    recipe: {extends: [base]}\n  - name: plain20",
         "experiments[0].recipe.extends"),
        ("recipes:\n  base:\n", "recipes:\n  other: {extends: [base]}\n  base:\n",
         "recipes.other.extends"),
    ],
)  # fmt: skip
def test_extends_given_a_mapping_or_a_list_is_no_recipes_name(tmp_path, old, new, path):
    """Found by the fuzzing above (a list where a mapping went): `extends:` holding a mapping
    or a list was looked up among the recipes as it stood, and `repro validate` died with
    "TypeError: unhashable type"."""
    assert old in MINIMAL
    text = MINIMAL.replace(old, new, 1)
    out = CliRunner().invoke(main, ["validate", str(write(tmp_path, text))])
    assert out.exit_code == 1 and not LEAK.search(out.output), out.output
    line = 1 + text[: text.index("extends: ")].count("\n")
    assert (f":{line}: {path}: not a recipe's name: give the name of one of the study's "
            "recipes") in out.output, out.output  # fmt: skip


@pytest.mark.parametrize(("key", "what"), [("[1, 2]", "a list"), ("{a: 1}", "a mapping")])
def test_a_key_that_is_a_list_or_a_mapping_is_named_at_its_line(tmp_path, key, what):
    """YAML allows `{[1, 2]: 3}` and `? [a, b]`; the reader's check for keys given twice
    looked such a key up and `repro validate` died with "TypeError: unhashable type"."""
    text = MINIMAL.replace("seeds: 1\n", f"seeds: 1\n{key}: 3\n")
    out = CliRunner().invoke(main, ["validate", str(write(tmp_path, text))])
    assert out.exit_code == 1 and not LEAK.search(out.output), out.output
    assert (f"study.yaml:6: not valid YAML: a key is a name or a number, not {what}"
            in out.output), out.output  # fmt: skip


@pytest.mark.parametrize("text", ["name: &me [*me]\n", "name: tiny\nsources: &s\n  a: *s\n"])
def test_a_value_holding_an_alias_of_itself_is_refused_at_once(tmp_path, text):
    """`a: &x [*x]` never ends: counting what the aliases expand to went round it forever,
    taking gigabytes of memory, and `repro validate` never answered. Bounded here by an
    alarm, so that the old behaviour fails the test instead of hanging it."""
    import signal

    def too_long(*_):
        raise TimeoutError("still counting after 5 s")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        (problem,) = problems_of(tmp_path, text)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert problem.line == 1 + text[: text.index("&")].count("\n"), str(problem)  # the anchor's
    assert problem.message.startswith("the value anchored here (&name) holds an alias of itself")


def test_a_stray_byte_that_is_not_utf8_is_named_at_its_line(tmp_path):
    """Found by the fuzzing above: a byte pasted into a study was reported as "byte 152
    cannot be decoded", with no line to look at."""
    path = write(tmp_path, "")
    path.write_bytes(MINIMAL.replace("epochs: 164", "epochs: 16\xe94").encode("latin-1"))
    out = CliRunner().invoke(main, ["validate", str(path)])
    assert out.exit_code == 1, out.output
    assert f"{path}:10: is not UTF-8 text (byte " in out.output, out.output


@pytest.mark.parametrize(
    ("nested", "line"),
    [("deep: " + "[" * 600 + "]" * 600 + "\n", 5),
     ("deep:\n" + "".join(" " * i + "a:\n" for i in range(1, 600)), 604)],
    ids=["flow", "block"],
)  # fmt: skip
def test_values_nested_too_deep_to_read_are_named_at_their_deepest_line(tmp_path, nested, line):
    """PyYAML composes nested values recursively: a few hundred levels (well inside the size
    accepted) made `repro validate` die with "RecursionError: maximum recursion depth
    exceeded"."""
    text = MINIMAL.replace("seeds: 1\n", nested)
    out = CliRunner().invoke(main, ["validate", str(write(tmp_path, text))])
    assert out.exit_code == 1 and not LEAK.search(out.output), out.output
    assert f"study.yaml:{line}: nests lists and mappings too deep to be read" in out.output


def test_values_nested_too_deep_are_refused_whatever_the_recursion_limit(tmp_path):
    """The refusal above came from the interpreter's stack, so where it began depended on the
    recursion limit: in the whole suite, after hypothesis had raised it, 600 levels read and
    the file was refused for an unknown key instead. Now 65 levels are too deep anywhere."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        for levels, refused in ((64, False), (65, True), (600, True)):
            deep = "deep: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"
            out = CliRunner().invoke(
                main, ["validate", str(write(tmp_path, MINIMAL.replace("seeds: 1\n", deep)))]
            )
            assert out.exit_code == 1 and not LEAK.search(out.output), out.output
            too_deep = "study.yaml:5: nests lists and mappings too deep" in out.output
            assert too_deep == refused, (levels, out.output)
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("text", ["# the degradation study, to come\n", "\n# notes\n\n", "~\n"])
def test_a_file_of_comments_alone_is_named_at_its_first_line(tmp_path, text):
    """Found by the fuzzing above: a shipped study cut off inside its opening comment was
    "the file is empty", with no line, though it has lines; an empty file still is."""
    path = write(tmp_path, text)
    out = CliRunner().invoke(main, ["validate", str(path)])
    assert out.exit_code == 1, out.output
    assert (f"{path}:1: holds no value, only comments, blank lines or a null; a study is a "
            "mapping with name, description") in out.output, out.output  # fmt: skip
    path.write_text(" \n")
    out = CliRunner().invoke(main, ["validate", str(path)])
    assert f"{path}: the file is empty; a study is a mapping" in out.output, out.output


def test_a_control_character_is_named_at_its_line_and_column(tmp_path):
    """Found by the fuzzing above: a control character (binary junk, a paste from a
    terminal) was reported with no line, as "position 152" in "<unicode string>"."""
    text = MINIMAL.replace("epochs: 164", "epochs: 16\x1a4")
    out = CliRunner().invoke(main, ["validate", str(write(tmp_path, text))])
    assert out.exit_code == 1, out.output
    assert ("study.yaml:10: not valid YAML: character #x001a at column 15 is not printable, "
            "which YAML does not allow: delete it") in out.output, out.output  # fmt: skip
    assert "<unicode string>" not in out.output


def _validate_within(seconds: float, *args: str):
    """`repro validate` run where a hang fails the test instead of stalling the suite: in a
    daemon thread, given up on after ``seconds`` (it dies with the test process)."""
    import threading

    done: list = []
    worker = threading.Thread(target=lambda: done.append(CliRunner().invoke(main, list(args))),
                              daemon=True)  # fmt: skip
    worker.start()
    worker.join(seconds)
    assert done, f"repro {' '.join(args)} still running after {seconds} s"
    return done[0]


@pytest.mark.parametrize(("model", "said"), [
    ("resnet1000004", "experiments[0].model: model name 'resnet1000004' is not buildable: depth "
     "1000004 is out of range\n    given:   'resnet1000004'\n    allowed: depth <= 10000"),
    ("wrn-1000000-4", "experiments[0].model: model name 'wrn-1000000-4' is not buildable: depth "
     "1000000 is out of range\n    given:   'wrn-1000000-4'\n    allowed: depth <= 10000"),
    ("{depth: 1000004}", "experiments[0].model.depth: value out of range\n    given:   1000004\n"
     "    allowed: a number <= 10000"),
    ("{depth: 9992, block: bottleneck, width: 16}",
     "experiments[0].model: ResNet-9992 (bottleneck, option A, width x16) has 25,990,982,106 "
     "parameters, more than one GPU could train\n"
     "    given:   {'depth': 9992, 'block': 'bottleneck', 'width': 16}\n"
     "    allowed: at most 10,000,000,000 parameters (training keeps 12 bytes of each: its "
     "weight, gradient and momentum)"),
], ids=["resnet1000004", "wrn-1000000-4", "deep-spec", "large-spec"])  # fmt: skip
def test_a_net_no_gpu_could_train_is_refused_at_once_with_where_and_what(tmp_path, model, said):
    """`resnet1000004` (a typo) passed the schema, and validate then built its million layers
    to count its parameters, and never ended."""
    path = write(tmp_path, MINIMAL.replace("model: resnet20", f"model: {model}"))
    out = _validate_within(30, "validate", str(path))
    assert out.exit_code == 1 and not LEAK.search(out.output), out.output
    assert f"{path}:15: {said}" in out.output, out.output


def test_a_net_of_a_thousand_layers_and_a_billion_parameters_validates_in_a_moment(
    tmp_path, monkeypatch
):
    """WRN-1000-10 (1.6 billion parameters) was built on the meta device to count its
    parameters and MACs: 8 s of CPU on the 2-core development VM (2026-11-27). Now counted
    from its spec. (Away from the checkout's queue.yaml, which the cost line would read.)"""
    import time

    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, MINIMAL.replace("model: resnet20", "model: wrn-1000-10"))
    started = time.perf_counter()
    out = _validate_within(60, "validate", str(path))
    assert out.exit_code == 0, out.output
    assert re.search(r"wrn-1000-10 +1,604,846,554 ", out.output), out.output
    assert "cost: 11,553.8 PFLOP of training" in out.output, out.output
    assert time.perf_counter() - started < 3


def test_a_whole_number_too_long_to_read_is_refused_at_its_line(tmp_path):
    """`depth: ` and 5,000 digits ended in a traceback: Python reads at most 4,300."""
    text = MINIMAL.replace("model: resnet20", "model: {depth: " + "9" * 5000 + "}")
    out = _validate_within(30, "validate", str(write(tmp_path, text)))
    assert out.exit_code == 1 and not LEAK.search(out.output), out.output
    assert ("study.yaml:15: not valid YAML: a whole number 5,000 characters long, too long to "
            "be read") in out.output, out.output  # fmt: skip
