"""Learning rates at chosen steps for every schedule form, and the three warm-up forms."""

import itertools

import pytest

from harness.schedule import LearningRate, Length, scheduled_lr
from harness.schema import Recipe


def recipe(**fields) -> Recipe:
    base = {
        "optimizer": {"lr": 0.1},
        "batch_size": 128,
        "epochs": 164,
        "normalization": {"kind": "per_pixel_mean"},
    }
    return Recipe.model_validate({**base, **fields})


def test_multistep_by_epoch_as_a_per_epoch_torch_scheduler_does():
    # Tseng: MultiStepLR(milestones=[81, 122]) stepped per epoch, 391 iterations an epoch.
    r = recipe(schedule={"kind": "multistep", "milestones": [81, 122]})
    length = Length.of(r, 391)
    at_epoch = {e: scheduled_lr(r, length, e * 391) for e in (0, 80, 81, 121, 122, 163)}
    assert at_epoch[0] == at_epoch[80] == pytest.approx(0.1)
    assert at_epoch[81] == at_epoch[121] == pytest.approx(0.01)
    assert at_epoch[122] == at_epoch[163] == pytest.approx(0.001)
    # Within an epoch the rate does not move.
    assert scheduled_lr(r, length, 81 * 391 - 1) == pytest.approx(0.1)


def test_multistep_by_iteration():
    # He et al.: divide by 10 at 32k and 48k iterations, stop at 64k.
    r = recipe(
        epochs=None,
        iterations=64000,
        schedule={"kind": "multistep", "milestones": [32000, 48000], "unit": "iteration"},
    )
    length = Length.of(r, 391)
    assert length.epochs == 164 and length.total_iterations == 64000
    got = [scheduled_lr(r, length, i) for i in (0, 31999, 32000, 47999, 48000, 63999)]
    assert got == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_wrn_gamma_and_milestones():
    r = recipe(
        epochs=200, schedule={"kind": "multistep", "milestones": [60, 120, 160], "gamma": 0.2}
    )
    length = Length.of(r, 391)
    got = [scheduled_lr(r, length, e * 391) for e in (59, 60, 120, 160)]
    assert got == pytest.approx([0.1, 0.02, 0.004, 0.0008])


def test_cosine_per_epoch_and_per_iteration():
    r = recipe(epochs=50, schedule={"kind": "cosine", "unit": "epoch"})
    length = Length.of(r, 782)
    assert scheduled_lr(r, length, 0) == pytest.approx(0.1)
    assert scheduled_lr(r, length, 25 * 782) == pytest.approx(0.05)
    assert scheduled_lr(r, length, 25 * 782 + 500) == pytest.approx(0.05)  # held within epoch
    r_it = recipe(epochs=50, schedule={"kind": "cosine", "unit": "iteration", "min_lr": 0.001})
    total = 50 * 782
    assert scheduled_lr(r_it, length, total // 2) == pytest.approx(0.001 + 0.099 / 2)
    assert scheduled_lr(r_it, length, total // 4) > scheduled_lr(r_it, length, total // 4 + 1)


def test_constant():
    r = recipe()
    assert scheduled_lr(r, Length.of(r, 391), 50_000) == 0.1


def test_warmup_for_a_fixed_number_of_epochs():
    # Seed 004's bottleneck net: 0.01 for ten epochs, then the schedule.
    r = recipe(
        warmup={"lr": 0.01, "epochs": 10}, schedule={"kind": "multistep", "milestones": [80, 120]}
    )
    lr = LearningRate(r, Length.of(r, 781))
    assert lr(0) == lr(10 * 781 - 1) == 0.01
    assert lr(10 * 781) == pytest.approx(0.1)
    assert lr.state.ended_at == 10 * 781
    assert lr(80 * 781) == pytest.approx(0.01)  # the schedule counts from the start


def test_warmup_for_a_fixed_number_of_iterations():
    r = recipe(warmup={"lr": 0.01, "iterations": 400})
    lr = LearningRate(r, Length.of(r, 391))
    assert [lr(0), lr(399), lr(400)] == pytest.approx([0.01, 0.01, 0.1])


def test_warmup_until_training_error_falls_below_a_threshold():
    r = recipe(warmup={"lr": 0.01, "until_train_error_below": 80, "window": 20})
    lr = LearningRate(r, Length.of(r, 391))
    assert lr.needs_errors
    lr.observe_errors(9, [90.0] * 10)
    assert lr(10) == 0.01
    lr.observe_errors(19, [85.0] * 10)  # window full, mean 87.5: still warming up
    assert lr(20) == 0.01
    lr.observe_errors(29, [70.0] * 10)  # last 20: mean 77.5 < 80
    assert lr.state.ended_at == 30
    assert not lr.needs_errors
    assert lr(30) == pytest.approx(0.1)


def test_threshold_warmup_is_bounded_by_max_iterations():
    r = recipe(warmup={"lr": 0.01, "until_train_error_below": 80, "max_iterations": 100})
    lr = LearningRate(r, Length.of(r, 391))
    lr.observe_errors(99, [90.0] * 100)
    assert lr(99) == 0.01
    assert lr(100) == pytest.approx(0.1)


# He et al.'s ResNet-110 recipe, as a 5-epoch warm-up of 160 epochs (391 steps an epoch).
WARM_START = {
    "epochs": 160,
    "schedule": {"kind": "multistep", "milestones": [80, 120]},
    "warmup": {"lr": 0.01, "epochs": 5},
}


def _rates(r: Recipe) -> list[float]:
    from harness.plan import nominal_batches_per_epoch, nominal_iterations

    lr = LearningRate(r, Length.of(r, nominal_batches_per_epoch(r)))
    return [round(lr(i), 6) for i in range(nominal_iterations(r))]


def _runs(rates: list[float]) -> list[tuple[float, int]]:
    """The rates in order with how many steps each lasts."""
    out: list[tuple[float, int]] = []
    for rate in rates:
        if out and out[-1][0] == rate:
            out[-1] = (rate, out[-1][1] + 1)
        else:
            out.append((rate, 1))
    return out


def test_a_one_epoch_trial_runs_the_warm_up_and_each_decay_in_miniature():
    """`--epochs 1` made the 5-epoch warm-up one epoch, the whole trial, and both milestones
    the trial's end: it trained at the warm-up's rate throughout. Counted in iterations, the
    trial warms up for 5/160 of itself, then decays at 80/160 and 120/160."""
    from harness.plan import Overrides, apply_overrides

    trial = apply_overrides(recipe(**WARM_START), Overrides(epochs=1))
    assert _runs(_rates(trial)) == [(0.01, 12), (0.1, 184), (0.01, 97), (0.001, 98)]
    smoke = apply_overrides(recipe(**WARM_START), Overrides(smoke=True))
    assert _rates(smoke) == [0.01, 0.1, 0.01, 0.001]


def test_a_trial_whose_points_land_on_whole_epochs_keeps_its_units():
    """Where the warm-up's end and every milestone fall on a whole epoch of the trial (a
    fifth of 160 epochs: 1, 16 and 24), a trial is scaled as before (and hashed as before:
    see the pinned hash below)."""
    from harness.plan import Overrides, apply_overrides

    trial = apply_overrides(recipe(**WARM_START), Overrides(epochs=32))
    assert (trial.epochs, trial.warmup.epochs, trial.schedule.unit) == (32, 1, "epoch")
    assert trial.schedule.milestones == [16, 24]


def _r110_study(tmp_path):
    """He et al.'s 160-epoch ResNet-110 recipe with its 5-epoch warm-up, as a one-run study."""
    from harness.studyfile import load_study

    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ndescription: d\nsources: {test: {title: t, authors: a}}\n"
        "experiments:\n  - name: r110\n    model: resnet110\n    recipe:\n"
        "      optimizer: {lr: 0.1}\n      batch_size: 128\n      epochs: 160\n"
        "      schedule: {kind: multistep, milestones: [80, 120]}\n"
        "      warmup: {lr: 0.01, epochs: 5}\n      normalization: {kind: per_pixel_mean}\n"
    )
    return load_study(path)


def test_repro_run_says_at_what_rates_a_trial_trains(tmp_path):
    from harness.describe import trial_lines
    from harness.plan import Overrides, config_hash, plan

    study = _r110_study(tmp_path)
    assert trial_lines(study, Overrides()) == []
    assert trial_lines(study, Overrides(epochs=1)) == [
        "s: trial ~epochs1 (stored apart, never counts as a reproduction); its learning rate "
        "by iteration:",
        "  r110: 1 epoch of 391 iterations; warm-up at lr 0.01 for iterations 1-12; lr 0.1, "
        "x0.1 from iteration 197, x0.1 from iteration 294",
    ]
    (full,), (trial,) = plan(study), plan(study, Overrides(epochs=1))
    assert config_hash(full.config) != config_hash(trial.config)
    assert trial.name == "r110/seed-0~epochs1" and not trial.counts_as_reproduction


@pytest.mark.parametrize(
    ("epochs", "runs"),
    [
        # 5/160 of 3,910 steps is 122.2: the warm-up was one whole epoch, 10% of the trial.
        (10, [(0.01, 122), (0.1, 1833), (0.01, 977), (0.001, 978)]),
        # 2.5 epochs of warm-up, rounded to 2 before.
        (80, [(0.01, 978), (0.1, 14662), (0.01, 7820), (0.001, 7820)]),
    ],
)
def test_a_trial_keeps_the_recipes_fractions_where_they_miss_whole_epochs(epochs, runs):
    """`--epochs 10` of He et al.'s 160-epoch ResNet-110 recipe scaled its 5-epoch warm-up
    to 0.3 epochs and rounded it up to 1: a tenth of the trial at the warm-up's rate, where
    the recipe spends 3%, and the second decay at epoch 8 of 10 where the recipe has 3/4.
    Counted in iterations, every change is at the recipe's fraction within a step."""
    from harness.plan import Overrides, apply_overrides, nominal_iterations

    trial = apply_overrides(recipe(**WARM_START), Overrides(epochs=epochs))
    assert trial.epochs == epochs and trial.schedule.unit == "iteration"
    assert _runs(_rates(trial)) == runs
    steps = nominal_iterations(trial)
    ends = list(itertools.accumulate(n for _, n in runs))[:-1]
    for end, fraction in zip(ends, (5 / 160, 80 / 160, 120 / 160), strict=True):
        assert abs(end - fraction * steps) <= 1, (end, fraction * steps)


def test_repro_run_tells_the_rates_of_a_trial_counted_in_iterations_and_hashes_as_before(
    tmp_path,
):
    """What `repro run --epochs 10` prints is what the trial trains at, and a trial that
    lands on whole epochs, like a full run, has the config hash it had before trials were
    counted in iterations where they miss one (hashes computed at eac819d)."""
    from harness.describe import trial_lines
    from harness.plan import Overrides, plan

    study = _r110_study(tmp_path)
    assert trial_lines(study, Overrides(epochs=10))[1] == (
        "  r110: 10 epochs of 391 iterations; warm-up at lr 0.01 for iterations 1-122; lr 0.1, "
        "x0.1 from iteration 1956, x0.1 from iteration 2933"
    )
    (trial,) = plan(study, Overrides(epochs=10))
    assert _runs(_rates(trial.recipe))[:2] == [(0.01, 122), (0.1, 1833)]
    assert [run.hash for o in (Overrides(), Overrides(epochs=32)) for run in plan(study, o)] == [
        "a0447a29afbeb552",
        "4143614da719ad37",
    ]
