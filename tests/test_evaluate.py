"""Released checkpoints (`repro evaluate`): the declared mapping computes the source's own
function, loading is strict, bad files are refused with nothing stored, files are fetched and
verified, and an evaluation is stored beside trained runs and judged by `repro report`.

No test needs the network or the released files: each writes a small checkpoint in the
source's layout itself, from a network written here from the source's published description.
One test uses the real files, and runs only where they are in the per-user cache.
"""

from __future__ import annotations

import json
import os
import urllib.error
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import ROOT, tiny_study
from torch import nn

from harness import verdicts as V
from harness.checkpoints import CheckpointError, cache_path, fetch, load, sha256_of
from harness.cli import main
from harness.data import cache_dir
from harness.data import load as load_cifar
from harness.resnet import ZeroPadShortcut
from harness.schema import CheckpointSpec
from harness.studyfile import load_study

# Where `repro evaluate` keeps downloads for this user, read before the tests' autouse fixture
# points the cache at an empty directory (module import happens first).
REAL_CACHE = cache_dir()
STUDY = load_study(ROOT / "studies" / "checkpoints.yaml")
AKAMASTER = STUDY.layouts["akamaster"]
IMAGENET = {"kind": "per_channel", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


# --------------------------------------------------------------------------- the source's net
# Written from the published description, not from the source's code: He et al. 2015, section
# 4.2 (3x3 conv with 16 filters, three stages of 2n layers at 16/32/64 filters, stride 2 where
# a stage starts, global average pooling, a 10-way fully connected layer; BN after each
# convolution, ReLU after the residual sum) with shortcut option A, which the source's README
# describes as zero-padding the identity with F.pad, on both sides of the channel dimension
# (a quarter of the output width each side).


class SourceBlock(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.side = planes // 4 if stride != 1 or cin != planes else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x
        if self.side:
            shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.side, self.side))
        return F.relu(out + shortcut)


class SourceResNet(nn.Module):
    def __init__(self, depth: int) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for stage, planes in enumerate((16, 32, 64), 1):
            blocks = []
            for i in range(n):
                blocks.append(SourceBlock(cin, planes, 2 if stage > 1 and i == 0 else 1))
                cin = planes
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def random_source(depth: int, seed: int = 0) -> SourceResNet:
    """The source's net with every weight and BN statistic random (none at its default), so
    a channel out of place changes the output."""
    torch.manual_seed(seed)
    net = SourceResNet(depth)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, (2 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def save_source(net: nn.Module, path: Path, *, counters: bool = False, **extra) -> Path:
    """As the source saves: torch.save({'state_dict': DataParallel(net).state_dict(), ...}).
    Its released files predate PyTorch 0.4.1 and have no BN step counters; nor do these."""
    state = nn.DataParallel(net).state_dict()
    if not counters:
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": state, "best_prec1": 91.25, **extra}, path)
    return path


def spec(file: Path, model: str = "resnet20", **fields) -> CheckpointSpec:
    from harness.zoo import spec_from_name

    return CheckpointSpec.model_validate({
        "name": "foreign", "model": spec_from_name(model).model_dump(), "model_name": model,
        "path": str(file), "layout": "akamaster", "normalization": IMAGENET, **fields,
    })  # fmt: skip


# --------------------------------------------------------------------------- the proof


@pytest.mark.parametrize("depth", [20, 32])
def test_the_mapped_model_computes_the_source_s_function(tmp_path, depth):
    source = random_source(depth)
    path = save_source(source, tmp_path / "foreign.th")
    loaded = load(spec(path, f"resnet{depth}"), AKAMASTER, path)
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        theirs, ours = source(x), loaded.model(x)
    assert theirs.abs().max() > 1  # a real signal, not zeros that match anything
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert loaded.tensors == len(torch.load(path, weights_only=True)["state_dict"])
    assert loaded.metadata == {"best_prec1": 91.25}


def test_without_the_declared_transform_the_function_differs(tmp_path):
    # The permutation is what makes the two nets equal: names alone do not.
    source = random_source(20)
    path = save_source(source, tmp_path / "foreign.th")
    names_only = AKAMASTER.model_copy(update={"transforms": []})
    loaded = load(spec(path), names_only, path)
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        gap = (loaded.model(x) - source(x)).abs().max()
    assert gap > 0.1


def test_the_zoo_appends_zero_channels_where_the_source_pads_both_sides():
    x = torch.randn(2, 16, 8, 8)
    ours = ZeroPadShortcut(16, 32, stride=2)(x)
    theirs = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8))
    assert torch.equal(ours[:, :16], theirs[:, 8:24])
    assert not ours[:, 16:].any() and not theirs[:, :8].any() and not theirs[:, 24:].any()


def test_a_checkpoint_with_bn_step_counters_loads_too(tmp_path):
    path = save_source(random_source(20), tmp_path / "new.th", counters=True)
    assert load(spec(path), AKAMASTER, path).tensors == len(
        torch.load(path, weights_only=True)["state_dict"]
    )


# --------------------------------------------------------------------------- strict loading


def _edited(tmp_path: Path, edit) -> Path:
    state = nn.DataParallel(random_source(20)).state_dict()
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    obj = edit({"state_dict": state}) or {"state_dict": state}
    path = tmp_path / "bad.th"
    torch.save(obj, path)
    return path


def _drop(name):
    def edit(obj):
        del obj["state_dict"][name]

    return edit


def _add(name, tensor):
    def edit(obj):
        obj["state_dict"][name] = tensor

    return edit


def _replace(name, tensor):
    return _add(name, tensor)


SPRUNG: list[str] = []


def _sprung(text: str) -> str:
    SPRUNG.append(text)  # what a malicious file would do on loading: run code
    return text


class Trap:
    def __reduce__(self):
        return (_sprung, ("code from the checkpoint ran",))


BAD = [
    pytest.param(_drop("module.layer2.1.conv1.weight"),
                 "missing tensor: the model's 'units.4.convs.0.weight'", id="missing-tensor"),
    pytest.param(_add("module.fc.weight", torch.zeros(10, 64)),
                 "extra tensor 'module.fc.weight': no rule", id="extra-tensor"),
    pytest.param(_add("module.layer3.3.conv1.weight", torch.zeros(64, 64, 3, 3)),
                 "stage 2 unit 3 (from 0), but the model has 3 stages of 3 units",
                 id="tensor-of-a-deeper-net"),
    pytest.param(_replace("module.linear.weight", torch.zeros(100, 64)),
                 "shape mismatch: 'module.linear.weight' (the model's 'classifier.weight') is "
                 "[100, 64] in the file and [10, 64]", id="wrong-shape"),
    pytest.param(lambda obj: [1, 2, 3], "is not a state dict under 'state_dict'",
                 id="a-list"),
    pytest.param(lambda obj: {"weights": obj["state_dict"]},
                 "its keys: weights", id="no-state-dict-key"),
    pytest.param(lambda obj: {"state_dict": {"conv1.weight": 3.0}},
                 "its entry 'conv1.weight' is a float, not a tensor", id="not-tensors"),
    pytest.param(lambda obj: {"state_dict": obj["state_dict"], "trap": Trap()},
                 "refused: loading it would run code", id="arbitrary-code"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "message"), BAD)
def test_bad_checkpoints_are_refused_naming_the_first_problem(tmp_path, edit, message):
    path = _edited(tmp_path, edit)
    with pytest.raises(CheckpointError, match=r"^checkpoint foreign: ") as info:
        load(spec(path), AKAMASTER, path)
    assert message in str(info.value)
    assert SPRUNG == []


def test_a_file_that_is_no_checkpoint_at_all(tmp_path):
    path = tmp_path / "noise.th"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match=r"not a file torch\.load can read"):
        load(spec(path), AKAMASTER, path)


# --------------------------------------------------------------------------- fetching


def _url_spec(path: Path, sha: str) -> CheckpointSpec:
    return spec(path, path=None, url=path.as_uri(), sha256=sha)


def test_a_download_is_verified_then_cached(tmp_path):
    served = save_source(random_source(20), tmp_path / "resnet20-foreign.th")
    wanted = _url_spec(served, sha256_of(served))
    got = fetch(wanted, tmp_path)
    assert got.origin == "downloaded" and got.path == cache_path(wanted)
    assert got.path.read_bytes() == served.read_bytes()
    assert str(got.path).startswith(str(cache_dir() / "checkpoints"))
    assert fetch(wanted, tmp_path).origin == "cache"


def test_a_download_with_the_wrong_hash_is_discarded(tmp_path):
    served = save_source(random_source(20), tmp_path / "resnet20-foreign.th")
    wanted = _url_spec(served, "0" * 64)
    with pytest.raises(CheckpointError, match=r"has SHA-256 .* the study says 0{64}; it was "
                                              "discarded"):  # fmt: skip
        fetch(wanted, tmp_path)
    assert not any(cache_path(wanted).parent.iterdir())  # no file, no partial download


def test_offline_the_message_says_exactly_where_to_put_the_file(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network here")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    (wanted,) = [c for c in STUDY.checkpoints if c.name == "akamaster-resnet20"]
    with pytest.raises(CheckpointError) as info:
        fetch(wanted, tmp_path)
    text = str(info.value)
    target = cache_dir() / "checkpoints" / "12fca82f0beb" / "resnet20-12fca82f.th"
    assert f"put it at\n  {target}\n" in text and "no network here" in text
    assert wanted.url in text and wanted.sha256 in text


def test_a_cached_or_local_file_with_the_wrong_hash_is_refused_and_kept(tmp_path):
    served = save_source(random_source(20), tmp_path / "resnet20-foreign.th")
    wanted = _url_spec(served, "1" * 64)
    cache_path(wanted).parent.mkdir(parents=True)
    cache_path(wanted).write_bytes(served.read_bytes())
    with pytest.raises(CheckpointError, match=r"the cached file .* is not the released file"):
        fetch(wanted, tmp_path)
    assert cache_path(wanted).exists()  # the user's file: never deleted
    local = spec(served, sha256="2" * 64)
    with pytest.raises(CheckpointError, match="the file at `path:`"):
        fetch(local, tmp_path)


# --------------------------------------------------------------------------- the command

FOREIGN_STUDY = """\
name: foreign
description: a released checkpoint in another code base's layout
sources: {src: {title: A release, authors: Someone, year: 2018}}
layouts:
  theirs:
    strip_prefix: module.
    rules:
      - {pattern: 'conv1\\.weight', to: stem.weight}
      - {pattern: 'bn1\\.(?P<t>\\w+)', to: 'stem_norm.{t}'}
      - {pattern: 'layer(?P<s>\\d+)\\.(?P<u>\\d+)\\.conv(?P<c>\\d+)\\.weight',
         to: 'stages.{s-1}.{u}.convs.{c-1}.weight'}
      - {pattern: 'layer(?P<s>\\d+)\\.(?P<u>\\d+)\\.bn(?P<c>\\d+)\\.(?P<t>\\w+)',
         to: 'stages.{s-1}.{u}.norms.{c-1}.{t}'}
      - {pattern: 'linear\\.(?P<t>weight|bias)', to: 'classifier.{t}'}
    transforms: [option_a_both_sides]
checkpoints:
  - {name: small, model: resnet8, source: src, path: small.th, layout: theirs,
     normalization: {kind: per_channel, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}
claims:
  - {source: src, where: README, checkpoint: small, metric: test_error, value: 85.0}
  - {source: src, where: README, checkpoint: small, metric: params, value: 75290}
"""


@pytest.fixture
def foreign(tmp_path):
    study_dir = tmp_path / "studies"
    study_dir.mkdir()
    save_source(random_source(8), study_dir / "small.th")
    path = study_dir / "foreign.yaml"
    path.write_text(FOREIGN_STUDY)
    return path, tmp_path / "results"


def _evaluate(path, results, data, *extra):
    return CliRunner().invoke(main, ["evaluate", str(path), "--results", str(results),
                                     "--data-dir", str(data), "--device", "cpu", *extra])  # fmt: skip


def _records(results: Path) -> list[Path]:
    return sorted(results.glob("*/*/data-*/evaluation.json"))


def test_evaluate_stores_beside_the_runs_and_the_report_judges_it(foreign, cifar_root, tmp_path):
    path, results = foreign
    first = _evaluate(path, results, cifar_root)
    assert first.exit_code == 0, first.output
    data = load_cifar(cifar_root / "cifar-10-batches-py")
    (record_path,) = _records(results)
    assert record_path.parent == results / "foreign" / "small" / f"data-{data.fingerprint[:12]}"
    record = json.loads(record_path.read_text())
    assert record["data"]["dataset_fingerprint"] == data.fingerprint
    assert record["data"]["official"] is False and record["images"] == len(data.test_labels)
    assert record["file"]["sha256"] == sha256_of(path.parent / "small.th")
    assert record["transforms"][0]["name"] == "option_a_both_sides"
    assert 0 <= record["test_error"] <= 100 and "1 evaluated" in first.output

    again = _evaluate(path, results, cifar_root)
    assert "skipped: already evaluated" in again.output and again.exit_code == 0
    status = CliRunner().invoke(main, ["status", str(path), "--results", str(results),
                                       "--queue", str(ROOT / "queue.yaml")])  # fmt: skip
    assert status.exit_code == 0, status.output
    assert f"small  evaluated    test error {record['test_error']:.2f}% on a copy that is " \
        "not the official release" in status.output  # fmt: skip
    trained = CliRunner().invoke(main, ["run", str(path), "--results", str(results)])
    assert trained.exit_code == 0 and "nothing to train" in trained.output
    forced = _evaluate(path, results, cifar_root, "--force")
    assert "1 evaluated" in forced.output
    assert len(list((results / "foreign" / "small" / ".superseded").iterdir())) == 1

    out = tmp_path / "claims.json"
    report = CliRunner().invoke(main, ["report", "--results", str(results), "--study",
                                       str(path), "--out", str(out)])  # fmt: skip
    assert report.exit_code == 0, report.output
    assert "1 checkpoint evaluation)" in report.output
    rows = {r["metric"]: r for r in json.loads(out.read_text())}
    row = rows["test error"]
    # Judged by the rules of trained runs: one evaluation is a single run, on a copy of the data
    study = load_study(path)
    claim = study.claims[0]
    expected = V.on_nonofficial_data(V.judge_value(
        claim, V.apply_rule([record["test_error"]], claim.rule, lower_is_better=True)))  # fmt: skip
    assert (row["kind"], row["experiment"]) == ("checkpoint", "small")
    assert row["verdict"] == expected.outcome and row["verdict"].endswith(V.ON_NONOFFICIAL_DATA)
    assert row["reproduced_value"] == pytest.approx(record["test_error"])
    assert rows["parameters"]["verdict"] == V.REPRODUCED

    html_out = tmp_path / "report.html"
    CliRunner().invoke(main, ["report", "--results", str(results), "--study", str(path),
                              "--out", str(html_out)])  # fmt: skip
    html = html_out.read_text()
    assert "Released checkpoints" in html and "Non-official data" in html
    assert "1 checkpoint evaluation used" in " ".join(html.split())
    assert (
        "What the copy of the data costs released weights (our test error on the copy against "
        "the source&#39;s stated figure on the official release)"
    ) in html
    assert "the source&#39;s stated figure" in html


@pytest.mark.parametrize(("edit", "message"), BAD[:1] + BAD[3:4] + BAD[-1:])
def test_a_bad_checkpoint_is_an_error_and_nothing_is_stored(foreign, cifar_root, edit, message):
    path, results = foreign
    bad = _edited(path.parent, edit)
    bad.replace(path.parent / "small.th")
    result = _evaluate(path, results, cifar_root)
    assert result.exit_code == 1
    assert "small: failed: checkpoint small:" in result.output
    assert "Traceback" not in result.output
    assert _records(results) == []
    assert SPRUNG == []


def test_a_wrong_hash_is_an_error_and_nothing_is_stored(foreign, cifar_root):
    path, results = foreign
    path.write_text(
        FOREIGN_STUDY.replace("path: small.th,", f"path: small.th, sha256: {'a' * 64},")
    )
    result = _evaluate(path, results, cifar_root)
    assert result.exit_code == 1 and "has SHA-256" in result.output
    assert _records(results) == []


def test_a_changed_declaration_makes_the_evaluation_stale(foreign, cifar_root, tmp_path):
    path, results = foreign
    assert _evaluate(path, results, cifar_root).exit_code == 0
    path.write_text(FOREIGN_STUDY.replace("mean: [0.5, 0.5, 0.5]", "mean: [0.4, 0.4, 0.4]"))
    from harness.report import report_for

    (row, _) = report_for([path], results).studies[0].checkpoint_claims
    assert row.verdict == V.NOT_RUN and "not evaluated yet" in row.reason
    # The command it names runs as it stands: the study file's path, not '<name>.yaml'.
    assert f"`repro evaluate {path}`" in row.reason, row.reason
    assert any("stale" in n for n in row.notes)
    redo = _evaluate(path, results, cifar_root)
    assert "1 evaluated" in redo.output  # the stale record is moved aside, not deleted
    assert (results / "foreign" / "small" / ".superseded").is_dir()


def test_a_file_where_the_evaluation_s_directory_belongs_is_kept_aside(foreign, cifar_root):
    """It gave a NotADirectoryError traceback."""
    path, results = foreign
    results.mkdir()
    (results / "foreign").write_text("stray\n")
    result = _evaluate(path, results, cifar_root)
    assert result.exit_code == 0, result.output
    assert f"note: {results / 'foreign'} is a file where a directory of the store belongs; " \
        "kept as foreign.not-a-directory-" in result.output  # fmt: skip
    (kept,) = results.glob("foreign.not-a-directory-*")
    assert kept.read_text() == "stray\n" and len(_records(results)) == 1


@pytest.mark.parametrize(
    ("only", "says"),
    [
        ("big", "--only big: study 'foreign' has no such checkpoint; it has: small"),
        # A slip was told the names there are, and not which of them it was near.
        ("smal", "--only smal: study 'foreign' has no such checkpoint (did you mean small?); "
         "it has: small"),
    ],
    ids=["none-close", "a-slip"],
)  # fmt: skip
def test_only_names_a_checkpoint_of_the_study(foreign, cifar_root, only, says):
    path, results = foreign
    result = _evaluate(path, results, cifar_root, "--only", only)
    assert result.exit_code == 2 and says in result.output, result.output


def test_only_selects_among_all_the_studies_given(foreign, cifar_root):
    """`repro evaluate a.yaml b.yaml --only X` was refused when a.yaml lacked X though b.yaml
    had it."""
    path, results = foreign
    trained = tiny_study(path.parent / "trained.yaml", "  - {name: r8, model: resnet8, "
                         "recipe: base}\n", name="trained")  # fmt: skip
    result = _evaluate(trained, results, cifar_root, str(path), "--only", "small")
    assert result.exit_code == 0, result.output
    assert "trained: has none of the checkpoints --only names; not evaluated" in result.output
    assert "1 evaluated" in result.output and len(_records(results)) == 1
    wrong = _evaluate(trained, results, cifar_root, str(path), "--only", "smal")
    assert wrong.exit_code == 2, wrong.output
    assert ("--only smal: none of the studies given has such a checkpoint (did you mean small?); "
            "the studies searched: 'trained' has no checkpoints; 'foreign' has small") in wrong.output  # fmt: skip


def test_only_on_a_study_without_checkpoints_says_so(foreign, cifar_root):
    """It said "has no such checkpoint; it has: none"."""
    path, results = foreign
    trained = tiny_study(path.parent / "trained.yaml", "  - {name: r8, model: resnet8, "
                         "recipe: base}\n", name="trained")  # fmt: skip
    result = _evaluate(trained, results, cifar_root, "--only", "small")
    assert result.exit_code == 2, result.output
    assert (
        "--only small: study 'trained' declares no checkpoints to evaluate (no "
        f"`checkpoints:`); study files that do: {path}"
    ) in result.output


# --------------------------------------------------------------------------- the real files

REAL = {c.name: REAL_CACHE / cache_path(c).relative_to(cache_dir()) for c in STUDY.checkpoints}


@pytest.mark.skipif(not all(p.exists() for p in REAL.values()),
                    reason="akamaster's released files are not in the per-user cache")  # fmt: skip
@pytest.mark.parametrize("checkpoint", STUDY.checkpoints, ids=lambda c: c.name)
def test_the_released_files_map_onto_the_zoo_and_compute_the_source_s_function(
    checkpoint, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(REAL_CACHE.parent))
    fetched = fetch(checkpoint, ROOT / "studies", download=False)  # checks the SHA-256
    loaded = load(checkpoint, AKAMASTER, fetched.path)
    state = torch.load(fetched.path, map_location="cpu", weights_only=True)["state_dict"]
    source = SourceResNet(checkpoint.model.depth).eval()
    source.load_state_dict({k.removeprefix("module."): v for k, v in state.items()},
                           strict=False)  # their files have no BN step counters  # fmt: skip
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), source(x), rtol=1e-4, atol=1e-4)
    assert loaded.tensors == len(state)


def _spoil_record(record: Path, how: str) -> None:
    data = json.loads(record.read_text())
    record.unlink()
    if how == "garbage":
        record.write_bytes(b"\x00\xff{")
    elif how == "a list":
        record.write_text("[1]")
    elif how == "a string for test_error":
        record.write_text(json.dumps({**data, "test_error": "8.27"}))
    elif how == "a link loop":
        os.symlink(record.name, record)
    else:  # a directory
        record.mkdir()
        (record / "inside.txt").write_text("kept\n")


@pytest.mark.parametrize(
    "how", ["garbage", "a list", "a string for test_error", "a link loop", "a directory"]
)
def test_a_damaged_evaluation_record_is_evaluated_again_and_kept(foreign, cifar_root, how):
    """Status and report list a damaged evaluation.json and never count it; `repro evaluate`
    gave one holding a list an AttributeError traceback, and skipped one with a field of the
    wrong type as "already evaluated", so it stayed damaged. It now evaluates again and keeps
    the damaged record in .superseded/, as status says it will."""
    path, results = foreign
    assert _evaluate(path, results, cifar_root).exit_code == 0
    (record,) = _records(results)
    _spoil_record(record, how)
    kept = record.read_bytes() if record.is_file() and not record.is_symlink() else None
    status = CliRunner().invoke(main, ["status", str(path), "--results", str(results)])
    assert status.exit_code == 0, status.output
    assert f"damaged      {record}: " in status.output, status.output
    assert "`repro evaluate` evaluates it again, keeping this record in .superseded/" \
        in status.output  # fmt: skip

    again = _evaluate(path, results, cifar_root)
    assert again.exit_code == 0 and again.exception is None, again.output
    assert "1 evaluated" in again.output, again.output
    assert isinstance(json.loads(record.read_text())["test_error"], float)
    (old,) = (results / "foreign" / "small" / ".superseded").iterdir()
    assert (old / "SUPERSEDED").read_text() == "superseded by `repro evaluate` (no readable " \
        "record)\n"  # fmt: skip
    if kept is not None:
        assert (old / record.name).read_bytes() == kept
    elif how == "a directory":
        assert (old / record.name / "inside.txt").read_text() == "kept\n"


# --------------------------------------------------------------------------- storeslips3


def test_the_reports_closing_line_counts_only_the_evaluations_of_the_studies_it_reports(
    tmp_path, monkeypatch
):
    """`repro report s.yaml` said "(..., 2 checkpoint evaluations)" where one was of s and
    one of a study outside the report, while its run count was already only the reported
    studies'. It counts the reported studies' evaluations and notes the others apart."""
    from fake_runs import fake_evaluation

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(FOREIGN_STUDY)
    (tmp_path / "o.yaml").write_text(FOREIGN_STUDY.replace("name: foreign", "name: other"))
    for path in ("s.yaml", "o.yaml"):
        fake_evaluation(tmp_path / "results", load_study(tmp_path / path), "small")
    both = CliRunner().invoke(main, ["report", "s.yaml", "o.yaml", "--out", "both.csv"])
    assert both.exit_code == 0, both.output
    assert "2 checkpoint evaluations)" in both.output, both.output
    out = CliRunner().invoke(main, ["report", "s.yaml", "--out", "x.csv"])
    assert out.exit_code == 0, out.output
    assert "wrote x.csv (csv: 1 study, 2 claims, 0 runs, 1 checkpoint evaluation)" in out.output
    said = " ".join(out.output.split())
    assert ("note: 1 checkpoint evaluation of study 'other' is not reported: not among the "
            "--study files given; give it with --study FILE") in said, said  # fmt: skip


def test_a_downloaded_checkpoint_is_as_readable_as_the_users_umask_makes_new_files(tmp_path):
    """The cache is often shared (a lab's ~/.cache on a group volume): mkstemp's 0600 kept
    every download private to whoever fetched it first."""
    served = save_source(random_source(20), tmp_path / "resnet20-foreign.th")
    old = os.umask(0o022)
    try:
        got = fetch(_url_spec(served, sha256_of(served)), tmp_path)
    finally:
        os.umask(old)
    assert got.path.stat().st_mode & 0o777 == 0o644
