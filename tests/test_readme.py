"""The README's YAML examples are what a newcomer copies: each must load as written; and its
map of where things live names every module, so a newcomer finds each one there.

Its example study named four experiments it did not declare, so the file a reader saved from
it failed `repro validate` with four problems. Here every ```yaml block of README.md is checked:
a block with a `name:` is a whole study and is validated exactly as written; any other block is
a fragment of one (the executor settings, the released-checkpoint layout) and is validated
inside the README's whole study, so a field renamed in the schema fails here, not for a reader.
"""

from __future__ import annotations

import re

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from harness.cli import main
from harness.studyfile import StudyError, load_study

README = ROOT / "README.md"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def _whole_studies() -> list[str]:
    return [b for b in _blocks() if "name" in (yaml.safe_load(b) or {})]


def _fragments() -> list[str]:
    return [b for b in _blocks() if "name" not in (yaml.safe_load(b) or {})]


def test_the_readme_has_one_whole_study_and_it_validates_as_written(tmp_path):
    """As a reader would: saved to a file, `repro validate` on it."""
    (study,) = _whole_studies()
    path = tmp_path / "mine.yaml"
    path.write_text(study, encoding="utf-8")
    out = CliRunner().invoke(main, ["validate", str(path)])
    assert out.exit_code == 0, out.output
    assert f"mine  ({path})  valid" in out.output


@pytest.mark.parametrize("fragment", _fragments(), ids=lambda b: b.split(":", 1)[0])
def test_each_fragment_of_a_study_in_the_readme_validates_inside_the_whole_one(tmp_path, fragment):
    """A fragment's top-level keys replace or join the whole study's; the sources its
    checkpoints and claims name (the fragment does not declare them) are added as stand-ins."""
    (whole,) = _whole_studies()
    study, part = yaml.safe_load(whole), yaml.safe_load(fragment)
    study.update(part)
    for item in [*part.get("checkpoints", []), *part.get("claims", [])]:
        study["sources"].setdefault(item["source"], {"title": "stand-in", "authors": "tests"})
    path = tmp_path / "fragment.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    try:
        load_study(path)
    except StudyError as exc:
        pytest.fail("\n".join(map(str, exc.problems)) + f"\nin the README's fragment:\n{fragment}")


def test_the_blocks_are_found():
    """The extraction itself: the whole study and both fragments (executor, checkpoints)."""
    assert len(_whole_studies()) == 1
    assert sorted(next(iter(yaml.safe_load(b))) for b in _fragments()) == ["executor", "layouts"]


def test_where_things_live_names_every_module():
    """A module added without a line in the map is one a newcomer cannot find in a minute."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Where things live") :]
    section = section[: section.index("\n## ", 1)]
    modules = [
        p for p in (ROOT / "harness").rglob("*.py") if p.stem not in ("__init__", "__main__")
    ]
    unnamed = [str(p.relative_to(ROOT)) for p in modules if f"{p.name}`" not in section]
    assert not unnamed, f"README's 'Where things live' does not name: {unnamed}"
