"""Verdicts on constructed run stores: the statistics behind each rule, case by case.

Every test builds a small study and hand-made runs (tests/fake_runs.py), builds the report and
reads the verdict of the claim it is about.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import ROOT, TINY_RECIPE, tiny_study
from fake_runs import fake_run

from harness import verdicts as V
from harness.metrics import CHANCE_LOSS, METRICS
from harness.regressions import KEY, compare
from harness.report import ClaimRow, build, render_html, report_for
from harness.results import scan
from harness.schema import Claim
from harness.studyfile import StudyError, load_study


def make_study(tmp_path, experiments: str, claims: str, *, top: str = ""):
    """A study with the given experiments and claims (source ``test``); ``top`` adds
    study-level keys."""
    path = tiny_study(tmp_path / "v.yaml", experiments + "claims:\n" + claims, name="v")
    if top:
        path.write_text(path.read_text().replace("seeds: 1\n", f"seeds: 1\n{top}"))
    return load_study(path), path, tmp_path / "results"


def rows(study, path, results) -> list[ClaimRow]:
    (s,) = build([(study, str(path))], scan(results), str(results)).studies
    return s.all_claims


def row(study, path, results, experiment: str, claimed: float | None = None) -> ClaimRow:
    (found,) = [r for r in rows(study, path, results) if r.experiment == experiment
                and (claimed is None or r.claimed_value == claimed)]  # fmt: skip
    return found


ORDER = """\
  - {name: a, model: resnet20, recipe: base}
  - {name: b, model: resnet20, recipe: base}
"""
FIVE = "  - {name: five, model: resnet20, recipe: base, seeds: 5}\n"


# --------------------------------------------------------------------------- 1. orderings


A_ABOVE_B = """\
  - {kind: ordering, source: test, where: F1, statement: b is better, metric: test_error,
     experiments: [a, b], direction: decreasing}
"""


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (7.00, 6.99, V.INCONCLUSIVE),  # 0.01 pp: one seed each cannot tell
        (7.00, 7.01, V.INCONCLUSIVE),  # the wrong way, but inside the noise too
        (7.00, 6.00, V.REPRODUCED),
        (6.00, 7.00, V.NOT_REPRODUCED),
    ],
)
def test_an_ordering_of_single_runs_applies_the_assumed_seed_noise(tmp_path, a, b, expected):
    study, path, results = make_study(tmp_path, ORDER, A_ABOVE_B)
    fake_run(results, study, "a", test_error=a)
    fake_run(results, study, "b", test_error=b)
    (r,) = rows(study, path, results)
    assert r.verdict == expected, r.reason
    if expected == V.INCONCLUSIVE:
        assert "seed noise" in r.reason and "more seeds" in r.reason


# --------------------------------------------------------------------------- 2. mean, median


def test_a_mean_of_five_is_judged_by_its_standard_error_not_a_floor(tmp_path):
    claims = ("  - {source: test, where: T6, experiment: five, metric: test_error, value: 6.61,"
              " std: 0.16, rule: mean of 5}\n")  # fmt: skip
    study, path, results = make_study(tmp_path, FIVE, claims)
    for seed, err in enumerate([6.75, 6.95, 7.05, 7.15, 7.35]):  # mean 7.05, std 0.224
        fake_run(results, study, "five", seed, test_error=err)
    r = row(study, path, results, "five")
    assert r.reproduced_value == pytest.approx(7.05)
    # SE of the claimed mean 0.16/sqrt(5), of ours 0.224 pooled with the assumed 0.2 as one
    # more degree of freedom, over sqrt(5): 2 x 0.122 = 0.24, not 0.5.
    ours = math.sqrt((0.2**2 + 4 * 0.2236**2) / 5)
    se = math.hypot(0.16 / math.sqrt(5), ours / math.sqrt(5))
    assert r.tolerance == pytest.approx(2 * se, rel=0.01)
    assert r.verdict == V.NOT_REPRODUCED, r.reason
    assert (r.interval_low, r.interval_high) == pytest.approx((6.61 - 2 * se, 6.61 + 2 * se),
                                                              rel=0.01)  # fmt: skip


def test_one_set_of_runs_does_not_reproduce_two_claims_0_31_apart(tmp_path):
    claims = """\
  - {id: zk, source: test, where: ZK, experiment: five, metric: test_error, value: 5.24, rule: median of 5}
  - {id: mk, source: test, where: MK, experiment: five, metric: test_error, value: 5.55, rule: median of 5}
"""
    study, path, results = make_study(tmp_path, FIVE, claims)
    for seed, err in enumerate([5.15, 5.25, 5.30, 5.35, 5.45]):
        fake_run(results, study, "five", seed, test_error=err)
    assert row(study, path, results, "five", 5.24).verdict == V.REPRODUCED
    assert row(study, path, results, "five", 5.55).verdict == V.BETTER


SINGLE = "  - {source: test, where: T1, experiment: two, metric: test_error, value: 8.51}\n"


@pytest.mark.parametrize(
    ("seeds", "expected", "why"),
    [
        ([3.0, 14.0], V.INCONCLUSIVE, "spread 7.78"),  # a median of 8.5, from noise
        ([8.40, "diverged"], V.INCONCLUSIVE, "a diverged or failed seed"),  # median 49.2
        ([20.0, 30.0], V.NOT_REPRODUCED, "every one of them alone"),  # wild, but both worse
        ([8.40, 8.40], V.REPRODUCED, "<="),  # agreeing by chance: not a tolerance of zero
        ([8.90, 8.90], V.NOT_REPRODUCED, "beyond"),  # 0.39 off, pooled std 0.14: tol 0.34
    ],
)
def test_runs_that_disagree_beyond_seed_noise_decide_nothing(tmp_path, seeds, expected, why):
    """A tolerance built from our own spread grows with it: two seeds at 3% and 14% would
    'reproduce' any claim between them. And two seeds that agree exactly must not make a
    tolerance of zero either."""
    study, path, results = make_study(tmp_path, TWO, SINGLE)
    for seed, err in enumerate(seeds):
        if err == "diverged":
            fake_run(results, study, "two", seed, status="diverged")
        else:
            fake_run(results, study, "two", seed, test_error=err)
    r = row(study, path, results, "two")
    assert r.verdict == expected, r.reason
    assert why in r.reason


def _four_good_seeds_and_a_diverged_one(tmp_path, claims: str) -> ClaimRow:
    """The row of a claim on ``five`` whose seeds are 6.4 to 6.7 and one diverged (90%)."""
    study, path, results = make_study(tmp_path, FIVE, claims)
    for seed, err in enumerate([6.4, 6.5, 6.6, 6.7]):
        fake_run(results, study, "five", seed, test_error=err)
    fake_run(results, study, "five", 4, status="diverged")
    return row(study, path, results, "five")


def test_a_diverged_seed_in_a_mean_of_five_is_not_excused_by_its_own_spread(tmp_path):
    claims = ("  - {source: test, where: T6, experiment: five, metric: test_error, value: 6.61,"
              " std: 0.16, rule: mean of 5}\n")  # fmt: skip
    r = _four_good_seeds_and_a_diverged_one(tmp_path, claims)  # the mean becomes 23.24
    assert r.reproduced_value == pytest.approx(23.24)
    assert r.verdict == V.INCONCLUSIVE, r.reason  # it was 'reproduced' within 2 x 16.7


def test_a_median_of_five_shrugs_off_one_wild_seed_as_the_median_does(tmp_path):
    claims = ("  - {source: test, where: T3, experiment: five, metric: test_error, value: 6.6,"
              " rule: median of 5}\n")  # fmt: skip
    r = _four_good_seeds_and_a_diverged_one(tmp_path, claims)
    assert r.reproduced_value == pytest.approx(6.6)
    assert r.verdict == V.REPRODUCED, r.reason
    assert r.tolerance < 0.5  # from the central runs, not from the diverged one


def test_an_ordering_of_seeds_that_agree_by_chance_still_needs_a_gap_beyond_seed_noise(tmp_path):
    study, path, results = make_study(tmp_path, ORDER.replace("base}", "base, seeds: 2}"),
                                      A_ABOVE_B)  # fmt: skip
    for seed in range(2):
        fake_run(results, study, "a", seed, test_error=7.1)
        fake_run(results, study, "b", seed, test_error=7.0)
    (r,) = rows(study, path, results)
    assert r.verdict == V.INCONCLUSIVE, r.reason  # it was 'reproduced' on a spread of zero


def test_standard_errors_of_each_reporting_rule():
    assert V.standard_error("mean", 5, 1.0) == pytest.approx(1 / math.sqrt(5))
    assert V.standard_error("median", 5, 1.0) == pytest.approx(math.sqrt(math.pi / 2 / 5))
    assert V.standard_error("median", 2, 1.0) == pytest.approx(1 / math.sqrt(2))  # the mean
    assert V.standard_error("single", 1, 1.0) == 1.0
    # The smallest of N normal draws: 0.826 for two, 0.669 for five (tables of order statistics)
    assert V.standard_error("best", 2, 1.0) == pytest.approx(0.8256, abs=1e-3)
    assert V.standard_error("best", 5, 1.0) == pytest.approx(0.6690, abs=1e-3)


# --------------------------------------------------------------------------- 3. scales


def test_a_loss_claim_gets_a_loss_noise_not_0_2_percentage_points(tmp_path):
    claims = ("  - {source: test, where: F5, experiment: a, metric: final_train_loss,"
              " value: 0.05}\n")  # fmt: skip
    study, path, results = make_study(tmp_path, ORDER, claims)
    fake_run(results, study, "a", train_loss=0.30)  # six times the claimed loss
    r = row(study, path, results, "a")
    assert r.verdict == V.NOT_REPRODUCED, r.reason
    assert r.tolerance < 0.05


def test_every_metric_has_a_scale():
    assert METRICS["test_error"].scale.unit == "%"
    assert METRICS["test_error"].scale.noise(7.0) == pytest.approx(0.2)
    assert METRICS["final_train_loss"].scale.unit == ""
    assert METRICS["final_train_loss"].scale.noise(0.5) == pytest.approx(0.05)
    assert METRICS["sec_per_epoch"].scale.unit == " s"
    assert METRICS["params"].scale.noise(269_722) == 0


# --------------------------------------------------------------------------- 4. diverged runs


def test_a_net_that_did_not_learn_is_reproduced_by_runs_that_diverged(tmp_path):
    claims = ("  - {source: test, where: T1, experiment: a, metric: test_error, value: 90.0,"
              " note: did not learn}\n")  # fmt: skip
    study, path, results = make_study(tmp_path, ORDER, claims)
    fake_run(results, study, "a", status="diverged")
    r = row(study, path, results, "a")
    assert r.verdict == V.REPRODUCED, r.reason
    assert r.n == 1 and r.reproduced_value == 90.0
    assert any("diverged" in n and "chance" in n for n in r.notes), r.notes


def test_diverged_seeds_count_in_a_median_instead_of_dropping_out(tmp_path):
    claims = ("  - {source: test, where: T3, experiment: five, metric: test_error, value: 5.0,"
              " rule: median of 5}\n")  # fmt: skip
    study, path, results = make_study(tmp_path, FIVE, claims)
    for seed in range(2):
        fake_run(results, study, "five", seed, test_error=5.0)
    for seed in range(2, 5):
        fake_run(results, study, "five", seed, status="diverged")
    r = row(study, path, results, "five")
    assert r.n == 5 and r.reproduced_value == 90.0
    assert r.verdict == V.NOT_REPRODUCED, r.reason


def test_a_diverged_loss_counts_at_chance_and_too_few_runs_stay_inconclusive(tmp_path):
    claims = ("  - {source: test, where: F5, experiment: five, metric: final_train_loss,"
              " value: 0.1, rule: mean of 5}\n")  # fmt: skip
    study, path, results = make_study(tmp_path, FIVE, claims)
    fake_run(results, study, "five", 0, status="diverged")
    fake_run(results, study, "five", 1, train_loss=0.1)
    r = row(study, path, results, "five")
    assert r.reproduced_value == pytest.approx((CHANCE_LOSS + 0.1) / 2)
    assert r.verdict == V.INCONCLUSIVE and "2 counted so far" in r.reason
    assert any("diverged" in n and "ln 10" in n for n in r.notes), r.notes
    for seed in range(2, 5):
        fake_run(results, study, "five", seed, train_loss=0.1)
    r = row(study, path, results, "five")
    # One diverged seed of five spreads the runs beyond seed noise: it decides nothing alone
    # (it made the mean infinite, and the claim 'not reproduced', before).
    assert r.reproduced_value == pytest.approx((CHANCE_LOSS + 0.4) / 5)
    assert r.verdict == V.INCONCLUSIVE and "beyond seed noise" in r.reason, r.reason


PLAIN_LOSS = """\
  - {name: plain20, model: resnet20, recipe: base, seeds: 5}
  - {name: plain56, model: resnet20, recipe: base, seeds: 5}
"""
DEEPER_IS_WORSE = """\
  - {kind: ordering, source: test, where: F5, statement: the deeper plain net trains worse,
     metric: final_train_loss, experiments: [plain20, plain56], direction: increasing}
"""


def test_one_diverged_seed_of_five_does_not_decide_an_ordering_on_a_loss(tmp_path):
    """A diverged seed counted as an infinite loss made plain56's mean infinite, and the
    ordering 'reproduced', though its other four seeds trained to a lower loss than plain20's."""
    study, path, results = make_study(tmp_path, PLAIN_LOSS, DEEPER_IS_WORSE)
    for seed, (low, high) in enumerate([(0.10, 0.08), (0.11, 0.09), (0.09, 0.10), (0.10, 0.09)]):
        fake_run(results, study, "plain20", seed, train_loss=low)
        fake_run(results, study, "plain56", seed, train_loss=high)
    fake_run(results, study, "plain20", 4, train_loss=0.10)
    fake_run(results, study, "plain56", 4, status="diverged")
    (r,) = rows(study, path, results)
    assert r.verdict == V.INCONCLUSIVE, r.reason  # 'reproduced' before
    assert "within seed noise" in r.reason and "1 of 5 diverged" in r.reason, r.reason
    assert f"plain56 {(0.36 + CHANCE_LOSS) / 5:.4g}" in r.reason, r.reason
    assert any(n.startswith("1 of the 5 runs of plain56 used diverged") and "ln 10" in n
               for n in r.notes), r.notes  # fmt: skip


@pytest.mark.parametrize("diverged", [3, 5])
def test_a_side_where_most_seeds_diverged_still_orders_as_worse(tmp_path, diverged):
    study, path, results = make_study(tmp_path, PLAIN_LOSS, DEEPER_IS_WORSE)
    for seed in range(5):
        fake_run(results, study, "plain20", seed, train_loss=0.10 + 0.01 * (seed % 2))
        if seed < diverged:
            fake_run(results, study, "plain56", seed, status="diverged")
        else:
            fake_run(results, study, "plain56", seed, train_loss=0.15)
    (r,) = rows(study, path, results)
    assert r.verdict == V.REPRODUCED, r.reason
    assert f"{diverged} of 5 diverged" in r.reason, r.reason
    # And the other way round it is not reproduced: a mostly diverged side is not the better.
    study, path, results = make_study(
        tmp_path, PLAIN_LOSS, DEEPER_IS_WORSE.replace("increasing", "decreasing")
    )
    (r,) = rows(study, path, results)
    assert r.verdict == V.NOT_REPRODUCED, r.reason


# --------------------------------------------------------------------------- 5. hardware


def test_gpu_names_are_matched_after_normalising_them():
    claimed = "NVIDIA GTX 980, Theano/Lasagne, batch 64"
    assert V.same_hardware("NVIDIA GeForce GTX 980", claimed)
    assert V.same_hardware("geforce gtx-980", claimed)
    assert not V.same_hardware("NVIDIA GeForce GTX 980 Ti", claimed)
    assert not V.same_hardware("NVIDIA GeForce GTX 98", claimed)
    assert V.same_hardware("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3")


def test_a_speed_claim_on_the_same_gpu_under_another_vendor_spelling_is_compared(tmp_path):
    claims = ("  - {source: test, where: S, experiment: a, metric: sec_per_epoch, value: 90,"
              " hardware: 'NVIDIA GTX 980, Theano/Lasagne, batch 64'}\n")  # fmt: skip
    study, path, results = make_study(tmp_path, ORDER, claims)
    fake_run(results, study, "a", device="NVIDIA GeForce GTX 980", sec_per_epoch=88.0)
    r = row(study, path, results, "a")
    assert r.verdict == V.REPRODUCED, r.reason


# --------------------------------------------------------------------------- 6. executions


TWO = "  - {name: two, model: resnet20, recipe: base, seeds: 2}\n"
ON_TWO = "  - {source: test, where: T1, experiment: two, metric: test_error, value: 8.75}\n"


def _fp32_and_bf16(study, results) -> None:
    fake_run(results, study, "two", 0, test_error=8.6)
    fake_run(results, study, "two", 1, test_error=12.0, precision="bf16")


def test_runs_in_other_precisions_are_kept_apart(tmp_path):
    study, path, results = make_study(tmp_path, TWO, ON_TWO)
    _fp32_and_bf16(study, results)
    r = row(study, path, results, "two")
    assert r.n == 1 and r.reproduced_value == 8.6 and r.verdict == V.REPRODUCED
    assert r.execution == "fp32, fast pipeline"
    assert any("bf16, fast pipeline" in n and "kept apart" in n for n in r.notes), r.notes


def test_a_study_may_pool_executions_and_the_row_says_so(tmp_path):
    study, path, results = make_study(tmp_path, TWO, ON_TWO, top="pool_executions: true\n")
    _fp32_and_bf16(study, results)
    r = row(study, path, results, "two")
    assert r.n == 2 and r.reproduced_value == pytest.approx(10.3)
    assert r.execution == "pooled: bf16, fast pipeline + fp32, fast pipeline"


def test_a_claim_may_pool_executions_where_its_study_does_not(tmp_path):
    claim = ON_TWO.replace("value: 8.75}", "value: 8.75, pool_executions: true}")
    study, path, results = make_study(tmp_path, TWO, claim)
    fake_run(results, study, "two", 0, test_error=8.6)
    fake_run(results, study, "two", 1, test_error=8.8, pipeline="canonical")
    assert row(study, path, results, "two").n == 2


def test_pooling_must_be_a_yes_or_no(tmp_path):
    with pytest.raises(StudyError, match="pool_executions: wrong type") as info:
        make_study(tmp_path, TWO, ON_TWO, top="pool_executions: sometimes\n")
    assert "true or false" in str(info.value)


def test_an_ordering_compares_runs_of_one_execution(tmp_path):
    study, path, results = make_study(tmp_path, ORDER, A_ABOVE_B)
    fake_run(results, study, "a", test_error=9.0, precision="bf16")
    fake_run(results, study, "b", test_error=6.0)
    (r,) = rows(study, path, results)
    assert r.verdict == V.NOT_COMPARABLE, r.reason
    assert "under one execution" in r.reason


# --------------------------------------------------------------------------- 7. the data


def test_a_verdict_on_a_copy_of_the_data_says_so_everywhere(tmp_path):
    claims = "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.27}\n"
    study, path, results = make_study(tmp_path, ORDER, claims)
    fake_run(results, study, "a", test_error=18.97, official=False)  # the JPEG copy's cost
    report = build([(study, str(path))], scan(results), str(results))
    (s,) = report.studies
    (r,) = s.all_claims
    assert r.verdict == "not reproduced on non-official data"
    assert "not the official release" in r.data
    assert s.counts == {"not reproduced on non-official data": 1}
    html = render_html(report)
    assert html.count("not reproduced on non-official data") >= 3  # counts, summary, table
    assert "not reproduced<" not in html


def test_a_claim_reproduced_only_on_a_copy_no_longer_holds_for_the_nightly_check():
    key = dict.fromkeys(KEY, "x")
    before = pd.DataFrame([{**key, "verdict": V.REPRODUCED}])
    now = pd.DataFrame([{**key, "verdict": f"{V.REPRODUCED} {V.ON_NONOFFICIAL_DATA}",
                         "reason": "on a copy"}])  # fmt: skip
    assert len(compare(before, now).lost) == 1


def test_runs_on_the_official_data_are_preferred_to_runs_on_a_copy(tmp_path):
    study, path, results = make_study(tmp_path, TWO, ON_TWO)
    fake_run(results, study, "two", 0, test_error=8.6)
    fake_run(results, study, "two", 1, test_error=18.9, official=False, fingerprint="c" * 64)
    r = row(study, path, results, "two")
    assert (r.verdict, r.n) == (V.REPRODUCED, 1)
    assert r.data == "official release"
    assert any("not the official release" in n and "kept apart" in n for n in r.notes)


# --------------------------------------------------------------------------- 8. params


PRE1001 = "  - {name: pre1001, model: preresnet1001, recipe: base}\n"


def test_a_parameter_count_is_verified_the_way_the_claim_counts(tmp_path):
    claims = """\
  - {source: test, where: T3, experiment: pre1001, metric: params, value: 10.2M,
     counts: without_batchnorm}
  - {source: test, where: T3, experiment: pre1001, metric: params, value: 10.3M}
"""
    study, path, results = make_study(tmp_path, PRE1001, claims)
    stated, every = [r for r in rows(study, path, results) if r.kind == "params"]
    assert (stated.reproduced_value, stated.verdict) == (10_178_490, V.REPRODUCED)
    assert "without batch-norm" in stated.rule
    assert (every.reproduced_value, every.verdict) == (10_327_706, V.REPRODUCED)


def test_a_count_that_matches_only_counted_another_way_is_a_convention_question(tmp_path):
    # 10.2M for ResNet-1001 without saying how it was counted: 10,327,706 with batch norm's
    # scale and shift does not round to it, 10,178,490 without them does. Not a failed
    # reproduction: which way the source counted is the open question.
    claims = """\
  - {source: test, where: T3, experiment: pre1001, metric: params, value: 10.2M}
  - {id: option-a, source: test, where: T3, experiment: b56, metric: params, value: 853018}
  - {id: exact, source: test, where: T3, experiment: b56, metric: params, value: 855770}
  - {id: rounded, source: test, where: T3, experiment: b56, metric: params, value: 0.86M}
  - {id: large, source: test, where: T3, experiment: b56, metric: params, value: 0.95M}
"""
    b56 = "  - {name: b56, model: resnet56b, recipe: base}\n"
    study, path, results = make_study(tmp_path, PRE1001 + b56, claims)
    convention, detail, exact, rounded, large = [r for r in rows(study, path, results)
                                                 if r.kind == "params"]  # fmt: skip
    assert convention.verdict == V.INCONCLUSIVE and convention.severity == "counting convention"
    assert "without batch norm" in convention.reason and "10,178,490" in convention.reason
    assert convention.relative_difference == pytest.approx(10_327_706 / 10_200_000 - 1)
    # ResNet-56 with option B shortcuts against a count for option A: 0.32% off, a detail.
    assert (detail.verdict, detail.severity) == (V.NOT_REPRODUCED, "small difference")
    assert detail.relative_difference == pytest.approx(855_770 / 853_018 - 1)
    assert (exact.verdict, exact.severity, exact.relative_difference) == (
        V.REPRODUCED, "exact", 0.0)  # fmt: skip
    assert (rounded.verdict, rounded.severity) == (V.REPRODUCED, "within rounding")
    assert (large.verdict, large.severity) == (V.NOT_REPRODUCED, "large difference")
    html = render_html(build([(study, str(path))], scan(results), str(results), show_unrun=True))
    assert "+1.25%" in html and "+0.32%" in html and "counting convention" in html


@pytest.mark.parametrize(
    ("stated", "count", "matches"),
    [("0.27M", 265_000, True), ("0.26M", 265_000, False), ("0.27M", 274_999, True),
     ("0.27M", 275_000, False), ("0.28M", 275_000, True), ("0.27M", 264_999, False),
     ("1.7M", 1_650_000, True), ("1.7M", 1_750_000, False), (269722, 269_722, True),
     (269722, 269_723, False)],
)  # fmt: skip
def test_a_rounded_count_matches_as_the_source_rounded_it(stated, count, matches):
    # A source prints 265,000 parameters as 0.27M (a tie rounds up): Python's round() sent
    # 26.5 units to the even 26 and judged 265,000 a match for 0.26M and a miss for 0.27M.
    claim = Claim.model_validate({"source": "s", "where": "T6", "experiment": "e",
                                  "metric": "params", "value": stated})  # fmt: skip
    outcome = V.judge_params(claim, count).outcome
    assert (outcome == V.REPRODUCED) is matches, outcome


def test_a_rounded_count_is_shown_with_the_digits_the_source_printed(tmp_path):
    # Zagoruyko & Komodakis print WRN-16-8's count as 11.0M; the claim table read "11M".
    claims = """\
  - {id: wide, source: test, where: T5, experiment: w, metric: params, value: 11.0M}
  - {id: thin, source: test, where: T6, experiment: r, metric: params, value: 0.27M}
  - {id: whole, source: test, where: T6, experiment: r, metric: params, value: 1M}
"""
    experiments = ("  - {name: w, model: wrn-16-8, recipe: base}\n"
                   "  - {name: r, model: resnet20, recipe: base}\n")  # fmt: skip
    study, path, results = make_study(tmp_path, experiments, claims)
    shown = [(r.claimed, r.rule) for r in rows(study, path, results) if r.kind == "params"]
    assert shown == [("11.0M", "rounded to 100,000"), ("0.27M", "rounded to 10,000"),
                     ("1M", "rounded to 1,000,000")]  # fmt: skip


def test_every_parameter_count_of_the_shipped_studies_is_reproduced():
    report = report_for(sorted((ROOT / "studies").glob("*.yaml")), ROOT / "no-results")
    wrong = [(c.experiment, c.claimed, c.reproduced, c.verdict) for s in report.studies
             for c in s.params if c.verdict != V.REPRODUCED]  # fmt: skip
    # The one exception: He et al. 2016's 10.2M for ResNet-1001 matches only without batch
    # norm's scale and shift, and no source says they counted so: a convention question.
    assert wrong == [("he2016-preresnet1001", "10.2M", "10,327,706", V.INCONCLUSIVE)]


def test_only_a_parameter_claim_says_what_it_counts(tmp_path):
    claims = ("  - {source: test, where: T3, experiment: pre1001, metric: test_error,"
              " value: 4.92, counts: without_batchnorm}\n")  # fmt: skip
    with pytest.raises(StudyError, match="only a params claim says what it counts"):
        make_study(tmp_path, PRE1001, claims)


# --------------------------------------------------------------------------- 9. test error at k


AT_EPOCH = ("  - {source: test, where: F4, experiment: a, metric: test_error_at_epoch,"
            " epoch: 2, value: 11.67}\n")  # fmt: skip


def test_test_error_at_an_epoch_is_read_from_the_curve(tmp_path):
    study, path, results = make_study(tmp_path, ORDER, AT_EPOCH)
    # fake_run's curve: test error 10 x (1.5 - epoch/3/2) at epochs 1..3: 11.67 at epoch 2
    fake_run(results, study, "a", test_error=10.0, epochs=3)
    r = row(study, path, results, "a")
    assert r.reproduced_value == pytest.approx(11.667, abs=1e-3)
    assert r.verdict == V.REPRODUCED and "epoch 2" in r.metric


def test_a_run_past_the_claimed_epoch_counts_before_it_ends(tmp_path):
    """The test error at epoch 2 cannot change once epoch 2 is recorded: a paused run past it
    counts for that claim; a run short of the epoch, or killed before it wrote a summary
    (nothing says what it trains on), does not yet."""
    for d in ("past", "short", "killed"):
        (tmp_path / d).mkdir()
    study, path, results = make_study(tmp_path / "past", ORDER, AT_EPOCH)
    fake_run(results, study, "a", status="paused", test_error=9.336, epochs=4)  # epochs 1-2
    r = row(study, path, results, "a")
    assert (r.n, r.verdict) == (1, V.REPRODUCED)
    assert r.reproduced_value == pytest.approx(11.67)  # the curve at epoch 2: x (1.5 - 2/8)
    assert r.progress == ""  # not also "1 more run under way": it is the run that counts

    later = AT_EPOCH.replace("epoch: 2", "epoch: 3")
    study, path, results = make_study(tmp_path / "short", ORDER, later)
    fake_run(results, study, "a", status="paused", test_error=10.0, epochs=4)
    r = row(study, path, results, "a")
    # Short of the epoch: under way, not "not yet run" (the run has started and may count).
    assert (r.n, r.verdict) == (0, V.UNDER_WAY) and "1 run under way" in r.reason

    study, path, results = make_study(tmp_path / "killed", ORDER, AT_EPOCH)
    fake_run(results, study, "a", status="interrupted", test_error=10.0, epochs=4)
    r = row(study, path, results, "a")
    assert (r.n, r.verdict) == (0, V.UNDER_WAY)


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        (AT_EPOCH.replace("epoch: 2", "epoch: 4"), "the run has 3"),
        (AT_EPOCH.replace(" epoch: 2,", ""), "needs `epoch:`"),
        (AT_EPOCH.replace("test_error_at_epoch", "test_error"), "only for test_error_at_epoch"),
    ],
)
def test_the_epoch_of_a_claim_is_checked(tmp_path, claim, message):
    with pytest.raises(StudyError, match=message):
        make_study(tmp_path, ORDER, claim)


def test_the_studies_hold_the_claims_they_were_missing(tmp_path):
    path = ROOT / "studies" / "degradation.yaml"
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "tseng-plain110", status="diverged")  # "did not learn"
    fake_run(results, study, "tseng-resnet110", test_error=5.7)
    fake_run(results, study, "park-plain56", train_loss=0.30)
    fake_run(results, study, "park-resnet56", train_loss=0.02, test_error=20.0, epochs=164)
    found = {(r.metric, r.experiment): r for r in rows(study, path, results)}
    outperforms = found[("test error (final epoch)", "tseng-plain110, tseng-resnet110")]
    assert outperforms.verdict == V.REPRODUCED, outperforms.reason
    assert ("test error (final epoch)", "tseng-plain56, tseng-resnet56") in found
    loss = found[("training loss (final epoch)", "park-plain56, park-resnet56")]
    assert loss.verdict == V.REPRODUCED, loss.reason
    at_90 = found[("test error at epoch 90", "park-resnet56")]
    assert at_90.reproduced_value == pytest.approx(20.0 * (1.5 - 90 / 164 / 2))
    shortcuts = load_study(ROOT / "studies" / "shortcuts.yaml")
    assert {(c.experiment, c.value) for c in shortcuts.claims
            if c.metric == "test_error_at_epoch"} == {("park-resnet56", 28.5),
                                                      ("park-resnet56b", 25.9)}  # fmt: skip


def test_released_weights_are_judged_by_rounding_and_a_few_images_not_seed_noise():
    from harness.schema import Claim
    from harness.verdicts import BETTER, NOT_REPRODUCED, REPRODUCED, judge_fixed_weights

    claim = Claim(source="s", where="README", checkpoint="c", metric="test_error", value=8.27)
    assert judge_fixed_weights(claim, 8.30).outcome == REPRODUCED  # 0.005 + 3 images
    assert judge_fixed_weights(claim, 8.33).outcome == NOT_REPRODUCED  # seed noise would pass
    assert judge_fixed_weights(claim, 8.20).outcome == BETTER
    rounded = Claim(source="s", where="README", checkpoint="c", metric="test_error", value=8.3)
    assert judge_fixed_weights(rounded, 8.33).outcome == REPRODUCED  # 8.3 means 8.25..8.35


def test_a_claim_keeps_the_decimals_its_source_gave(tmp_path):
    """YAML reads 6.90 as 6.9; the source's rounding (to 0.01) must survive into the verdict
    on released weights and onto the page."""
    # three claims on one thing: each needs an id of its own (studyfile refuses them otherwise)
    claims = ("  - {id: t, source: test, where: T, experiment: a, metric: test_error, value: 6.90}\n"
              "  - {id: u, source: test, where: U, experiment: a, metric: test_error, value: 6.9}\n"
              "  - {id: v, source: test, where: V, experiment: a, metric: test_error, value: 90}\n")  # fmt: skip
    study, _, _ = make_study(tmp_path, ORDER, claims)
    two, one, whole = study.claims
    assert (two.decimals, one.decimals, whole.decimals) == (2, 1, 0)
    assert (two.stated(), one.stated(), whole.stated()) == ("6.90", "6.9", "90")
    assert type(two.value) is float  # the file's number type stays in the reader
    assert V.judge_fixed_weights(two, 6.95).outcome == V.NOT_REPRODUCED  # 0.005 + 3 images
    assert V.judge_fixed_weights(one, 6.95).outcome == V.REPRODUCED  # 6.9 means 6.85..6.95


# --------------------------------------------------------------------------- 10. under way

ON_A = "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.75}\n"


def test_no_counted_run_is_under_way_while_one_that_may_count_is_unfinished():
    claim = Claim(source="s", where="T1", experiment="a", metric="test_error", value=8.75)
    under_way = V.judge_value(claim, None, pending=2)
    assert under_way.outcome == V.UNDER_WAY
    assert under_way.reason == "2 runs under way, none counted yet"
    assert V.judge_value(claim, None).outcome == V.NOT_RUN
    assert V.on_nonofficial_data(under_way) == under_way  # not a verdict: nothing to mark
    assert V.UNDER_WAY in V.OUTCOMES and V.UNDER_WAY not in V.JUDGED


# fake_run's "running" run holds no lock, so the store reads it as interrupted (killed).
@pytest.mark.parametrize("status", ["paused", "running"])
def test_a_claim_whose_runs_have_started_is_under_way_not_yet_run(tmp_path, status):
    # The published runs, paused at 138 to 145 of 164 epochs, read "not yet run".
    study, path, results = make_study(tmp_path, ORDER, ON_A)
    fake_run(results, study, "a", status=status, official=False)
    r = row(study, path, results, "a")
    assert (r.verdict, r.n) == (V.UNDER_WAY, 0)
    assert r.reason == "1 run under way, none counted yet"
    # Where it stands, and on what data, as before: a verdict of its own does not hide it
    # (a run killed before its first summary has not said what data it trains on).
    where = {"paused": f"2/4 (paused) {V.ON_NONOFFICIAL_DATA}", "running": "2 (interrupted)"}
    assert r.progress == f"so far 12.50% at epoch {where[status]}: not counted"


@pytest.mark.parametrize("kind", ["override", "stale", "damaged", "failed"])
def test_a_run_that_can_never_count_does_not_make_a_claim_under_way(tmp_path, kind):
    study, path, results = make_study(tmp_path, ORDER, ON_A)
    if kind == "override":
        fake_run(results, study, "a", status="paused", label="smoke")
    elif kind == "stale":
        fake_run(results, study, "a", status="paused", stale=True)
    elif kind == "damaged":  # a summary of the wrong shape: listed as damaged, never counted
        run = fake_run(results, study, "a", status="paused")
        (run / "summary.json").write_text("[]")
    else:
        fake_run(results, study, "a", status="failed")
    r = row(study, path, results, "a")
    assert (r.verdict, r.reason, r.progress) == (V.NOT_RUN, "no counted run yet", "")


def test_a_run_of_a_recipe_that_trains_on_a_subset_does_not_make_a_claim_under_way(tmp_path):
    # A smoke study's recipe: its runs never count, paused or complete, with a summary or not.
    path = tiny_study(tmp_path / "v.yaml", ORDER + "claims:\n" + ON_A, name="v",
                      recipe=TINY_RECIPE + "    train_images: 500\n")  # fmt: skip
    study, results = load_study(path), tmp_path / "results"
    fake_run(results, study, "a", 0, status="running")  # no summary yet
    r = row(study, path, results, "a")
    assert (r.verdict, r.progress) == (V.NOT_RUN, "")


ORDER_AB = A_ABOVE_B.replace("b is better", "a is above b")


def test_an_ordering_is_under_way_when_every_side_without_counted_runs_has_started(tmp_path):
    study, path, results = make_study(tmp_path, ORDER, ORDER_AB)
    fake_run(results, study, "a", test_error=8.0)
    fake_run(results, study, "b", status="paused", official=False)
    r = row(study, path, results, "a, b")
    assert r.verdict == V.UNDER_WAY and r.reason == "runs under way, none counted yet, for b"
    assert r.progress.startswith("under way, not counted: b at epoch 2/4 (paused) on non-")


def test_an_ordering_with_a_side_not_started_is_not_yet_run_and_names_the_one_under_way(tmp_path):
    study, path, results = make_study(tmp_path, ORDER, ORDER_AB)
    fake_run(results, study, "a", status="paused")
    report = build([(study, str(path))], scan(results), str(results))
    (r,) = report.studies[0].orderings
    assert r.verdict == V.NOT_RUN
    assert r.reason == "no counted run yet for a, b (runs under way for a)"
    # The orderings panel: "not yet run (ResNet-20 under way)", never "under way" for a pair
    # whose other net has not started.
    (line,) = report.scoreboard.orderings
    assert (line.verdict, line.note) == (V.NOT_RUN, "ResNet-20 under way")


SPEED_ON_980 = ("  - {source: test, where: S, experiment: a, metric: sec_per_epoch, value: 90,"
                " hardware: NVIDIA GTX 980}\n")  # fmt: skip


@pytest.mark.parametrize(
    ("device", "shared", "expected"),
    [
        ("NVIDIA GeForce GTX 980", 1, V.UNDER_WAY),
        ("NVIDIA GeForce GTX 980", 2, V.NOT_RUN),  # shares its GPU: its seconds never compare
        ("NVIDIA H100 80GB HBM3", 1, V.NOT_RUN),  # another GPU: it could never be compared
    ],
)
def test_a_speed_claim_is_under_way_only_for_a_solo_run_on_its_hardware(
    tmp_path, device, shared, expected
):
    import json

    study, path, results = make_study(tmp_path, ORDER, SPEED_ON_980)
    run = fake_run(results, study, "a", status="paused", device=device)
    env = json.loads((run / "environment.json").read_text())
    (run / "environment.json").write_text(json.dumps({**env, "device_shared_by": shared}))
    assert row(study, path, results, "a").verdict == expected


# --------------------------------------------------------------------------- 11. broken figures
# A figure no run can hold honestly (NaN, infinite, an error below 0% or above 100%) is damage,
# whatever the run's status: it must never be read as a result, least of all a good one.


def _edit(run_dir, **fields) -> None:
    import json

    path = run_dir / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def _edit_epoch(run_dir, epoch: int, *, as_written: bool = False, **fields) -> None:
    """Change an epoch's fields in a hand-made run's curve: in a curve as a harness before
    2026-11-27 wrote it (no line digests, harness.epoch_digest), which only the checks on the
    summary can catch; or ``as_written`` by a harness that recorded these figures."""
    import json

    from harness import store

    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r.pop("digest", None)
        if r["epoch"] == epoch:
            r.update(fields)
    if as_written:
        store.write_jsonl(path, rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


THREE = "  - {name: a, model: resnet20, recipe: base, seeds: 3}\n"
AT_2 = ("  - {source: test, where: F4, experiment: a, metric: test_error_at_epoch, epoch: 2,"
        " value: 11.67}\n")  # fmt: skip


@pytest.mark.parametrize(
    "case",
    ["curve NaN, complete", "curve NaN, paused", "diverged best NaN", "summary -inf",
     "summary below 0%", "summary inf loss"],
)  # fmt: skip
def test_a_figure_no_run_can_hold_never_counts(tmp_path, case):
    """Each of these read as 'better than claimed' (a NaN compares as not worse, and so does
    -inf or a negative error), or as an infinite loss 'not reproduced' of a complete run."""
    metric = {"diverged best NaN": "best_test_error", "summary -inf": "test_error",
              "summary below 0%": "test_error", "summary inf loss": "final_train_loss"}  # fmt: skip
    claim = AT_2
    if case in metric:
        claim = AT_2.replace("test_error_at_epoch, epoch: 2", metric[case])
    study, path, results = make_study(tmp_path, THREE, claim)
    if case == "curve NaN, complete":
        _edit_epoch(fake_run(results, study, "a", epochs=3), 2, test_error=math.nan)
    elif case == "curve NaN, paused":
        _edit_epoch(fake_run(results, study, "a", status="paused", epochs=4), 2,
                    test_error=math.nan)  # fmt: skip
    elif case == "diverged best NaN":
        _edit(fake_run(results, study, "a", status="diverged"), best_test_error=math.nan)
    elif case == "summary -inf":
        _edit(fake_run(results, study, "a"), test_error=-math.inf)
    elif case == "summary below 0%":
        _edit(fake_run(results, study, "a"), test_error=-3.0)
    else:
        _edit(fake_run(results, study, "a"), final_train_loss=math.inf)
    report = build([(study, str(path))], scan(results), str(results))
    (r,) = report.studies[0].all_claims
    assert (r.verdict, r.n) == (V.NOT_RUN, 0), r.reason
    (run,) = report.studies[0].runs
    assert not run.counted and not run.under_way and "impossible figure" in run.why_not


def test_nan_among_three_seeds_neither_moves_a_median_nor_counts(tmp_path):
    """statistics.median sorts NaN anywhere: two NaN seeds at epoch 2 made the median NaN
    ('better than claimed'); the one good seed is what counts."""
    claim = AT_2.replace("value: 11.67}", "value: 11.67, rule: median of 3}")
    study, path, results = make_study(tmp_path, THREE, claim)
    for seed in range(3):
        run = fake_run(results, study, "a", seed, epochs=3, test_error=30.0)
        if seed < 2:
            _edit_epoch(run, 2, test_error=math.nan)
    r = row(study, path, results, "a")
    assert (r.verdict, r.n, r.reproduced_value) == (V.INCONCLUSIVE, 1, pytest.approx(35.0))
    assert any("2 runs not counted: its record holds an impossible figure" in n
               for n in r.notes), r.notes  # fmt: skip


def test_a_statistic_that_is_not_a_number_is_never_better_than_claimed():
    claim = Claim(source="test", where="T", experiment="a", metric="test_error", value=8.0)
    for value in (math.nan, -math.inf):
        repro = V.Reproduction(value, 1, value, value, None, "single")
        assert V.judge_value(claim, repro).outcome == V.INCONCLUSIVE
    # Nor an infinite loss: a diverged run counts at chance, so no run gives one.
    loss = Claim(source="test", where="T", experiment="a", metric="final_train_loss", value=0.1)
    repro = V.Reproduction(math.inf, 1, math.inf, math.inf, None, "single")
    verdict = V.judge_value(loss, repro)
    assert verdict.outcome == V.INCONCLUSIVE and "no run can give" in verdict.reason


def test_a_stated_spread_of_zero_is_refused_not_a_tolerance_of_zero(tmp_path):
    """`std: 0` made the single run's s and the claim's s both 0: a tolerance of 0.00, and one
    seed 0.05 off was 'better than claimed' on noise alone."""
    claim = "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.0, std: 0}\n"
    with pytest.raises(StudyError, match="leave `std` out") as info:
        make_study(tmp_path, THREE, claim)
    assert "claims[0].std" in str(info.value) or "std" in str(info.value)


# --------------------------------------------------------------------------- 12. speed pools

FIVE_A = "  - {name: a, model: resnet20, recipe: base, seeds: 5}\n"
SPEED_ON_H100 = ("  - {source: test, where: S, experiment: a, metric: sec_per_epoch, value: 10,"
                 " hardware: NVIDIA H100}\n")  # fmt: skip


def test_a_speed_claim_uses_runs_of_one_execution_as_every_claim_does(tmp_path):
    """Solo runs on the claim's GPU in fp32 (8.5, 8.6, 10.5 s) and bf16 (11.5, 12 s): pooled,
    the median 10.5 s was 'reproduced', a time neither precision took; the fp32 runs (the most)
    are 0.86x the claim, and the bf16 ones are kept apart, as the rules say for any claim."""
    study, path, results = make_study(tmp_path, FIVE_A, SPEED_ON_H100)
    for seed, (seconds, precision) in enumerate(
        [(8.5, "fp32"), (8.6, "fp32"), (10.5, "fp32"), (11.5, "bf16"), (12.0, "bf16")]
    ):
        fake_run(results, study, "a", seed, sec_per_epoch=seconds, precision=precision,
                 device="NVIDIA H100")  # fmt: skip
    r = row(study, path, results, "a")
    assert (r.verdict, r.n, r.reproduced_value) == (V.BETTER, 3, 8.6), r.reason
    assert r.execution == "fp32, fast pipeline" and r.data == "official release"
    assert any("2 counted runs in bf16, fast pipeline" in n and "kept apart" in n
               for n in r.notes), r.notes  # fmt: skip
    (tmp_path / "pooled").mkdir()
    pooled = make_study(tmp_path / "pooled", FIVE_A, SPEED_ON_H100.replace(
        "hardware: NVIDIA H100}", "hardware: NVIDIA H100, pool_executions: true}"))  # fmt: skip
    for seed, (seconds, precision) in enumerate(
        [(8.5, "fp32"), (8.6, "fp32"), (10.5, "fp32"), (11.5, "bf16"), (12.0, "bf16")]
    ):
        fake_run(pooled[2], pooled[0], "a", seed, sec_per_epoch=seconds, precision=precision,
                 device="NVIDIA H100")  # fmt: skip
    assert row(*pooled, "a").verdict == V.REPRODUCED  # asked for: pooled, and the row says so


def test_a_speed_claim_prefers_runs_on_the_official_data_and_marks_a_copy(tmp_path):
    study, path, results = make_study(tmp_path, FIVE_A, SPEED_ON_H100)
    fake_run(results, study, "a", 0, sec_per_epoch=10.0, official=False, device="NVIDIA H100")
    r = row(study, path, results, "a")
    assert r.verdict == f"{V.REPRODUCED} {V.ON_NONOFFICIAL_DATA}", r.verdict
    assert r.data.startswith("not the official release")
    fake_run(results, study, "a", 1, sec_per_epoch=14.0, device="NVIDIA H100")
    fake_run(results, study, "a", 2, sec_per_epoch=10.1, official=False, device="NVIDIA H100")
    r = row(study, path, results, "a")
    assert (r.verdict, r.n, r.data) == (V.NOT_REPRODUCED, 1, "official release"), r.reason


def test_runs_that_say_official_data_but_differ_in_fingerprint_never_pool(tmp_path):
    """The official release is one set of arrays, so one fingerprint: runs that both say
    'official' but name two are not the same data, whatever the flag says. Pooled, the mean of
    three was 'reproduced' over two data sets."""
    claim = "  - {source: test, where: T, experiment: a, metric: test_error, value: 8.0, rule: mean of 3}\n"
    study, path, results = make_study(tmp_path, THREE, claim)
    for seed, (err, fingerprint) in enumerate([(8.0, "a"), (8.1, "b"), (7.9, "a")]):
        fake_run(results, study, "a", seed, test_error=err, fingerprint=fingerprint * 64)
    r = row(study, path, results, "a")
    assert (r.verdict, r.n) == (V.INCONCLUSIVE, 2), r.reason
    assert any("official release (data bbbbbbbbbbbb)" in n and "kept apart" in n
               for n in r.notes), r.notes  # fmt: skip


def test_a_session_records_the_data_it_trained_on():
    """A run paused on the JPEG copy and resumed where the official release is (a store
    carried between machines by export and import) kept only its last session's data in its
    summary: nothing said that most of its epochs saw the copy."""
    from harness.train import session_record

    data = {"official": False, "dataset_fingerprint": "c" * 64, "path": "/copy"}
    record = session_record({"time": "t", "hostname": "h", "device_name": "d", "command": "c"},
                            0, data)  # fmt: skip
    assert (record["official"], record["dataset_fingerprint"]) == (False, "c" * 64)


def test_a_run_resumed_on_other_data_is_judged_as_not_the_official_release(tmp_path):
    import json

    study, path, results = make_study(tmp_path, THREE, ON_A)
    run = fake_run(results, study, "a", test_error=8.0)  # its summary: the official release
    summary = json.loads((run / "summary.json").read_text())
    (first,) = summary["sessions"]
    summary["sessions"] = [{**first, "official": False, "dataset_fingerprint": "c" * 64},
                           {**first, "from_epoch": 2, "official": True,
                            "dataset_fingerprint": "f" * 64}]  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    report = build([(study, str(path))], scan(results), str(results))
    (r,) = report.studies[0].all_claims
    assert r.verdict == f"{V.REPRODUCED} {V.ON_NONOFFICIAL_DATA}", r.verdict
    assert r.data.startswith("mixed data") and "cccccccccccc" in r.data, r.data
    (view,) = report.studies[0].runs
    assert view.official_data is False
    # Sessions that agree (or record no data, as before they did) change nothing.
    summary["sessions"][0].update(official=True, dataset_fingerprint="f" * 64)
    (run / "summary.json").write_text(json.dumps(summary))
    assert row(study, path, results, "a").verdict == V.REPRODUCED


ON_A = "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.0}\n"


@pytest.mark.parametrize("error", [-2.0, 180.0])
def test_an_evaluation_with_an_impossible_test_error_never_counts(tmp_path, error):
    """A released checkpoint's test error below 0% read as 'better than claimed'."""
    from fake_runs import fake_evaluation

    from harness.results import scan_evaluations

    checkpoints = ROOT / "studies" / "checkpoints.yaml"
    study = load_study(checkpoints)
    results = tmp_path / "results"
    fake_evaluation(results, study, "akamaster-resnet20", test_error=error)
    report = build([(study, str(checkpoints))], scan(results), str(results),
                   scan_evaluations(results))  # fmt: skip
    (r,) = [c for c in report.studies[0].checkpoint_claims
            if c.experiment == "akamaster-resnet20" and c.metric == "test error"]  # fmt: skip
    assert r.verdict == V.NOT_RUN, r.reason
    assert any("not counted: its record has no test error in 0..100%" in n for n in r.notes)


@pytest.mark.parametrize("data", [None, {"path": "/data"}, {"official": None}])
def test_a_run_that_does_not_say_it_trained_on_the_official_release_is_never_judged_so(
    tmp_path, data
):
    """Already so before the audit, and tested nowhere: no data record, or one without its
    `official` flag, is not the official release: its verdict is marked."""
    claim = ON_A.replace("value: 8.0}", "value: 8.0, rule: median of 3}")
    study, path, results = make_study(tmp_path, THREE, claim)
    for seed in range(3):
        _edit(fake_run(results, study, "a", seed, test_error=8.0), data=data)
    r = row(study, path, results, "a")
    assert (r.verdict, r.n) == (f"{V.REPRODUCED} {V.ON_NONOFFICIAL_DATA}", 3), r.verdict
    assert r.data == "not the official release (data not recorded)", r.data


@pytest.mark.parametrize(
    ("case", "claim", "wrong"),
    [
        ("summary edited", ON_A, "summary test_error 8, curve 12"),
        ("curve edited", ON_A, "summary test_error 8, curve 12"),
        ("figure taken out", ON_A, "no test_error in the summary, 12 in the curve"),
        ("seconds edited", SPEED_ON_H100.replace("value: 10", "value: 8"),
         "summary sec_per_epoch 8, curve 12"),
    ],
)  # fmt: skip
def test_a_summary_its_curves_contradict_never_counts(tmp_path, case, claim, wrong):
    """Verdicts read a run's summary, the figures draw its curve: a summary edited to 8% over
    a curve that ends at 12% was 'reproduced' at 8%, as was a curve edited after the summary
    was written. A test error taken out of a complete run's summary dropped that seed from
    the verdict unnoticed (the next seed took its place in a median), the run still counted."""
    study, path, results = make_study(tmp_path, FIVE_A, claim)
    if case == "seconds edited":
        _edit(fake_run(results, study, "a", epochs=3, sec_per_epoch=12.0, device="NVIDIA H100"),
              sec_per_epoch=8.0)  # fmt: skip
    elif case == "curve edited":
        _edit_epoch(fake_run(results, study, "a", epochs=3, test_error=8.0), 3, test_error=12.0)
    else:
        run = fake_run(results, study, "a", epochs=3, test_error=12.0)
        _edit(run, test_error=8.0 if case == "summary edited" else None)
    report = build([(study, str(path))], scan(results), str(results))
    (r,) = report.studies[0].all_claims
    assert (r.verdict, r.n) == (V.NOT_RUN, 0), r.reason
    (run,) = report.studies[0].runs
    assert not run.counted and not run.under_way
    assert run.why_not.startswith("damaged: its summary disagrees with its curves"), run.why_not
    assert wrong in run.why_not, run.why_not
    # A run whose summary and curves agree still counts: the check reads what training wrote.
    (tmp_path / "sound").mkdir()
    sound = make_study(tmp_path / "sound", FIVE_A, claim)
    fake_run(sound[2], sound[0], "a", epochs=3, test_error=8.0, sec_per_epoch=8.0,
             device="NVIDIA H100")  # fmt: skip
    assert row(*sound, "a").verdict == V.REPRODUCED


def _hand_edit_epoch(run_dir, epoch: int, **fields) -> None:
    """Change an epoch's fields in the curve with a text editor: the line keeps its digest."""
    import json

    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, **fields} if r["epoch"] == epoch else r) + "\n"
                            for r in rows))  # fmt: skip


def test_a_curve_edited_in_the_middle_never_counts_at_that_epoch_or_any(tmp_path):
    """A claim read from the middle of a curve (the test error after epoch 2 of 3) took an
    edited line as the run's: the summary speaks only of the end and the best epoch, which
    still agreed, so 11.67% 'reproduced' the claim. The line's digest says it is not what
    training wrote."""
    study, path, results = make_study(tmp_path, THREE, AT_2)
    run = fake_run(results, study, "a", epochs=3, test_error=8.0)  # 9.33% at epoch 2
    _hand_edit_epoch(run, 2, test_error=11.67)
    report = build([(study, str(path))], scan(results), str(results))
    (r,) = report.studies[0].all_claims
    assert (r.verdict, r.n) == (V.NOT_RUN, 0), r.reason
    (view,) = report.studies[0].runs
    assert not view.counted and not view.counted_at_epochs and not view.under_way
    assert view.why_not == (f"damaged: {run / 'metrics.jsonl'}: line 2 (epoch 2): its figures "
                            "are not those training wrote on it (its digest does not match "
                            "them): edited or damaged since")  # fmt: skip
    # The same figure as training would have written it counts.
    _edit_epoch(run, 2, test_error=11.67, as_written=True)
    assert row(study, path, results, "a").verdict == V.REPRODUCED


def _without_last_epoch(run_dir) -> None:
    path = run_dir / "metrics.jsonl"
    path.write_text("".join(path.read_text().splitlines(True)[:-1]))


def _interrupted(run_dir, **fields) -> None:
    """A paused hand-made run's summary made an interrupted one, as training writes it."""
    _edit(run_dir, status="interrupted", paused=None, **fields)


AT_1 = AT_2.replace("epoch: 2,", "epoch: 1,")
# What is done to a hand-made run paused after 2 of 4 epochs (a claim on the test error after
# epoch 1 counts it), and what the report then says of it: damaged, saying why; or nothing (a
# summary training writes so), and it still counts at epoch 1.
UNFINISHED = {
    "paused, summary edited": (lambda run: _edit(run, test_error=8.0),
                               "its summary disagrees with its curves or its recipe (summary "
                               "test_error 8, curve 62.5)"),
    "paused, best edited": (lambda run: _edit(run, best_test_error=8.0),
                            "summary best_test_error 8, curve 62.5"),
    "paused, curve edited (no digests)": (lambda run: _edit_epoch(run, 2, test_error=40.0),
                                          "summary test_error 62.5, curve 40"),
    "paused, curve short of the summary": (
        _without_last_epoch, "metrics.jsonl: holds 1 epochs (1..1), not the 2 its summary says"),
    "interrupted, summary edited": (lambda run: _interrupted(run, final_train_loss=0.01),
                                    "summary final_train_loss 0.01, curve 0.75"),
    "interrupted, two epochs short": (
        lambda run: (_interrupted(run, epochs_done=3), _without_last_epoch(run)),
        "metrics.jsonl: holds 1 epochs, where its summary says interrupted after 3"),
    # As training writes them: stopped between an epoch's checkpoint and its line (the
    # summary an epoch ahead), and that summary marked interrupted again after a SIGKILL.
    "interrupted an epoch ahead": (lambda run: (_interrupted(run), _without_last_epoch(run)),
                                   None),
    "interrupted, marked after": (
        lambda run: (_interrupted(run, epochs_done=1, stop_reason="SIGKILL"),
                     _without_last_epoch(run)), None),
}  # fmt: skip


@pytest.mark.parametrize("case", UNFINISHED)
def test_an_unfinished_run_whose_summary_its_curve_contradicts_never_counts(tmp_path, case):
    """A paused or interrupted run counts at the epochs it has (a claim on one epoch) and the
    run table shows its summary's test error and epochs: neither was checked against the
    curve, so an edited summary or a curve cut back counted at epoch 1 as they read."""
    study, path, results = make_study(tmp_path, THREE, AT_1)
    run = fake_run(results, study, "a", status="paused", epochs=4, test_error=50.0)
    spoil, says = UNFINISHED[case]
    spoil(run)
    report = build([(study, str(path))], scan(results), str(results))
    (view,) = report.studies[0].runs
    (r,) = report.studies[0].all_claims
    if says is None:
        assert view.under_way and view.counted_at_epochs == (1,), view.why_not
        assert r.n == 1, r.reason
    else:
        assert not view.under_way and not view.counted_at_epochs, view
        assert view.why_not.startswith("damaged: ") and says in view.why_not, view.why_not
        assert r.n == 0, r.reason


@pytest.mark.parametrize("written_by", ["today's harness", "a harness before 2026-11-27"])
def test_a_run_moved_between_devices_counts_whichever_harness_wrote_its_summary(
    tmp_path, written_by
):
    """A run resumed on another GPU: its summary gives the latest device's seconds per epoch,
    and before 2026-11-27 the median over both devices' (the published degradation-20 runs,
    H100 then H200). Either is what its curve says under the rule that wrote it: neither may
    read as a summary its curve contradicts."""
    study, path, results = make_study(tmp_path, FIVE_A, ON_A)
    run = fake_run(results, study, "a", epochs=3, test_error=8.0, sec_per_epoch=4.0)
    # epochs 1-2 on an H100 (the first compiles), epoch 3 alone in a session on an H200
    _edit_epoch(run, 1, device="NVIDIA H100", as_written=True)
    _edit_epoch(run, 2, device="NVIDIA H100", first_of_session=False, as_written=True)
    _edit_epoch(run, 3, device="NVIDIA H200", first_of_session=True, train_seconds=3.0,
                as_written=True)  # fmt: skip
    if written_by == "today's harness":
        _edit(run, sec_per_epoch=3.0, sec_per_epoch_device="NVIDIA H200")
    report = build([(study, str(path))], scan(results), str(results))
    (counted,) = report.studies[0].runs
    assert counted.counted, counted.why_not
    assert row(study, path, results, "a").verdict == V.REPRODUCED
    # and its figure is still checked: the other rule's figure is a contradiction
    _edit(run, sec_per_epoch=4.0 if written_by == "today's harness" else 3.0)
    (edited,) = build([(study, str(path))], scan(results), str(results)).studies[0].runs
    assert not edited.counted and "sec_per_epoch" in edited.why_not, edited.why_not


def test_a_run_complete_after_fewer_epochs_than_its_recipe_never_counts(tmp_path):
    """A summary that says complete after 1 epoch of a 3-epoch recipe (and a curve of that one
    epoch) agreed with itself, so the run counted: its 8% 'reproduced' a claim on the full
    schedule. The config hash says the recipe is the study's, so its length is known."""
    study, path, results = make_study(tmp_path, FIVE_A, ON_A)
    fake_run(results, study, "a", epochs=1, test_error=8.0)
    report = build([(study, str(path))], scan(results), str(results))
    (r,) = report.studies[0].all_claims
    assert (r.verdict, r.n) == (V.NOT_RUN, 0), r.reason
    (run,) = report.studies[0].runs
    assert not run.counted and run.why_not.startswith("damaged:"), run.why_not
    assert "complete after 1 epoch, where its recipe trains 3" in run.why_not, run.why_not
    fake_run(results, study, "a", 1, epochs=3, test_error=8.0)  # the recipe's length: counts
    assert (row(study, path, results, "a").verdict, row(study, path, results, "a").n) == (
        V.REPRODUCED, 1)  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"wrong": 1897, "images": 10000}, "its test error 8.27% is not its 1,897 wrong of 10,000"),
        ({"wrong": 827, "images": 10000, "data": {"official": True, "test_images": 10000,
          "dataset_fingerprint": "0" * 64}}, ""),  # agrees: counts
        ({"images": 5000}, "evaluated on 5,000 images, where the official release"),
    ],
)  # fmt: skip
def test_an_evaluation_whose_test_error_is_not_its_count_never_counts(tmp_path, fields, says):
    """An evaluation records the images it got wrong and its test error from them: one whose
    test error was edited to the claimed 8.27% over 1,897 wrong of 10,000 (18.97%, the JPEG
    copy's figure) was 'reproduced', and so was one over half the test set."""
    import json

    from fake_runs import fake_evaluation

    from harness.results import scan_evaluations

    checkpoints = ROOT / "studies" / "checkpoints.yaml"
    study = load_study(checkpoints)
    results = tmp_path / "results"
    record = fake_evaluation(results, study, "akamaster-resnet20", test_error=8.27)
    path = record / "evaluation.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    report = build([(study, str(checkpoints))], scan(results), str(results),
                   scan_evaluations(results))  # fmt: skip
    (r,) = [c for c in report.studies[0].checkpoint_claims
            if c.experiment == "akamaster-resnet20" and c.metric == "test error"]  # fmt: skip
    if not says:
        assert r.verdict == V.REPRODUCED, r.reason
        return
    assert r.verdict == V.NOT_RUN, r.reason
    assert any("1 evaluation not counted: damaged: " in n and says in n for n in r.notes), r.notes
