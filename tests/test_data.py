"""Finding, checking and loading CIFAR-10 files; what a user is told when that fails."""

import hashlib
import pickle

import numpy as np
import pytest
from cifar_fixture import write_cifar
from click.testing import CliRunner
from conftest import ROOT, tiny_study

from harness import data as cifar
from harness.cli import main


def test_loads_the_official_layout_with_bytes_or_str_keys(tmp_path):
    for bytes_keys in (True, False):
        root = write_cifar(tmp_path / str(bytes_keys), bytes_keys=bytes_keys)
        d = cifar.load(root / cifar.FOLDER)
        assert d.train_images.shape == (600, 3, 32, 32) and d.train_images.dtype == np.uint8
        assert d.test_labels.shape == (200,)
        assert set(np.unique(d.train_labels)) <= set(range(10))


def test_fingerprint_is_sha256_of_the_exact_arrays(cifar_root):
    d = cifar.load(cifar_root / cifar.FOLDER)
    h = hashlib.sha256()
    for a in (d.train_images, d.train_labels, d.test_images, d.test_labels):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    assert d.fingerprint == h.hexdigest()
    changed = d.test_images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert (
        cifar.fingerprint(d.train_images, d.train_labels, changed, d.test_labels) != d.fingerprint
    )


def test_a_copy_with_other_checksums_is_not_official(cifar_root):
    d = cifar.load(cifar_root / cifar.FOLDER)
    assert not d.official
    assert "NOT the official release" in d.describe()
    assert "not the official release" in cifar.non_official_warning(d)


def test_files_with_the_official_checksums_are_official(cifar_root, monkeypatch):
    folder = cifar_root / cifar.FOLDER
    md5s = {
        name: hashlib.md5((folder / name).read_bytes()).hexdigest()
        for name in [*cifar.TRAIN_FILES, cifar.TEST_FILE]
    }
    monkeypatch.setattr(cifar, "_official_md5s", lambda: md5s)
    assert cifar.is_official(folder)


def test_the_official_checksums_are_torchvisions():
    """harness.data writes them out so that loading the data does not import torchvision."""
    from torchvision.datasets import CIFAR10

    assert cifar._official_md5s() == dict(CIFAR10.train_list + CIFAR10.test_list)


def test_resolution_order_flag_then_environment_then_cache(tmp_path, monkeypatch):
    flag, env, cache = (write_cifar(tmp_path / n) for n in ("flag", "env", "cache"))
    monkeypatch.setenv("REPRO_DATA_DIR", str(env))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent))
    (cache.parent / "repro").symlink_to(cache)
    assert cifar.locate(flag) == flag / cifar.FOLDER
    assert cifar.locate(None) == env / cifar.FOLDER
    monkeypatch.delenv("REPRO_DATA_DIR")
    assert cifar.locate(None) == cache.parent / "repro" / cifar.FOLDER
    # The folder itself may be given, too.
    assert cifar.locate(flag / cifar.FOLDER) == flag / cifar.FOLDER


def test_offline_without_data_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["run", str(study), "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    out = result.output
    assert "CIFAR-10 not found" in out and str(tmp_path / "cache" / "repro") in out
    assert "--data-dir" in out and "REPRO_DATA_DIR" in out
    assert "download failed: network access is disabled" in out
    assert not (tmp_path / "r").exists(), "nothing is created when nothing can run"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:1000]), "corrupt or truncated"),
        (lambda p: p.unlink(), "is missing"),
        (
            lambda p: p.write_bytes(
                pickle.dumps({"data": np.zeros((3, 10), np.uint8), "labels": [0, 1, 2]})
            ),
            "3072-byte row",
        ),
        (
            lambda p: p.write_bytes(
                pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 12]})
            ),
            "labels outside 0..9",
        ),
        # A directory where a batch belongs gave an IsADirectoryError traceback.
        (lambda p: (p.unlink(), p.mkdir()), "is a directory, where CIFAR-10 keeps that batch"),
    ],
    ids=["truncated", "missing", "wrong-shape", "bad-labels", "a-directory"],
)
def test_damaged_files_are_named_with_the_remedy(tmp_path, damage, message):
    root = write_cifar(tmp_path)
    damage(root / cifar.FOLDER / "data_batch_3")
    with pytest.raises(cifar.DataError, match=message) as info:
        cifar.load(root / cifar.FOLDER)
    assert "data_batch_3" in str(info.value)


@pytest.mark.parametrize(
    "damage",
    [lambda p: p.write_bytes(p.read_bytes()[:1000]), lambda p: p.unlink()],
    ids=["truncated", "missing"],
)
def test_the_remedy_for_a_damaged_copy_depends_on_whose_copy_it_is(tmp_path, monkeypatch, damage):
    """Deleting a damaged cache makes repro download it again; deleting a copy given with
    --data-dir (the offline JPEG copy, say) downloads nothing, since a given directory never
    falls back to the cache: the message said "delete the directory and download again" to
    both."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    own = write_cifar(tmp_path / "own") / cifar.FOLDER
    damage(own / "data_batch_3")
    with pytest.raises(cifar.DataError) as info:
        cifar.load(own)
    message = str(info.value)
    assert "download" not in message and "Delete" not in message, message
    assert "or give another complete copy with --data-dir" in message, message

    cached = write_cifar(tmp_path / "cache" / "repro") / cifar.FOLDER
    damage(cached / "data_batch_3")
    with pytest.raises(cifar.DataError) as info:
        cifar.load(cached)
    assert f"Delete {cached} and run the command again: repro downloads CIFAR-10" in str(info.value)


@pytest.mark.parametrize("protocol", [2, 4], ids=["protocol-2", "protocol-4-framed"])
def test_the_check_without_loading_finds_every_cut_with_the_loaders_message(tmp_path, protocol):
    """A parent whose workers load the data checks it first without loading it
    (check_complete): it checked only that the batch files exist, so a truncated batch made
    every worker fail. Cut anywhere (its last byte alone tells nothing: a cut can end on a
    pixel of 46, pickle's STOP), a batch is now refused there with the error loading gives;
    a whole one, or one with bytes after its STOP (which loading ignores), passes."""
    folder = write_cifar(tmp_path, per_batch=3, test=3) / cifar.FOLDER
    batch = folder / "test_batch"
    content = pickle.dumps(
        {b"labels": [1, 2, 3], b"data": np.full((3, 3072), ord("."), np.uint8)}, protocol
    )
    for whole in (content, content + b"more"):
        batch.write_bytes(whole)
        cifar.check_complete(folder)
        cifar.load(folder)
    # Every cut among the opcodes; among the pixels (all STOP bytes), one in 97.
    pixels = content.index(bytes(3 * 3072 * [ord(".")]))
    for cut in [
        c for c in range(len(content)) if not pixels < c < pixels + 3 * 3072 or c % 97 == 0
    ]:
        batch.write_bytes(content[:cut])
        with pytest.raises(cifar.DataError) as loading:
            cifar.load(folder)
        with pytest.raises(cifar.DataError) as checking:
            cifar.check_complete(folder)
        assert str(checking.value) == str(loading.value), cut


def test_a_batch_file_cannot_run_code(tmp_path):
    root = write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (root / cifar.FOLDER / "test_batch").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(cifar.DataError, match=r"refusing to load builtins\.print"):
        cifar.load(root / cifar.FOLDER)


def test_online_the_data_is_downloaded_into_the_cache(tmp_path, monkeypatch):
    fetched = []

    def fake_download(root):  # stands in for torchvision's download-and-verify
        fetched.append(root)
        write_cifar(root)

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cifar, "_download", fake_download)
    folder = cifar.locate(None)
    assert fetched == [tmp_path / "cache" / "repro"]
    assert folder == tmp_path / "cache" / "repro" / cifar.FOLDER
    assert cifar.locate(None) == folder  # found in the cache next time, no second download
    assert len(fetched) == 1


def _rewrite(folder, name, **changes):
    path = folder / name
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    batch.update({k.encode(): v for k, v in changes.items()})
    path.write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("test_batch", {"data": np.zeros((0, 3072), np.uint8), "labels": []}, "holds no images"),
        ("data_batch_2", {"data": np.full((120, 3072), 300.0)}, "pixels of type float64"),
        ("data_batch_3", {"labels": "not labels"}, "labels of type"),
        ("data_batch_3", {"labels": None}, "labels of type object"),
        ("data_batch_4", {"labels": [0.5] * 120}, "labels of type float64"),
        ("test_batch", {"labels": [[1, 2]] * 200}, "labels of type"),
    ],
)
def test_a_batch_that_lies_is_refused_with_its_name(tmp_path, name, changes, message):
    root = write_cifar(tmp_path)
    _rewrite(root / cifar.FOLDER, name, **changes)
    with pytest.raises(cifar.DataError, match=message) as caught:
        cifar.load(root / cifar.FOLDER)
    assert name in str(caught.value)
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    out = CliRunner().invoke(main, ["run", str(study), "--data-dir", str(root), "--device", "cpu",
                                    "--results", str(tmp_path / "r"), "--quiet"])  # fmt: skip
    assert out.exit_code == 2 and name in out.output and "Traceback" not in out.output
    assert not (tmp_path / "r").exists()


def test_a_subset_larger_than_the_data_is_refused(tmp_path, cifar_root):
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    out = CliRunner().invoke(main, ["run", str(study), "--data-dir", str(cifar_root), "--device",
                                    "cpu", "--results", str(tmp_path / "r"), "--quiet",
                                    "--subset", "5000"])  # fmt: skip
    assert out.exit_code == 2, out.output
    assert "5000 training images asked for" in out.output and "has 600" in out.output
    assert not list((tmp_path / "r").rglob("summary.json"))


def test_a_run_records_the_test_images_that_exist(tmp_path, cifar_root):
    """--smoke asks for 500 test images; the fixture has 200, and the record says 200."""
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    results = tmp_path / "r"
    out = CliRunner().invoke(main, ["run", str(study), "--data-dir", str(cifar_root), "--device",
                                    "cpu", "--results", str(results), "--quiet", "--smoke"])  # fmt: skip
    assert out.exit_code == 0, out.output
    (summary,) = results.rglob("summary.json")
    import json

    assert json.loads(summary.read_text())["data"]["test_images"] == 200


@pytest.mark.parametrize("command", ["run", "bench", "evaluate"])
@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_a_given_data_dir_without_the_data_is_an_error_not_the_cache(
    tmp_path, monkeypatch, cifar_root, command, kind
):
    """A typo in --data-dir must not silently train on the cached (or downloaded) copy."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cifar_root.parent))
    (cifar_root.parent / "repro").mkdir(exist_ok=True)
    if not (cifar_root.parent / "repro" / cifar.FOLDER).exists():
        (cifar_root.parent / "repro" / cifar.FOLDER).symlink_to(cifar_root / cifar.FOLDER)
    assert cifar.locate(None) == cifar_root.parent / "repro" / cifar.FOLDER  # the cache has it
    typo = tmp_path / "cifarr"
    if kind == "empty":
        typo.mkdir()
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    args = {
        "run": ["run", str(study), "--device", "cpu", "--results", str(tmp_path / "r")],
        "bench": ["bench", "--device", "cpu", "--models", "resnet8", "--subset", "100"],
        "evaluate": ["evaluate", str(ROOT / "studies" / "checkpoints.yaml"), "--device", "cpu",
                     "--results", str(tmp_path / "r")],
    }[command]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--data-dir", str(typo)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"--data-dir {typo}: {typo} " in result.output
    assert ("does not exist" if kind == "missing" else "holds no") in result.output
    assert not (tmp_path / "r").exists()


def test_a_given_repro_data_dir_without_the_data_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(cifar.DataError, match=r"REPRO_DATA_DIR=.*does not exist.*unset"):
        cifar.locate(None)


@pytest.mark.parametrize("given", ["folder", "archive"])
@pytest.mark.parametrize("how", ["--data-dir", "REPRO_DATA_DIR"])
def test_the_downloaded_archive_not_yet_extracted_is_told_how_to_extract_it(
    tmp_path, monkeypatch, given, how
):
    """A folder holding cifar-10-python.tar.gz as downloaded was told it "holds no
    cifar-10-batches-py/", and the archive itself, as REPRO_DATA_DIR, that it "holds no"
    folder either: neither said that the archive only needs extracting, nor how."""
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b")  # the name is what counts
    root = folder if given == "folder" else folder / "cifar-10-python.tar.gz"
    extract = f"`tar xzf {folder / 'cifar-10-python.tar.gz'} -C {folder}`"
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    args = ["run", str(study), "--device", "cpu", "--results", str(tmp_path / "r")]
    if how == "--data-dir":
        args += ["--data-dir", str(root)]
    else:
        monkeypatch.setenv("REPRO_DATA_DIR", str(root))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert extract in result.output, result.output
    assert f"{folder}" in result.output.split(extract)[1]  # the folder to give afterwards
    assert not (tmp_path / "r").exists()


def test_a_repro_data_dir_that_is_a_file_is_called_a_file(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("x\n")
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "notes.txt"))
    with pytest.raises(cifar.DataError, match=r"notes.txt is a file, not a directory\. Give"):
        cifar.locate(None)


def _flipped(content: bytes, at: int, value: int) -> bytes:
    return content[:at] + bytes([value]) + content[at + 1 :]


def test_a_batch_with_a_byte_flipped_on_disk_is_refused_with_its_name(tmp_path):
    """Bit rot in a batch file made the unpickler raise what no list of exceptions held
    (LookupError for a mangled codec name, MemoryError or OverflowError for a mangled length,
    IndexError, numpy's SystemError): a bare traceback instead of the file's name and what to
    do. So did a bare number where the pixel rows belong (no len())."""
    folder = write_cifar(tmp_path, per_batch=3, test=3) / cifar.FOLDER
    batch = folder / "test_batch"
    content = pickle.dumps(
        {b"labels": [1, 2, 3], b"data": np.full((3, 3072), ord("."), np.uint8)}, 2
    )
    damaged = {
        "codec name": content.replace(b"latin1", b"latinX"),  # LookupError
        "opcode": _flipped(content, 0, 0x8E),  # MemoryError
        "memo index": _flipped(content, 62, 74),  # IndexError
        "dtype": _flipped(content, len(content) - 6, 48),  # numpy's SystemError
        "length": b"\x80\x04\x8e" + b"\xff" * 7 + b"\x7f",  # OverflowError
        "bare number": pickle.dumps({b"labels": [1], b"data": np.uint8(5)}, 2),  # TypeError
    }
    for what, bad in damaged.items():
        batch.write_bytes(bad)
        for read in (cifar.load, cifar.check_complete):
            with pytest.raises(cifar.DataError) as caught:
                read(folder)
            assert str(batch) in str(caught.value), what
