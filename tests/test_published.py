"""Published and carried results stay valid: every run committed under results/published/ and
results/slots/ still has the config hash its study gives it today. A schema change that
alters hashes (a new recipe field, a renamed default) would otherwise silently make the next
slot supersede and retrain them from scratch."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass

import pytest
from conftest import ROOT

from harness import store
from harness.claimtable import claim_id
from harness.plan import plan
from harness.results import scan
from harness.studyfile import load_study
from harness.transfer import import_archive

STUDIES = {load_study(p).name: p for p in sorted((ROOT / "studies").glob("*.yaml"))}


def _published() -> list[tuple[str, str, str]]:
    runs = []
    for config in sorted((ROOT / "results" / "published").glob("*/store/*/*/seed-*/config.json")):
        study, experiment, seed = config.parts[-4:-1]
        runs.append((f"{study}/{experiment}/{seed}", json.loads(config.read_text())["hash"],
                     str(config.relative_to(ROOT))))  # fmt: skip
    for archive in sorted((ROOT / "results" / "slots").glob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())
        runs += [(r["path"], r["config_hash"], archive.name) for r in manifest["runs"]]
    return runs


@pytest.mark.parametrize(("run", "digest", "where"), _published())
def test_a_committed_run_still_has_its_study_s_config_hash(run, digest, where):
    study, experiment, seed_dir = run.split("/")
    planned = {p.name: p.hash for p in plan(load_study(STUDIES[study]))}
    name = f"{experiment}/{seed_dir}"
    if "~" in seed_dir:
        pytest.skip("override runs are planned with their overrides")
    assert name in planned, f"{where}: {run} is no longer planned by its study"
    assert planned[name] == digest, (
        f"{where}: {run} was made with config {digest}, its study now plans {planned[name]}; "
        "a change to the schema or the study moved the hash (see harness/plan.py)"
    )


# Runs recorded before harness.placement judged where a run lies: each must still read where
# it lies (a published run read as misplaced would stop counting, an imported slot be refused).
@pytest.mark.parametrize("where", sorted((ROOT / "results" / "published").glob("*/store")),
                         ids=lambda p: p.parent.name)  # fmt: skip
def test_no_published_run_reads_as_misplaced(where):
    assert [r.name for r in scan(where) if r.status == store.MISPLACED] == []


@pytest.mark.parametrize("archive", sorted((ROOT / "results" / "slots").glob("*.tar.gz")),
                         ids=lambda p: p.name)  # fmt: skip
def test_a_slot_archive_imports_with_no_run_misplaced(archive, tmp_path):
    merged = import_archive(archive, tmp_path / "results")
    assert merged.refused == [] and merged.added
    assert [r.name for r in scan(tmp_path / "results") if r.status == store.MISPLACED] == []


# --- The shipped studies' claims say what their sources print. ---------------------------
# Every claim of a published source is pinned here to the passage it stands on, copied from
# the source: the documents in ../shared/seeds/ (checked against the files where that folder
# is present), ../shared/claims.md, and the three papers and the README that we do not hold
# (copied from He et al. 2015 as printed at CVPR 2016, He et al. 2016 in the version with the
# batch-64 ResNet-1001 row, Zagoruyko & Komodakis' arXiv v4, whose Tables 5 and 6 these are,
# and akamaster's README at 820f98c). A claim's `where`, figure, spread and an ordering's
# statement must be the pinned ones, the figure as the source printed it must stand in the
# passage, and every word an ordering's statement gives as the source's (all of it without `"`
# marks, else what the marks enclose; `...` marks a cut) must stand in the passage. Audit of 2026-11-27: He et al. 2016's
# parameter counts and ResNet-1001's mean were cited to Table 3, which has neither (Table 4
# does); Zagoruyko & Komodakis' tables were "Table (CIFAR-10)"; four statements the report
# prints in quotation marks were never the source's words ("ResNets ... enjoy accuracy gains
# when the depth increases", "the deeper plain net has higher test error", ...).


@dataclass(frozen=True)
class Said:
    where: str
    passage: str
    value: float | None = None  # a value claim's figure, as the study holds it
    printed: str | None = None  # ... and as the source prints it: it stands in the passage
    std: float | None = None
    statement: str | None = None  # an ordering's
    document: str | None = None  # under ../shared: the file the passage is checked against


def _v(where, value, printed, passage, std=None, document=None):
    return Said(where, passage, value=value, printed=printed, std=std, document=document)


def _o(where, statement, passage):
    return Said(where, passage, statement=statement)


_PARK = {
    "resnet20": "ResNet20 (OptionA) 20(optionA) 0.27M (269,722-OptionA) 0.279 = 27.9% (90.pth)",
    "resnet56": "ResNet56 (OptionA) 56(optionA) 0.85M (853,018-OptionA) 0.285 = 28.5% (90.pth)",
    "resnet56b": "ResNet56 (OptionB) 56 + 2 0.85M (855,770-OptionB) 0.259 = 25.9% (90.pth)",
    "plain20": "plain20 20 0.27M (269,722) 0.325",
    "plain56": "plain56 56 0.85M (853,018) 0.326",
}
_PARK_ERRORS = {"resnet20": 27.9, "resnet56": 28.5, "resnet56b": 25.9, "plain20": 32.5,
                "plain56": 32.6}  # fmt: skip
_PARK_PRINTED = {"resnet20": "27.9%", "resnet56": "28.5%", "resnet56b": "25.9%",
                 "plain20": "0.325", "plain56": "0.326"}  # fmt: skip
_PARK_PARAMS = {"resnet20": 269722, "resnet56": 853018, "resnet56b": 855770, "plain20": 269722,
                "plain56": 853018}  # fmt: skip
_PARK_OPTION_B = ("I implemented both resnet56 with OptionA residual mapping and OptionB and "
                  "compare their training loss and test error. Like the original paper said, "
                  "the performance of OptionB is slightly better than OptionA. (see figure 7)")  # fmt: skip


def _park(study: str, nets: tuple[str, ...]) -> dict[tuple[str, str], Said]:
    said = {}
    for net in nets:
        said[(study, f"park:park-{net}:test_error:single-1")] = _v(
            "Figure 4", _PARK_ERRORS[net], _PARK_PRINTED[net], _PARK[net]
        )
        said[(study, f"park:park-{net}:params:single-1")] = _v(
            "Figure 4", _PARK_PARAMS[net], f"{_PARK_PARAMS[net]:,}", _PARK[net]
        )
        if net.startswith("resnet"):
            said[(study, f"park:park-{net}:test_error_at_epoch@90:single-1")] = _v(
                'Figure 4 ("90.pth")', _PARK_ERRORS[net], _PARK_PRINTED[net], _PARK[net]
            )
    return said  # fmt: skip


_TSENG_TABLE = ("Models Layers Final test error (%) ResNet 20 8.51 56 6.20 110 5.68 Vanilla CNN "
                "20 9.66 56 15.05 110 90.00")  # fmt: skip
_TSENG_31 = ("As the layer increased, ResNet's final test error drops from 8.51, 6.20, to 5.68. "
             "However, vanilla CNN's final test error increased in 20 and 56 layers. The vanilla "
             "CNN 110 layers model did not learn from training, thus the testing error did not "
             "decrease.")  # fmt: skip
_TSENG_32 = ("As the layer increased, the training loss of ResNet shifting downward and the "
             "vanilla CNN shifting upward.")  # fmt: skip
_TSENG_4 = "As the layer increasing, ResNet outperforms plain CNN."
_HE15_PLAIN = ("Fig. 6 (left) shows the behaviors of the plain nets. The deep plain nets suffer "
               "from increased depth, and exhibit higher training error when going deeper.")  # fmt: skip
_HE15_FIG6 = ("Figure 6. Training on CIFAR-10. Dashed lines denote training error, and bold "
              "lines denote testing error. Left: plain networks.")  # fmt: skip
_HE15_RESNETS = ("Fig. 6 (middle) shows the behaviors of ResNets. Also similar to the ImageNet "
                 "cases (Fig. 4, right), our ResNets manage to overcome the optimization "
                 "difficulty and demonstrate accuracy gains when the depth increases.")  # fmt: skip
_HE15_TABLE6 = ("ResNet 20 0.27M 8.75 ResNet 32 0.46M 7.51 ResNet 44 0.66M 7.17 ResNet 56 0.85M "
                "6.97 ResNet 110 1.7M 6.43 (6.61±0.16) ResNet 1202 19.4M 7.93 ... For "
                "ResNet-110, we run it 5 times and show \"best (mean±std)\" as in [43].")  # fmt: skip
_HE16_TABLE3 = ("Table 3. Classification error (%) on the CIFAR-10/100 test set using the "
                "original Residual Units and our pre-activation Residual Units. ... CIFAR-10 "
                "ResNet-110 6.61 6.37 ResNet-164 5.93 5.46 ResNet-1001 7.61 4.92 ... Throughout "
                "this paper we report the median accuracy of 5 runs for each architecture on "
                "CIFAR")  # fmt: skip
_HE16_TABLE4 = ("Our results are the median of 5 runs with mean±std in the brackets. ... "
                "ResNet-110 [1] (1.7M) 6.61 ResNet-1202 [1] (19.4M) 7.93 ResNet-164 [ours] "
                "(1.7M) 5.46 ResNet-1001 [ours] (10.2M) 4.92 (4.89±0.14)")  # fmt: skip
_HE16_BETTER = ("Table 3 shows that our \"pre-activation\" models are consistently better than "
                "the baseline counterparts.")  # fmt: skip
_WRN_TABLE5 = ("WRN (ours) 40-4 8.9M 4.53 16-8 11.0M 4.27 28-10 36.5M 4.00 ... Our results were "
               "obtained by computing median over 5 runs.")  # fmt: skip
_WRN_TABLE6 = ("depth k dropout CIFAR-10: 16 4 - 5.02; 16 4 yes 5.24; 28 10 - 4.00; 28 10 yes "
               "3.89 ... Table 6: Effect of dropout in residual block. (mean/std preprocessing, "
               "CIFAR numbers are based on median of 5 runs)")  # fmt: skip
_WRN_DROPOUT = ("Dropout decreases test error on CIFAR-10 and CIFAR-100 by 0.11% and 0.4% [...] "
                "(over median of 5 runs and mean/std preprocessing) with WRN-28-10, and gives "
                "improvements with other ResNets as well (table 6). ... There is only a slight "
                "drop in accuracy with WRN-16-4 on CIFAR-10 which we speculate is due to the "
                "relatively small number of parameters.")  # fmt: skip
_MK_RESULTS = {"preresnet110": "| ResNet-110 | 6.37 | 6.38 |",
               "preresnet164": "| ResNet-164 | 5.46 | 5.66 |",
               "wrn-16-4-dropout": "| WResNet-n2-k4 | 5.55 | 5.41 |"}  # fmt: skip
_MK_SPEED = {"preresnet110": "| ResNet-110 | 1.7M | 90 |",
             "preresnet164": "| ResNet-164 | 1.7M | 183 |",
             "wrn-16-4-dropout": "| WResNet-n2-k4 | 2.7M | 113 |"}  # fmt: skip
_MK_ERRORS = {"preresnet110": 6.38, "preresnet164": 5.66, "wrn-16-4-dropout": 5.41}
_MK_PARAMS = {"preresnet110": 1.7e6, "preresnet164": 1.7e6, "wrn-16-4-dropout": 2.7e6}
_MK_SECONDS = {"preresnet110": 90, "preresnet164": 183, "wrn-16-4-dropout": 113}
_GTX = "hardware=NVIDIA GTX 980, Theano/Lasagne, batch 64"
_AKAMASTER = {20: "ResNet20 | 20 | 0.27M | 8.75%| **8.27%**",
              32: "ResNet32 | 32 | 0.46M | 7.51%| **7.37%**",
              44: "ResNet44 | 44 | 0.66M | 7.17%| **6.90%**",
              56: "ResNet56 | 56 | 0.85M | 6.97%| **6.61%**"}  # fmt: skip

SAID: dict[tuple[str, str], Said] = {
    **{("checkpoints", f"akamaster:checkpoint/akamaster-resnet{d}:test_error:single-1"):
       _v("README.md, models table", error, f"**{error:.2f}%**", _AKAMASTER[d])
       for d, error in ((20, 8.27), (32, 7.37), (44, 6.90), (56, 6.61))},
    **{("checkpoints", f"akamaster:checkpoint/akamaster-resnet{d}:params:single-1"):
       _v("README.md, models table", count, f"{count / 1e6:.2f}M", _AKAMASTER[d])
       for d, count in ((20, 0.27e6), (32, 0.46e6), (44, 0.66e6), (56, 0.85e6))},
    **{("degradation", f"tseng2018:tseng-{net}:test_error:single-1"):
       _v("Table 1", error, printed, _TSENG_TABLE)
       for net, error, printed in (("resnet20", 8.51, "8.51"), ("resnet56", 6.20, "6.20"),
                                   ("resnet110", 5.68, "5.68"), ("plain20", 9.66, "9.66"),
                                   ("plain56", 15.05, "15.05"), ("plain110", 90.0, "90.00"))},
    ("degradation", "tseng2018:tseng-resnet110<tseng-resnet56<tseng-resnet20:test_error"): _o(
        "Section 3.1",
        "As the layer increased, ResNet's final test error drops from 8.51, 6.20, to 5.68.",
        _TSENG_31),
    ("degradation", "tseng2018:tseng-plain20<tseng-plain56<tseng-plain110:test_error"): _o(
        "Section 3.1",
        "\"vanilla CNN's final test error increased in 20 and 56 layers. The vanilla CNN 110 "
        'layers model did not learn from training"',
        _TSENG_31,
    ),
    ("degradation", "tseng2018:tseng-resnet110<tseng-resnet56<tseng-resnet20:final_train_loss"):
        _o("Section 3.2, Figure 5",
           "As the layer increased, the training loss of ResNet shifting downward", _TSENG_32),
    ("degradation", "tseng2018:tseng-plain20<tseng-plain56<tseng-plain110:final_train_loss"):
        _o("Section 3.2, Figure 5", "and the vanilla CNN shifting upward", _TSENG_32),
    ("degradation", "tseng2018:tseng-resnet56<tseng-plain56:test_error"): _o(
        "Section 4", '"As the layer increasing, ResNet outperforms plain CNN", at 56 layers',
        _TSENG_4),
    ("degradation", "tseng2018:tseng-resnet110<tseng-plain110:test_error"): _o(
        "Section 4", '"As the layer increasing, ResNet outperforms plain CNN", at 110 layers',
        _TSENG_4),
    **_park("degradation", ("resnet20", "resnet56", "plain20", "plain56")),
    ("degradation", "park:park-plain20<park-plain56:final_train_loss"): _o(
        "Section 3.2, Figure 5",
        "the training loss of plain 56-layer net is bigger than the one of plain 20-layer net",
        "In figure5, the training loss of plain 56-layer net is bigger than the one of plain "
        "20-layer net."),
    ("degradation", "park:park-resnet56<park-resnet20:final_train_loss"): _o(
        "Section 3.2, Figure 6",
        "the training loss of residual 56-layer net is smaller than the one of residual 20-layer "
        "net",
        "However, in figure6, the training loss of residual 56-layer net is smaller than the one "
        "of residual 20-layer net."),
    ("degradation", "park:park-resnet56<park-plain56:final_train_loss"): _o(
        "Abstract; Figures 5 and 6",
        '"unlike the plain 56-layer net, the training loss of the ResNet56 model decreases '
        'consistently during training"',
        "found that, unlike the plain 56-layer net, the training loss of the ResNet56 model "
        "decreases consistently during training, indicating"),
    ("degradation", "he2015:he-plain20<he-plain56:final_train_error"): _o(
        "Section 4.2, Figure 6 (left)",
        "The deep plain nets suffer from increased depth, and exhibit higher training error when "
        "going deeper", _HE15_PLAIN),
    ("degradation", "he2015:he-plain20<he-plain56:test_error"): _o(
        "Figure 6 (left)",
        'the figure, where "bold lines denote testing error": plain-56 ends above plain-20',
        _HE15_FIG6),
    ("degradation", "he2015:he-resnet56<he-resnet20:final_train_error"): _o(
        "Figure 6 (middle)",
        "ResNets ... overcome the optimization difficulty ... when the depth increases",
        _HE15_RESNETS),
    ("degradation", "he2015:he-resnet56<he-resnet20:test_error"): _o(
        "Figure 6 (middle), Table 6",
        "ResNets ... demonstrate accuracy gains when the depth increases", _HE15_RESNETS),
    **{("he2015_table6", f"he2015:he-resnet{d}:test_error:single-1"):
       _v("Table 6", error, f"{error:.2f}", _HE15_TABLE6)
       for d, error in ((20, 8.75), (32, 7.51), (44, 7.17), (56, 6.97), (1202, 7.93))},
    ("he2015_table6", "he2015:he-resnet110:test_error:best-5"): _v(
        "Table 6", 6.43, "6.43 (6.61±0.16)", _HE15_TABLE6),
    ("he2015_table6", "he2015:he-resnet110:test_error:mean-5"): _v(
        "Table 6", 6.61, "6.43 (6.61±0.16)", _HE15_TABLE6, std=0.16),
    **{("he2015_table6", f"he2015:he-resnet{d}:params:single-1"):
       _v("Table 6", count, printed, _HE15_TABLE6)
       for d, count, printed in ((20, 0.27e6, "0.27M"), (32, 0.46e6, "0.46M"),
                                 (44, 0.66e6, "0.66M"), (56, 0.85e6, "0.85M"),
                                 (110, 1.7e6, "1.7M"), (1202, 19.4e6, "19.4M"))},
    ("he2015_table6", "he2015:he-resnet110<he-resnet56<he-resnet44<he-resnet32<he-resnet20:"
                      "test_error"): _o(
        "Section 4.2, Table 6", "ResNets ... demonstrate accuracy gains when the depth increases",
        _HE15_RESNETS),
    ("he2015_table6", "he2015:he-resnet110<he-resnet1202:test_error"): _o(
        'Section 4.2, "Exploring Over 1000 layers"',
        "The testing result of this 1202-layer network is worse than that of our 110-layer "
        "network",
        "But there are still open problems on such aggressively deep models. The testing result "
        "of this 1202-layer network is worse than that of our 110-layer network, although both "
        "have similar training error."),
    **{("preact_wide", f"muellerklein:{prefix}{net}:test_error:single-1"):
       _v("Results table", _MK_ERRORS[net], f"{_MK_ERRORS[net]:.2f}", _MK_RESULTS[net])
       for net in _MK_ERRORS for prefix in ("mk-", "mk-code-")},
    ("preact_wide", "muellerklein:zk-wrn-16-4-dropout:test_error:single-1"): _v(
        'Results table, "Original Paper" column', 5.55, "5.55", _MK_RESULTS["wrn-16-4-dropout"]),
    **{("preact_wide", f"muellerklein:mk-{net}:params:single-1"):
       _v("Speed table", _MK_PARAMS[net], f"{_MK_PARAMS[net] / 1e6:.1f}M", _MK_SPEED[net])
       for net in _MK_PARAMS},
    **{("preact_wide", f"muellerklein:mk-{net}:sec_per_epoch:single-1:{_GTX}"):
       _v("Speed table", _MK_SECONDS[net], f"| {_MK_SECONDS[net]} |", _MK_SPEED[net])
       for net in _MK_SECONDS},
    ("preact_wide", "muellerklein:mk-preresnet110<mk-wrn-16-4-dropout<mk-preresnet164:"
                    "sec_per_epoch"): _o(
        "Speed table",
        'the speed table, "Sec/Epoch": ResNet-110 90, WResNet-n2-k4 113, ResNet-164 183 (GTX 980)',
        "| ResNet Type | Params | Sec/Epoch |"),
    **{("preact_wide", f"he2016:he2016-{net}:test_error:median-5"):
       _v("Table 3", error, f"{error:.2f}", _HE16_TABLE3)
       for net, error in (("resnet110", 6.61), ("preresnet110", 6.37), ("resnet164", 5.93),
                          ("preresnet164", 5.46), ("resnet1001", 7.61), ("preresnet1001", 4.92))},
    ("preact_wide", "he2016:he2016-preresnet1001:test_error:mean-5"): _v(
        "Table 4", 4.89, "4.92 (4.89±0.14)", _HE16_TABLE4, std=0.14),
    ("preact_wide", "he2016:he2016-resnet110:params:single-1"): _v(
        "Table 4", 1.7e6, "ResNet-110 [1] (1.7M)", _HE16_TABLE4),
    ("preact_wide", "he2016:he2016-preresnet164:params:single-1"): _v(
        "Table 4", 1.7e6, "ResNet-164 [ours] (1.7M)", _HE16_TABLE4),
    ("preact_wide", "he2016:he2016-preresnet1001:params:single-1"): _v(
        "Table 4", 10.2e6, "ResNet-1001 [ours] (10.2M)", _HE16_TABLE4),
    **{("preact_wide", f"he2016:he2016-preresnet{d}<he2016-resnet{d}:test_error"): _o(
        "Table 3",
        f"\"our \u2018pre-activation\u2019 models are consistently better than the baseline "
        f"counterparts\", at {d} layers", _HE16_BETTER) for d in (110, 164, 1001)},
    **{("preact_wide", f"zagoruyko2016:zk-{net}:test_error:median-5"):
       _v(where, error, printed, passage)
       for net, where, error, printed, passage in (
           ("wrn-16-4", "Table 6", 5.02, "16 4 - 5.02", _WRN_TABLE6),
           ("wrn-16-4-dropout", "Table 6", 5.24, "16 4 yes 5.24", _WRN_TABLE6),
           ("wrn-40-4", "Table 5", 4.53, "40-4 8.9M 4.53", _WRN_TABLE5),
           ("wrn-16-8", "Table 5", 4.27, "16-8 11.0M 4.27", _WRN_TABLE5),
           ("wrn-28-10", "Tables 5, 6", 4.00, "28 10 - 4.00", _WRN_TABLE6),
           ("wrn-28-10-dropout", "Table 6", 3.89, "28 10 yes 3.89", _WRN_TABLE6))},
    ("preact_wide", "zagoruyko2016:zk-wrn-16-4:params:single-1"): _v(
        "claims.md's WRN table", 2.7e6, "2.7M", "| WRN-16-4 | 2.7M | 5.02 | 5.24 |",
        document="claims.md"),
    **{("preact_wide", f"zagoruyko2016:zk-wrn-{net}:params:single-1"):
       _v("Table 5", count, printed, _WRN_TABLE5)
       for net, count, printed in (("40-4", 8.9e6, "8.9M"), ("16-8", 11.0e6, "11.0M"),
                                   ("28-10", 36.5e6, "36.5M"))},
    ("preact_wide", "zagoruyko2016:zk-wrn-28-10-dropout<zk-wrn-28-10:test_error"): _o(
        'Section 3, "Dropout in residual blocks"; Table 6',
        '"Dropout decreases test error on CIFAR-10 and CIFAR-100 by 0.11% and 0.4%" ... '
        '"with WRN-28-10"', _WRN_DROPOUT),
    ("preact_wide", "zagoruyko2016:zk-wrn-16-4<zk-wrn-16-4-dropout:test_error"): _o(
        'Section 3, "Dropout in residual blocks"; Table 6',
        "There is only a slight drop in accuracy with WRN-16-4 on CIFAR-10", _WRN_DROPOUT),
    ("resnet68", "chen-ge:chen-ge-resnet68b:test_accuracy:single-1"): _v(
        "Results", 90.14, "90.14%",
        "our model achieved a final accuracy of 90.14% on the test dataset"),
    ("resnet68", "chen-ge:chen-ge-resnet68b:params:single-1"): _v(
        "Table 1", 1050202, "1,050,202", "Total params: 1,050,202"),
    **_park("shortcuts", ("resnet56", "resnet56b")),
    ("shortcuts", "park:park-resnet56b<park-resnet56:test_error"): _o(
        "Section 3.3, Figure 7", "the performance of OptionB is slightly better than OptionA",
        _PARK_OPTION_B),
    ("shortcuts", "park:park-resnet56b<park-resnet56:final_train_loss"): _o(
        "Section 3.3, Figure 7", f'"{_PARK_OPTION_B}"', _PARK_OPTION_B),
}  # fmt: skip


def _plain(text: str) -> str:
    """Text as compared: one space for any run of white space, straight quotation marks."""
    for curly in "\u201c\u201d\u2018\u2019":  # a quotation within a quotation: single marks
        text = text.replace(curly, '"')
    return " ".join(text.split())


def _published_claims() -> list[tuple[str, str, object, str | None]]:
    """(study, claim id, claim, the file under ../shared its passage is checked against) of
    every claim whose source is a publication (not the smoke test's own)."""
    found = []
    for name, path in STUDIES.items():
        study = load_study(path)
        for claim in study.claims:
            source = study.sources[claim.source]
            if source.publication:
                said = SAID.get((name, claim_id(claim)))
                held = said.document if said and said.document else source.document
                found.append((name, claim_id(claim), claim, held))
    return found


CLAIMS = _published_claims()


def test_every_published_claim_of_a_shipped_study_is_pinned_to_its_source_s_words():
    claims = {(name, identity) for name, identity, _, _ in CLAIMS}
    assert sorted(claims - SAID.keys()) == [], "claims with no passage pinned above"
    assert sorted(SAID.keys() - claims) == [], "passages pinned for claims no study makes"


@pytest.mark.parametrize(("study", "identity", "claim"), [c[:3] for c in CLAIMS],
                         ids=[f"{c[0]}:{c[1]}" for c in CLAIMS])  # fmt: skip
def test_a_shipped_claim_says_what_its_source_prints(study, identity, claim):
    said = SAID.get((study, identity))
    assert said is not None, "no passage pinned for this claim"
    assert claim.where == said.where
    passage = _plain(said.passage)
    if said.statement is None:
        assert claim.value == pytest.approx(said.value, rel=1e-12)
        assert claim.std == said.std
        assert _plain(said.printed) in passage, "the figure is not in the passage"
        return
    assert claim.statement == said.statement
    # What the report prints in quotation marks as the source's words must be its words.
    words = claim.statement.split('"')[1::2] if '"' in claim.statement else [claim.statement]
    for quoted in words:
        for piece in filter(None, (p.strip(" ,.") for p in quoted.split("..."))):
            assert _plain(piece) in passage, f"{piece!r} is not the source's words"


@pytest.mark.parametrize(("study", "identity", "document"),
                         [(c[0], c[1], c[3]) for c in CLAIMS if c[3] and (c[0], c[1]) in SAID],
                         ids=lambda v: v)  # fmt: skip
def test_a_pinned_passage_stands_in_the_document_we_hold(study, identity, document):
    # The seeds (and claims.md) live beside the checkout, not in it: where they are, the
    # passages copied above are checked against them, so that the copy is not the error.
    path = ROOT.parent / "shared" / document
    if not path.exists():
        pytest.skip(f"{path} is not beside this checkout")
    text = _plain(path.read_text())
    for part in filter(
        None, (p.strip() for p in _plain(SAID[(study, identity)].passage).split("..."))
    ):
        assert part in text, f"{part!r} is not in {document}"
