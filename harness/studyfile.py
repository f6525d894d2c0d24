"""Reading a study YAML: expand the short forms, validate, and explain every problem.

The pipeline is: YAML (duplicate keys refused) -> expand short forms (model names, named
recipes, ``extends:``) -> pydantic validation against :mod:`harness.schema` -> cross-reference
checks (claims to experiments and sources). Every problem becomes a :class:`Problem` naming the
file, the line, the field path, what was given and what is allowed; all problems of a file are
reported together so a person can fix them in one pass.
"""

from __future__ import annotations

import copy
import json
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from harness.checkpoints import transform_misfit
from harness.claimtable import claim_id
from harness.kinds import KIND_TAG, REGISTER, Tagged, tagged_by
from harness.near import listing, near_names
from harness.plan import nominal_batches_per_epoch, resolved_config
from harness.plural import plural
from harness.schedule import Length
from harness.schema import (
    CHECKPOINT_METRICS,
    SHA256,
    SLUG,
    AnyClaim,
    Claim,
    Experiment,
    OrderingClaim,
    Recipe,
    StatedFloat,
    Study,
)
from harness.zoo import TOO_LARGE, ModelSpec, UnknownModelError, spec_from_name

Loc = tuple[str | int, ...]
MISSING = "required field is missing"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str
    given: str | None = None
    allowed: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        head = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        lines = [head]
        if self.given is not None:
            lines.append(f"    given:   {self.given}")
        if self.allowed is not None:
            lines.append(f"    allowed: {self.allowed}")
        return "\n".join(lines)


class StudyError(Exception):
    """A study file that cannot be used; carries every problem found in it, and what waits
    for them to be fixed (a line, not a problem: ``count`` leaves it out)."""

    def __init__(self, problems: list[Problem], count: int | None = None) -> None:
        self.problems = problems
        self.count = len(problems) if count is None else count
        super().__init__("\n".join(str(p) for p in problems))


def load_study(path: str | Path) -> Study:
    """Load and validate one study file; raise StudyError listing every problem."""
    path = Path(path)
    name = str(path)
    raw, nodes = _read_yaml(path)
    if is_queue(raw):
        where = _line_of(nodes, ("items",))
        raise StudyError([Problem(name, where, "items", QUEUE_NOT_STUDY.format(path=name))])
    expander = _Expander(raw)
    data = expander.expand()
    problems = list(expander.problems)
    study: Study | None = None
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        problems.extend(_from_pydantic(exc, expander))
    waiting = 0
    if study is not None:
        problems.extend(_cross_references(study))
    else:
        # Checked now on what did parse, so that a newcomer fixes the file in one round.
        early, waiting = _early_references(data, problems)
        problems.extend(early)
    if problems:
        located = [
            Problem(name, _line_of(nodes, p.path_loc), _format_loc(p.path_loc), *p.rest)
            for p in _dedupe(problems)
        ]
        count = len(located)  # the problems, not the line that says what waits for them
        if waiting:
            refs = plural(waiting, "cross-reference")
            located.append(Problem(name, None, "", WAITING.format(count=refs)))
        raise StudyError(located, count)
    assert study is not None
    return study


# The harness reads two kinds of YAML file; given one where the other belongs, the
# other's schema would list every key as unknown instead of saying what the file is.
QUEUE_NOT_STUDY = ("this is an evidence queue (it has `items:`), not a study: `repro validate "
                   "{path}` checks it, `repro queue {path}` trains it and `repro status "
                   "--queue {path}` shows where it stands")  # fmt: skip
STUDY_NOT_QUEUE = ("this is a study (it has `experiments:`), not an evidence queue: `repro "
                   "run {path}` trains it; a queue's `items:` name studies "
                   "(see queue.yaml)")  # fmt: skip


def is_queue(raw: Any) -> bool:
    """A queue file's top level has items and no experiments (a study's has experiments)."""
    return isinstance(raw, dict) and "items" in raw and "experiments" not in raw


def is_study(raw: Any) -> bool:
    return isinstance(raw, dict) and "experiments" in raw and "items" not in raw


def looks_like_queue(path: str | Path) -> bool:
    """Whether the file at ``path`` reads as a queue file; False for anything unreadable,
    whose problems loading it as a study will name."""
    try:
        return is_queue(_read_yaml(Path(path))[0])
    except StudyError:
        return False


def yaml_problems(
    path: Path, model: type[BaseModel], what: str
) -> tuple[list[Problem], Any, yaml.Node | None]:
    """Read another YAML file of the harness (a queue, ``what``) the way a study is read:
    its problems (file:line, field, given, allowed) in this module's words, its data, and
    its nodes for the lines of later problems."""
    text_problems: list[Problem] = []
    try:
        raw, nodes = _read_yaml(path, what)
    except StudyError as exc:
        return exc.problems, None, None
    if what == "queue" and is_study(raw):
        problem = Problem(str(path), _line_of(nodes, ("experiments",)), "experiments",
                          STUDY_NOT_QUEUE.format(path=path))  # fmt: skip
        return [problem], None, nodes
    try:
        data = model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc, parent = _display_loc(err["loc"], model)
            p = _explain(err, loc, parent)
            text_problems.append(
                Problem(str(path), _line_of(nodes, loc), _format_loc(loc), *p.rest)
            )
        return text_problems, None, nodes
    return [], data, nodes


def name_clash(path: str | Path, study: Study, seen: dict[str, str]) -> Problem | None:
    """The problem of a study whose name an earlier file of the same command took (``seen``:
    name -> file, updated here): results are stored by study name."""
    if study.name in seen and Path(seen[study.name]).resolve() == Path(path).resolve():
        return Problem(str(path), None, "", "given twice; name each study file once")
    if study.name in seen:
        return Problem(
            str(path),
            None,
            "name",
            f"study name {study.name!r} is already used by {seen[study.name]}; "
            "results are stored by study name, so names must differ",
        )
    seen[study.name] = str(path)
    return None


def load_studies(paths: Iterable[str | Path]) -> list[Study]:
    """Load several study files; collect the problems of all of them before raising."""
    studies, problems, count = [], [], 0
    seen: dict[str, str] = {}
    for path in paths:
        try:
            study = load_study(path)
        except StudyError as exc:
            problems.extend(exc.problems)
            count += exc.count
            continue
        if clash := name_clash(path, study, seen):
            problems.append(clash)
            count += 1
            continue
        studies.append(study)
    if problems:
        raise StudyError(problems, count)
    return studies


# --------------------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, typing.Hashable):
            # `? [a, b]` or `{[1, 2]: 3}`: YAML allows it, and no study or queue key is one.
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a key is a name or a number, not {_TYPE_WORDS.get(type(key).__name__, 'a set')}; "
                "write `name: value`",
                key_node.start_mark,
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} appears twice in this mapping (first on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_float(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> float:
    """A float that remembers how many decimals the file gave it (a claim's 6.90)."""
    return StatedFloat.from_text(loader.construct_yaml_float(node), node.value)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _construct_int(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> int:
    """A whole number, where one too long for Python to read (over 4,300 digits: a depth
    pasted many times over) is refused at its line instead of ending in a traceback."""
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"a whole number {len(node.value):,} characters long, too long to be "
            "read; no value of a study or queue is near so long", node.start_mark
        ) from None  # fmt: skip


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _read_yaml(path: Path, what: str = "study") -> tuple[dict[str, Any], yaml.Node | None]:
    name = str(path)
    if not path.exists():
        raise StudyError([Problem(name, None, "", "file not found")])
    if path.is_dir():
        raise StudyError([Problem(name, None, "", f"is a directory, not a {what} file")])
    if (size := path.stat().st_size) > MAX_BYTES:
        message = f"is {size:,} bytes; a {what} is a few kilobytes (at most {MAX_BYTES:,} accepted)"
        raise StudyError([Problem(name, None, "", message)])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        # The line of the byte, so that a stray byte pasted into a study can be found.
        line = exc.object[: exc.start].count(b"\n") + 1
        raise StudyError([Problem(name, line, "", f"is not UTF-8 text (byte {exc.start} cannot "
                                  f"be decoded): a {what} file is YAML text; is this the file "
                                  "you meant?")]) from None  # fmt: skip
    except OSError as exc:
        raise StudyError([Problem(name, None, "", f"cannot be read: {exc}")]) from None
    try:
        nodes = yaml.compose(text, Loader=_UniqueKeyLoader)
        if _depth(nodes) > MAX_DEPTH:
            raise RecursionError  # refused alike whatever the interpreter's recursion limit
        try:
            expanded = _expanded_size(nodes)
        except RecursiveAlias as exc:
            raise StudyError([Problem(name, exc.line, "", "the value anchored here (&name) holds "
                                      "an alias of itself (*name), so it never ends: an alias "
                                      "can only repeat a value defined before and outside "
                                      "it")]) from None  # fmt: skip
        if expanded > MAX_NODES:
            raise StudyError([Problem(name, None, "", "expands to more than "
                                      f"{MAX_NODES:,} values through its aliases (&name / "
                                      "*name): an alias that repeats an alias that repeats an "
                                      "alias is a mistake or an attack")])  # fmt: skip
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.reader.ReaderError as exc:
        # A control character (a paste from a terminal, a binary file's bytes): PyYAML says
        # where as a position in "<unicode string>", which names nothing a person has.
        line = text[: exc.position].count("\n") + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise StudyError([Problem(name, line, "", f"not valid YAML: character {char} at column "
                                  f"{column} is not printable, which YAML does not allow: "
                                  "delete it")]) from None  # fmt: skip
    except yaml.YAMLError as exc:
        line, message = _yaml_syntax(exc)
        raise StudyError([Problem(name, line, "", message)]) from None
    except RecursionError:
        # PyYAML composes (and loads) nested values recursively: a few hundred levels exhaust
        # the stack. Where they do depends on the recursion limit (hypothesis raises it in a
        # test run), so anything deeper than MAX_DEPTH is refused here too.
        raise StudyError([Problem(name, _deepest_line(text), "", "nests lists and mappings "
                                  f"too deep to be read (a {what} nests a few levels): is "
                                  "this the file you meant?")]) from None  # fmt: skip
    keys = ("name, description, sources, experiments and claims" if what == "study"
            else "achieved_tflops, rate_source and items")  # fmt: skip
    if raw is None and not text.strip():
        raise StudyError([Problem(name, None, "", f"the file is empty; a {what} is a mapping "
                                  f"with {keys}")])  # fmt: skip
    if raw is None:  # a study cut off in its opening comment, say: from line 1 there is nothing
        raise StudyError([Problem(name, 1, "", "holds no value, only comments, blank lines or "
                                  f"a null; a {what} is a mapping with {keys}")])  # fmt: skip
    if not isinstance(raw, dict):
        raise StudyError(
            [
                Problem(
                    name,
                    1,
                    "",
                    f"a {what} file must be a mapping with {keys}",
                    given=type(raw).__name__,
                )
            ]
        )
    return raw, nodes


_OPENS = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
          yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)  # fmt: skip
_CLOSES = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _deepest_line(text: str) -> int | None:
    """The line where the text nests deepest, read by PyYAML's scanner, which (unlike its
    composer) keeps no stack of calls; as far as it reads, where it stops at a syntax error."""
    depth, deepest, line = 0, 0, None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            depth += isinstance(token, _OPENS) - isinstance(token, _CLOSES)
            if depth > deepest:
                deepest, line = depth, token.start_mark.line + 1
    except yaml.YAMLError:
        pass
    return line


def _yaml_syntax(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The line and message of a YAML syntax error: PyYAML's words, and for the mistakes a
    hand-edited study makes (a tab, a line out of alignment, ``key:value``, a second ``: ``, a
    ``{...}`` left open) what to write instead, since its words alone name parser states."""
    mark, context_mark = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None) or ""
    message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    hint = ""
    if "'\\t'" in problem and mark:
        hint = (f"a tab at column {mark.column + 1}: YAML indents with spaces only; replace "
                "the tab with spaces")  # fmt: skip
    elif problem.startswith("expected <block end>") and mark:
        hint = (f"line {line} (indented {mark.column} spaces) does not line up with the lines "
                "before it: indent a key or list item exactly as the others of its mapping "
                "or list, with spaces")  # fmt: skip
    elif "could not find expected ':'" in problem and context_mark:
        # The scanner gives up a line late: the key without its colon is where it began.
        line = context_mark.line + 1
        hint = ("a key needs ': ' after it, with a space (`epochs: 2`, not `epochs:2`), and "
                "each `key: value` its own line")  # fmt: skip
    elif problem == "mapping values are not allowed here":
        hint = ("a second ': ' on one line: put each key on its own line, or quote a value "
                "that holds ': ' ('like: this')")  # fmt: skip
    elif "flow mapping" in context or "flow sequence" in context:
        opened = f" (opened on line {context_mark.line + 1})" if context_mark else ""
        hint = (f"check the {{...}} or [...]{opened} for a missing comma between entries or "
                "a missing closing brace or bracket")  # fmt: skip
    return line, message + (f"; {hint}" if hint else "")


# A real study is a few kilobytes and a few thousand values; anything far beyond is refused
# before it is built (a YAML alias bomb expands a few lines into billions of values).
MAX_BYTES = 1 << 20
MAX_NODES = 200_000
MAX_DEPTH = 64  # levels of lists and mappings; a study nests about six


def _depth(root: yaml.Node | None) -> int:
    """How deep lists and mappings nest, walked without recursion (an alias's node once)."""
    deepest, seen = 0, set()
    stack = [(root, 1)] if root is not None else []
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in _children(node))
    return deepest


def _expanded_size(root: yaml.Node | None) -> int:
    """How many values the document holds once every alias is expanded, counted on the
    composed graph (where an alias is one shared node) without building anything."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # begun, not done: the entries above them are their descendants
    stack = [(root, False)] if root is not None else []
    while stack:  # iterative post-order: deep nesting must not hit the recursion limit
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if done:
            total = 1 + sum(sizes[id(c)] for c in children)
            sizes[id(node)] = min(total, MAX_NODES + 1)
            open_.discard(id(node))
            continue
        if id(node) in open_:
            raise RecursiveAlias(node.start_mark.line + 1)
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes.get(id(root), 0)


class RecursiveAlias(Exception):
    """A value that holds an alias of itself (`a: &x [*x]`): it never ends, and expanding it
    would fill the memory; ``line`` is where the anchored value starts."""

    def __init__(self, line: int) -> None:
        self.line = line
        super().__init__(line)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """Line of the deepest YAML node along ``loc`` (1-based); keys point at the key itself."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    line = key_node.start_mark.line + 1
                    child = value_node
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --------------------------------------------------------------------------- short forms


@dataclass(frozen=True)
class _RawProblem:
    """A problem before it knows its file and line."""

    path_loc: Loc
    message: str
    given: str | None = None
    allowed: str | None = None

    @property
    def rest(self) -> tuple[str, str | None, str | None]:
        return self.message, self.given, self.allowed


class _Expander:
    """Turns the short forms of a study file into the one shape the schema accepts.

    - ``model: resnet56`` becomes the spec of resnet56 (and ``model_name: resnet56``);
      ``model: {name: wrn-16-4, dropout: 0.3}`` starts from the named spec and changes fields.
    - ``recipe: he2015`` copies the named recipe from the study's ``recipes:``;
      ``recipe: {extends: he2015, batch_size: 64}`` copies it and overrides fields
      (mappings merge key by key; a mapping with a different ``kind`` replaces the old one).
    """

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.problems: list[_RawProblem] = []
        self.resolved_recipes: dict[str, Any] = {}
        # Which named recipe each experiment's recipe came from, to drop duplicate errors.
        self.recipe_origin: dict[int, str] = {}

    def expand(self) -> dict[str, Any]:
        data = copy.deepcopy(self.raw)
        recipes = data.get("recipes")
        if isinstance(recipes, dict):
            for name in recipes:
                self.resolved_recipes[name] = self._resolve_recipe(recipes, name, ())
            data["recipes"] = dict(self.resolved_recipes)
        experiments = data.get("experiments")
        if isinstance(experiments, list):
            for i, exp in enumerate(experiments):
                if isinstance(exp, dict):
                    self._expand_model(exp, ("experiments", i, "model"))
                    self._expand_recipe(exp, i)
        checkpoints = data.get("checkpoints")
        if isinstance(checkpoints, list):
            for i, checkpoint in enumerate(checkpoints):
                if isinstance(checkpoint, dict):
                    self._expand_model(checkpoint, ("checkpoints", i, "model"))
        return data

    def _resolve_recipe(self, recipes: dict[str, Any], name: str, chain: tuple[str, ...]) -> Any:
        body = recipes[name]
        if name in chain:
            cycle = " -> ".join((*chain, name))
            self.problems.append(
                _RawProblem(
                    ("recipes", chain[0], "extends"),
                    f"recipes extend each other in a cycle: {cycle}",
                )
            )
            return {}
        if not isinstance(body, dict) or "extends" not in body:
            return copy.deepcopy(body)
        base_name = body["extends"]
        # Not a name (a mapping or a list there) is no recipe either, and cannot be looked up.
        if not isinstance(base_name, str) or base_name not in recipes:
            self.problems.append(self._unknown_recipe(("recipes", name, "extends"), base_name))
            return {k: v for k, v in body.items() if k != "extends"}
        base = self._resolve_recipe(recipes, base_name, (*chain, name))
        overrides = {k: v for k, v in body.items() if k != "extends"}
        return _merge(base, overrides)

    def _unknown_recipe(self, loc: Loc, name: Any) -> _RawProblem:
        recipes = self.raw.get("recipes")
        declared = recipes if isinstance(recipes, dict) else {}  # else its own problem
        known = sorted(str(k) for k in self.resolved_recipes or declared)
        what = "not a recipe's name: give the name of one of the study's recipes"
        if isinstance(name, str):
            what = "unknown recipe" + _did_you_mean(name, known)
        return _RawProblem(
            loc,
            what,
            given=repr(name),
            allowed=_one_of(known) if known else "a recipe mapping (the study defines no recipes:)",
        )

    def _expand_model(self, exp: dict[str, Any], loc: Loc) -> None:
        model = exp.get("model")
        name = model if isinstance(model, str) else None
        overrides: dict[str, Any] = {}
        if isinstance(model, dict) and "name" in model:
            name = model["name"]
            overrides = {k: v for k, v in model.items() if k != "name"}
            loc = (*loc, "name")
        if name is None:
            return
        try:
            spec = spec_from_name(str(name))
        except UnknownModelError as exc:
            self.problems.append(_RawProblem(loc, exc.message, _show(name), exc.allowed))
            exp["model"] = None
            return
        exp["model"] = {**spec.model_dump(), **overrides}
        changes = ", ".join(f"{k} {v}" for k, v in overrides.items())
        exp.setdefault("model_name", f"{name} ({changes})" if changes else str(name))

    def _expand_recipe(self, exp: dict[str, Any], i: int) -> None:
        recipe = exp.get("recipe")
        loc: Loc = ("experiments", i, "recipe")
        if isinstance(recipe, str):
            base, overrides = recipe, {}
        elif isinstance(recipe, dict) and "extends" in recipe:
            base = recipe["extends"]
            overrides = {k: v for k, v in recipe.items() if k != "extends"}
            loc = (*loc, "extends")
        else:
            return
        if not isinstance(base, str) or base not in self.resolved_recipes:
            self.problems.append(self._unknown_recipe(loc, base))
            exp["recipe"] = None
            return
        exp["recipe"] = _merge(self.resolved_recipes[base], overrides)
        exp.setdefault("recipe_name", str(base))
        self.recipe_origin[i] = str(base)


def _merge(base: Any, overrides: Any) -> Any:
    if not (isinstance(base, dict) and isinstance(overrides, dict)):
        return copy.deepcopy(overrides)
    if "kind" in overrides and overrides.get("kind") != base.get("kind"):
        return copy.deepcopy(overrides)
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = _merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


# --------------------------------------------------------------------------- pydantic errors


def _from_pydantic(exc: ValidationError, expander: _Expander) -> list[_RawProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc, parent = _display_loc(err["loc"])
        # A problem inside a named recipe, or with the recipe as a whole (milestones past its
        # end), is reported once, at the recipe, not again in every experiment that uses it.
        if (
            len(loc) >= 3
            and loc[0] == "experiments"
            and isinstance(loc[1], int)
            and loc[2] == "recipe"
            and (origin := expander.recipe_origin.get(loc[1])) is not None
            and _same_error_in_recipe(exc, origin, loc[3:], err)
        ):
            continue
        problems.append(_explain(err, loc, parent))
    # A misspelt required key shows up twice: unknown 'batch_sise' and missing 'batch_size'.
    # The first, with its did-you-mean, says it all.
    suggested = {
        (p.path_loc[:-1], p.message.rsplit("did you mean ", 1)[1].strip("?'"))
        for p in problems
        if "did you mean" in p.message and p.message.startswith("unknown key")
    }
    renamed = {(*p.path_loc, m[1]) for p in problems if (m := _RENAMED_KIND.search(p.message))}
    return [
        p
        for p in problems
        if not (p.message == MISSING and (p.path_loc[:-1], str(p.path_loc[-1])) in suggested)
        and not (p.message.startswith("unknown key") and p.path_loc in renamed)
    ]


def _same_error_in_recipe(exc: ValidationError, recipe: str, sub: Loc, err: dict) -> bool:
    for other in exc.errors(include_url=False):
        other_loc, _ = _display_loc(other["loc"])
        if other_loc[:2] == ("recipes", recipe) and other_loc[2:] == sub:
            # The whole recipe's complaint, after an experiment's overrides, may be another.
            return other["type"] == err["type"] and (bool(sub) or other["msg"] == err["msg"])
    return False


def _display_loc(loc: Loc, root: type[BaseModel] = Study) -> tuple[Loc, type[BaseModel] | None]:
    """Drop union tags from a pydantic location; also return the model that holds the leaf."""
    shown: list[str | int] = []
    tp: Any = root
    parent: type[BaseModel] | None = None
    for part in loc:
        tp = _strip_optional(tp)
        member = _union_member(tp, part)
        if member is not None:
            tp = member
            continue
        shown.append(part)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            parent = tp
            field = tp.model_fields.get(str(part))
            tp = field.annotation if field else None
        elif typing.get_origin(tp) in (list, tuple):
            parent = None
            args = typing.get_args(tp)
            tp = args[0] if args else None
        elif typing.get_origin(tp) is dict:
            parent = None
            tp = typing.get_args(tp)[1]
        else:
            parent, tp = None, None
    return tuple(shown), parent


def _strip_optional(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    return tp


def _union_member(tp: Any, tag: Any) -> Any:
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    for member in typing.get_args(tp):
        model, tags = member, set()
        if typing.get_origin(member) is typing.Annotated:
            model, *meta = typing.get_args(member)
            tags = {getattr(m, "tag", None) for m in meta}
        if (
            isinstance(model, type)
            and issubclass(model, BaseModel)
            and "kind" in model.model_fields
        ):
            tags |= set(typing.get_args(model.model_fields["kind"].annotation))
        if tag in tags:
            return model
    return None


_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "text",
    "dict": "a mapping (key: value lines)",
    "list": "a list",
    "tuple": "a list",
    "model": "a mapping (key: value lines)",
}


def _explain(err: dict[str, Any], loc: Loc, parent: type[BaseModel] | None) -> _RawProblem:
    kind: str = err["type"]
    ctx = err.get("ctx") or {}
    given = _show(err.get("input"))
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = sorted(parent.model_fields) if parent else []
        return _RawProblem(
            (*loc[:-1], key),
            f"unknown key {key!r}" + _unknown_key_hint(key, err.get("input"), loc, parent),
            allowed=", ".join(allowed) if allowed else None,
        )
    tagged = tagged_by(parent)
    if kind == "missing" and tagged and loc[-1] == "kind":
        # The mapping is the input of a missing key: its other keys may name the kind.
        data = err.get("input")
        return _kind_problem(loc[:-1], data if isinstance(data, dict) else {}, tagged)
    if kind == "missing":
        return _RawProblem(loc, MISSING, allowed=_field_hint(parent, loc))
    if kind == "literal_error" and tagged and loc[-1] == "kind":
        return _kind_problem(loc[:-1], {"kind": err.get("input")}, tagged)
    if kind == "model_type" and (of := tagged_by(_field_class(parent, loc))):
        # `normalization: per_channel`: the kind alone, where a mapping with `kind:` belongs.
        return _kind_problem(loc, err.get("input"), of)
    if kind == "literal_error":
        # A misspelt metric ('test_eror') got the whole list and no pointer into it.
        expected, value = str(ctx.get("expected", "")), err.get("input")
        choices = _QUOTED.findall(expected)
        near = _did_you_mean(value, choices) if isinstance(value, str) else ""
        # A choice cut short ('best' for 'best_validation') is no slip of a letter or two.
        starting = [c for c in choices if isinstance(value, str) and value and c.startswith(value)]
        if not near and len(starting) == 1:
            near = f"; did you mean {starting[0]!r}?"
        return _RawProblem(loc, f"not an allowed value{near}", given, f"one of {expected}")
    if kind == KIND_TAG:
        return _kind_problem(loc, err.get("input"), REGISTER[ctx["what"]])
    if kind == TOO_LARGE:  # a model spec whose net no GPU could train (harness.zoo)
        return _RawProblem(loc, err["msg"], given, ctx["allowed"])
    bounds = {
        "greater_than": ("gt", ">"),
        "greater_than_equal": ("ge", ">="),
        "less_than": ("lt", "<"),
        "less_than_equal": ("le", "<="),
    }
    if kind in bounds:
        key, sign = bounds[kind]
        return _RawProblem(loc, "value out of range", given, f"a number {sign} {ctx.get(key)}")
    if kind in ("too_short", "too_long"):
        return _RawProblem(loc, err["msg"], given, None)
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == SHA256:
        return _RawProblem(loc, "not a SHA-256", given, "64 hex digits in lowercase, as "
                           "`sha256sum FILE` prints them")  # fmt: skip
    if kind == "string_pattern_mismatch":
        return _RawProblem(
            loc,
            "not a valid name" + _as_a_name(err.get("input")),
            given,
            "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    if kind in ("value_error", "assertion_error"):
        return _RawProblem(loc, str(ctx.get("error", err["msg"])), given)
    if loc and loc[-1] == "seeds" and isinstance(err.get("input"), list):
        # `seeds: [0, 1, 2]`, as other tools list them: here it is a count, and runs are
        # seeds 0..N-1, so that every study's seed k is the same training.
        n = len(err["input"])
        return _RawProblem(loc, f"seeds is how many seeds, not which: runs are seeds 0 to N-1; "
                           f"write `seeds: {n}` for {n} runs", given, "a whole number")  # fmt: skip
    if kind.startswith(("float", "int")) and (hint := _yaml_text_number(err.get("input"))):
        return _RawProblem(loc, hint, given, _TYPE_WORDS["int" if kind.startswith("int")
                                                      else "float"])  # fmt: skip
    for word, text in _TYPE_WORDS.items():
        if kind.startswith(word):
            return _RawProblem(loc, "wrong type", given, text)
    return _RawProblem(loc, err["msg"], given)


def _as_a_name(text: Any) -> str:
    """The valid name a paper's spelling of one becomes ("ResNet-32" -> 'resnet-32', "My study"
    -> 'my-study'), offered where there is one: names are folders and command arguments."""
    if not isinstance(text, str):
        return ""
    name = re.sub(r"[^a-z0-9_.-]+", "-", text.strip().lower()).strip("-")
    return f"; did you mean {name!r}?" if re.fullmatch(SLUG, name) else ""


def _kind_problem(loc: Loc, data: Any, tagged: Tagged) -> _RawProblem:
    """One problem for a tagged mapping (``loc``) whose kind is misspelt, missing or not one
    of its kinds, at its `kind:` line: what was given, the kind it is probably a slip for
    (by name, else by the keys it has), and the kinds there are. The keys the class of
    another kind would not know add nothing to it, so none are validated."""
    what, kinds = tagged.what, f"(kinds: {', '.join(tagged.kinds)})"
    if not isinstance(data, dict):
        meant = f": write `{{kind: {data}}}`" if data in tagged.kinds else ""
        return _RawProblem(loc, f"a {what} is a mapping (key: value lines){meant} {kinds}",
                           _show(data))  # fmt: skip
    by_keys = tagged.kind_by_keys(data)
    meant, keys = by_keys if by_keys else ("", ())
    if "kind" not in data and (renamed := _kind_under_another_key(data, tagged)):
        key, value = renamed
        return _RawProblem(loc, f"a {what} names its kind with `kind:`, not `{key}:`: write "
                           f"`kind: {value}` {kinds}")  # fmt: skip
    if "kind" not in data:
        if by_keys and tagged.default is not None:
            return _RawProblem(loc, f"a {what} without `kind:` {tagged.default_means}, but this "
                               f"one has {', '.join(keys)}, the keys of {_a(meant, quote=False)} "
                               f"{what}: add `kind: {meant}`")  # fmt: skip
        if by_keys:
            return _RawProblem(loc, f"a {what} needs `kind:`; its keys ({', '.join(keys)}) are "
                               f"those of {_a(meant)} {what}: add `kind: {meant}` "
                               f"{kinds}")  # fmt: skip
        return _RawProblem(loc, f"a {what} needs `kind:` {kinds}")
    kind = data["kind"]
    near = _did_you_mean(kind, tagged.kinds) if isinstance(kind, str) else ""
    if not near and by_keys:
        near = f"; its keys ({', '.join(keys)}) are those of {_a(meant)} {what}"
    return _RawProblem(
        (*loc, "kind"), f"kind {_show(kind)} is not a {what} kind{near} {kinds}", _show(kind)
    )


def _kind_under_another_key(data: dict[str, Any], tagged: Tagged) -> tuple[str, str] | None:
    """The key and kind of a mapping that names one of its kinds under a key of its own
    choosing (`type: cosine`, as other tools spell it), where it has no `kind:`."""
    known = {k for c in tagged.variants.values() for k in c.model_fields}
    for key, value in data.items():
        if key not in known and isinstance(value, str) and value in tagged.kinds:
            return str(key), value
    return None


# The key a kind problem says was used for `kind:`; its own "unknown key" problem adds nothing.
_RENAMED_KIND = re.compile(r"names its kind with `kind:`, not `([^`]+):`")


def _a(kind: str, quote: bool = True) -> str:
    """A kind with its article: "an 'ordering'", "a 'multistep'"."""
    return ("an " if kind[:1] in "aeiou" else "a ") + (repr(kind) if quote else kind)


def _unknown_key_hint(key: str, value: Any, loc: Loc, parent: type[BaseModel] | None) -> str:
    """What an unknown key is, where it is a kind's: a key of another kind of the same
    mapping (`milestones` in a cosine schedule), or a `kind:` in a mapping that has no kinds
    (a warm-up, the executor settings, whose keys may be what the kind named)."""
    allowed = sorted(parent.model_fields) if parent else []
    tagged = tagged_by(parent)
    mine = tagged.kind_of(parent) if tagged and parent else None
    owners = tagged.owners(key) if tagged else []
    if tagged and mine and owners:
        return f": it is a key of {_a(owners[0])} {tagged.what}, and this one is {mine!r}"
    if key == "kind" and parent is not None and tagged is None:
        where = f"`{_format_loc(loc[:-1])}`" if loc[:-1] else "this file"
        # `executor: {kind: slurm}`: the settings of the kind meant go under its own key.
        named = _field_class(parent, (value,)) if isinstance(value, str) else None
        settings = isinstance(named, type) and issubclass(named, BaseModel)
        hint = f"; give `{value}:` (a mapping of its settings) instead" if settings else ""
        return f": {where} has no kinds{hint}"
    if (moved := _whose_key(key, value, parent)) is not None:
        return moved
    return _did_you_mean(key, allowed)


def _whose_key(key: str, value: Any, parent: type[BaseModel] | None) -> str | None:
    """Where a key of the model or of the recipe belongs when it is written beside them
    (`dropout: 0.3` in a recipe, `batch_size: 64` in an experiment): the experiment's
    `model:` or `recipe:` takes a mapping that changes a field of the named one."""
    scalar = isinstance(value, int | float | str) and not isinstance(value, bool)
    shown = f"{key}: {value}" if scalar else f"{key}: ..."
    if parent in (Recipe, Experiment) and key in ModelSpec.model_fields:
        here = "a recipe" if parent is Recipe else "an experiment"
        return (
            f": it is a field of the model, not of {here}; change it in the experiment, "
            f"`model: {{name: <model>, {shown}}}`"
        )
    if parent is Experiment and key in Recipe.model_fields:
        return (
            ": it is a field of the recipe; change it for this experiment, "
            f"`recipe: {{extends: <recipe>, {shown}}}`"
        )
    return None


# The choices in pydantic's "'a', 'b' or 'c'" of a literal error.
_QUOTED = re.compile(r"'([^']*)'")
_TEXT_EXPONENT = re.compile(r"[+-]?(\d+)(\.\d*)?[eE]([+-]?\d+)")


def _yaml_text_number(value: Any) -> str | None:
    """Why YAML made text of what looks like a number (5e-4, 1e-1), and how to write it:
    YAML 1.1, which PyYAML reads, needs a dot in the mantissa and a sign in the exponent."""
    if not isinstance(value, str) or not (m := _TEXT_EXPONENT.fullmatch(value.strip())):
        return None
    digits, fraction, exponent = m.groups()
    sign = "" if exponent.startswith(("+", "-")) else "+"
    fixed = f"{value.strip()[: m.start(1)]}{digits}{fraction or '.0'}e{sign}{exponent}"
    return (f"wrong type: YAML 1.1 reads {value.strip()} as text, not a number (it needs a "
            f"decimal point and a signed exponent); write {fixed} "
            f"(or {float(value)!r})")  # fmt: skip


def _field_class(parent: type[BaseModel] | None, loc: Loc) -> Any:
    """The class of the field at the end of ``loc``, if ``parent`` has it."""
    field = parent.model_fields.get(str(loc[-1])) if parent is not None and loc else None
    return _strip_optional(field.annotation) if field else None


def _field_hint(parent: type[BaseModel] | None, loc: Loc) -> str | None:
    if parent is None or not loc:
        return None
    field = parent.model_fields.get(str(loc[-1]))
    return field.description if field and field.description else None


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = near_names(word, choices)
    return f"; did you mean {close[0]!r}?" if close else ""


def _one_of(choices: Iterable[str]) -> str:
    return "one of " + listing(choices)


def _dedupe(problems: list[_RawProblem]) -> list[_RawProblem]:
    seen, out = set(), []
    for p in problems:
        key = (p.path_loc, p.message)
        # Once a field failed to expand, pydantic's complaint about the same field adds nothing.
        if key in seen or any(p.path_loc[: len(q)] == q and q for q in _failed_roots(out)):
            continue
        seen.add(key)
        out.append(p)
    return out


MODEL_OR_RECIPE = ("model", "recipe")


def _failed_roots(problems: list[_RawProblem]) -> list[Loc]:
    roots = []
    for p in problems:
        loc = p.path_loc
        if loc and loc[-1] in ("name", "extends"):
            loc = loc[:-1]
        if len(loc) == 3 and loc[0] in ("experiments", "checkpoints") and loc[2] in MODEL_OR_RECIPE:
            roots.append(loc)
    return roots


# --------------------------------------------------------------------------- warnings


def study_warnings(path: str | Path, study: Study) -> list[Problem]:
    """What a valid study does that its author may not mean, at its line in ``path``."""
    try:
        _, nodes = _read_yaml(Path(path))
    except StudyError:  # read a moment ago; gone since, the warnings go without lines
        nodes = None
    found = _same_training(list(enumerate(study.experiments)))
    return [Problem(str(path), _line_of(nodes, p.path_loc), _format_loc(p.path_loc), *p.rest)
            for p in found]  # fmt: skip


def _same_training(experiments: list[tuple[int, Experiment]]) -> list[_RawProblem]:
    """Two experiments of one study that train the same thing under two names: every seed is
    trained twice. Twins across studies are trained once (harness.twins adopts a complete
    one), but within a study both train. A warning, not a refusal: training one config twice
    at the same seeds is how run-to-run nondeterminism is measured, and claims of several
    sources can already name one experiment, which the warning says."""
    problems: list[_RawProblem] = []
    first: dict[str, tuple[int, str]] = {}
    for i, exp in experiments:
        # The run's config without its seed: names, notes and `follows` are not in it.
        key = json.dumps(resolved_config(exp, exp.recipe, 0, ""), sort_keys=True)
        if key not in first:
            first[key] = (i, exp.name)
            continue
        j, name = first[key]
        message = (
            f"warning: trains exactly what experiments[{j}] ({name!r}) trains (the same model "
            "and recipe once the short forms are expanded), so `repro run` trains every seed "
            f"twice; unless that is the point, remove this one and let its claims name "
            f"{name!r} (claims of several sources may name one experiment), or change what "
            "should differ"
        )
        problems.append(_RawProblem(("experiments", i), message, repr(exp.name)))
    return problems


# --------------------------------------------------------------------------- cross-references


def _cross_references(study: Study) -> list[_RawProblem]:
    problems: list[_RawProblem] = []
    names = [e.name for e in study.experiments]
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            problems.append(_repeated_experiment(i, name, first[name]))
        first.setdefault(name, i)
    sources = sorted(study.sources)
    for i, exp in enumerate(study.experiments):
        if exp.follows is not None and exp.follows not in study.sources:
            problems.append(_unknown(("experiments", i, "follows"), exp.follows, sources, "source"))
    problems.extend(_check_checkpoints(study, first))
    problems.extend(_claims_told_apart(list(enumerate(study.claims))))
    ids: dict[str, int] = {}
    for i, claim in enumerate(study.claims):
        loc: Loc = ("claims", i)
        if claim.id is not None and claim.id in ids:
            problems.append(_repeated_id(i, claim.id, ids[claim.id]))
        if claim.id is not None:
            ids.setdefault(claim.id, i)
        if claim.source not in study.sources:
            problems.append(_unknown((*loc, "source"), claim.source, sources, "source"))
        if isinstance(claim, Claim) and claim.checkpoint is not None:
            problems.extend(_check_checkpoint_claim(study, claim, loc))
        elif isinstance(claim, Claim):
            problems.extend(_check_value_claim(study, claim, loc, names))
        elif isinstance(claim, OrderingClaim):
            for j, name in enumerate(claim.experiments):
                if name not in first:
                    problems.append(_unknown((*loc, "experiments", j), name, names, "experiment"))
            problems.extend(
                problem
                for name in claim.experiments
                if name in first
                and (problem := _check_epoch(study, claim.epoch, name, (*loc, "epoch")))
            )
            problems.extend(_listed_twice(loc, claim.experiments))
    return problems


# What cannot be checked before the study as a whole is valid, said in one line so that a
# second round of problems does not come as a surprise.
WAITING = ("{count} not checked until the problems above are fixed (a name "
           "where an entry's name could not be read, a claim against a malformed experiment "
           "or claim): run `repro validate` again then")  # fmt: skip
_ANY_CLAIM = TypeAdapter(AnyClaim)


def _early_references(data: Any, found: list[_RawProblem]) -> tuple[list[_RawProblem], int]:
    """The cross-references of a study that failed validation, checked on what did parse:
    names against the names given (a claim naming an experiment whose entry is malformed
    names a known experiment), and the checks that need whole entries (a claim's epoch and
    rule against its experiment, claims told apart) on the entries valid on their own. Also
    how many checks must wait for the rest: a name absent from a list in which some entry's
    name could not be read (it may be that entry's), a claim or experiment that a malformed
    one may turn out to repeat. A field with a problem of its own is not checked again."""
    if not isinstance(data, dict):
        return [], 0
    bad = [p.path_loc for p in found]

    def broken(loc: Loc) -> bool:
        return any(q[: len(loc)] == loc for q in bad)

    problems: list[_RawProblem] = []
    waiting = 0

    def listed(key: str) -> tuple[list[Any], dict[str, int] | None, bool]:
        entries = data.get(key, [])
        if not isinstance(entries, list):
            return [], None, False
        names: dict[str, int] = {}
        for i, entry in enumerate(entries):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.setdefault(entry["name"].strip(), i)
        complete = all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries)
        return entries, names, complete

    def keyed(key: str) -> dict[str, int] | None:
        entries = data.get(key, {})
        return {str(k): 0 for k in entries} if isinstance(entries, dict) else None

    def check(loc: Loc, value: Any, known: dict[str, int] | None, complete: bool, what: str):
        nonlocal waiting
        if not isinstance(value, str) or broken(loc):
            return True  # missing or malformed: its own problem says so
        if known is not None and value.strip() in known:
            return True
        if known is None or not complete:
            waiting += 1
            return False
        problems.append(_unknown(loc, value.strip(), sorted(known), what))
        return False

    sources, layouts = keyed("sources"), keyed("layouts")
    experiments, exp_names, exps_complete = listed("experiments")
    checkpoints, ckpt_names, ckpts_complete = listed("checkpoints")
    valid_exps: dict[str, Experiment] = {}
    for i, exp in enumerate(experiments):
        if not isinstance(exp, dict):
            continue
        name = exp.get("name")
        if isinstance(name, str) and exp_names and exp_names[name.strip()] != i:
            problems.append(_repeated_experiment(i, name.strip(), exp_names[name.strip()]))
        check(("experiments", i, "follows"), exp.get("follows"), sources, True, "source")
        if (one := _valid(Experiment, exp, ("experiments", i), broken)) is not None:
            valid_exps.setdefault(one.name, one)
    for i, ckpt in enumerate(checkpoints):
        if not isinstance(ckpt, dict):
            continue
        loc: Loc = ("checkpoints", i)
        name = ckpt.get("name")
        if isinstance(name, str) and name.strip() in exp_names and not broken((*loc, "name")):
            first = f"experiments[{exp_names[name.strip()]}]"
            problems.append(_RawProblem((*loc, "name"), SHARED_NAME.format(other=first),
                                        repr(name.strip())))  # fmt: skip
        elif isinstance(name, str) and ckpt_names[name.strip()] != i and not broken((*loc, "name")):
            first = f"checkpoints[{ckpt_names[name.strip()]}]"
            problems.append(_RawProblem((*loc, "name"), SHARED_NAME.format(other=first),
                                        repr(name.strip())))  # fmt: skip
        check((*loc, "source"), ckpt.get("source"), sources, True, "source")
        check((*loc, "layout"), ckpt.get("layout"), layouts, True, "layout")
    seeds = data.get("seeds", 1)
    partial = Study.model_construct(
        experiments=list(valid_exps.values()),
        seeds=seeds if isinstance(seeds, int) and not broken(("seeds",)) else None,
    )
    claims = data.get("claims", [])
    claims = claims if isinstance(claims, list) else []
    ids: dict[str, int] = {}
    valid_claims: list[tuple[int, Claim | OrderingClaim]] = []
    for i, claim in enumerate(claims):
        if not isinstance(claim, dict):
            continue
        loc = ("claims", i)
        if isinstance(claim.get("id"), str) and not broken((*loc, "id")):
            if claim["id"].strip() in ids:
                problems.append(_repeated_id(i, claim["id"].strip(), ids[claim["id"].strip()]))
            ids.setdefault(claim["id"].strip(), i)
        check((*loc, "source"), claim.get("source"), sources, True, "source")
        kind = claim.get("kind", "value")
        named = True
        if kind == "ordering" and isinstance(claim.get("experiments"), list):
            listed_names = claim["experiments"]
            if not broken((*loc, "experiments")):
                problems.extend(_listed_twice(loc, listed_names))
            for j, name in enumerate(listed_names):
                named &= check((*loc, "experiments", j), name, exp_names, exps_complete,
                               "experiment")  # fmt: skip
        elif kind == "value" and "checkpoint" in claim:
            named = check((*loc, "checkpoint"), claim["checkpoint"], ckpt_names, ckpts_complete,
                          "checkpoint")  # fmt: skip
        elif kind == "value":
            named = check((*loc, "experiment"), claim.get("experiment"), exp_names,
                          exps_complete, "experiment")  # fmt: skip
        one = _valid(_ANY_CLAIM, claim, loc, broken)
        if one is not None:
            valid_claims.append((i, one))
        if not named:
            continue
        subjects = [one.experiment] if isinstance(one, Claim) and one.checkpoint is None else []
        subjects = one.experiments if isinstance(one, OrderingClaim) else subjects
        if one is None or any(n not in valid_exps for n in subjects) or partial.seeds is None:
            # Its epoch and rule against its experiment wait for the malformed parts.
            waiting += "epoch" in claim or "rule" in claim
        elif isinstance(one, Claim) and one.checkpoint is not None:
            fake = types.SimpleNamespace(checkpoints=[types.SimpleNamespace(name=one.checkpoint)])
            problems.extend(_check_checkpoint_claim(fake, one, loc))
        elif isinstance(one, Claim):
            problems.extend(_check_value_claim(partial, one, loc, list(valid_exps)))
        else:
            problems.extend(
                p
                for n in one.experiments
                if (p := _check_epoch(partial, one.epoch, n, (*loc, "epoch")))
            )
    problems.extend(_claims_told_apart(valid_claims))
    told = {i for i, _ in valid_claims}
    # A malformed claim without an id may turn out to be about what another one is about.
    waiting += sum(
        1
        for i, claim in enumerate(claims)
        if i not in told and isinstance(claim, dict) and "id" not in claim
        and any(_same_subject(claim, other) for j, other in enumerate(claims) if j != i)
    )  # fmt: skip
    return problems, waiting


def _valid(model: Any, raw: dict[str, Any], loc: Loc, broken) -> Any:
    """The entry at ``loc`` validated on its own; None where it has problems."""
    if broken(loc):
        return None
    validate = model.validate_python if isinstance(model, TypeAdapter) else model.model_validate
    try:
        return validate(raw)
    except ValidationError:  # a problem reported elsewhere (its named recipe's)
        return None


def _same_subject(claim: dict[str, Any], other: Any) -> bool:
    """Whether two claims as written (neither with an id) are about the same runs."""
    if not isinstance(other, dict) or "id" in other or claim.get("source") != other.get("source"):
        return False

    def subject(c: dict[str, Any]) -> Any:
        names = c.get("experiments")
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return tuple(sorted(names))
        return (c.get("experiment"), c.get("checkpoint"))

    return subject(claim) == subject(other)


def _repeated_experiment(i: int, name: str, first: int) -> _RawProblem:
    return _RawProblem(
        ("experiments", i, "name"),
        f"experiment name repeated (first used by experiments[{first}])",
        repr(name),
        "a name not used by another experiment",
    )


def _repeated_id(i: int, claim_id_: str, first: int) -> _RawProblem:
    # `repro compare` knows a claim by its id from one night to the next: one id, one claim.
    return _RawProblem(
        ("claims", i, "id"),
        f"claim id repeated (first used by claims[{first}])",
        repr(claim_id_),
        "an id not used by another claim",
    )


def _claims_told_apart(claims: list[tuple[int, Claim | OrderingClaim]]) -> list[_RawProblem]:
    """`repro compare` knows a claim by its claim_id from one night to the next; two claims
    without an `id:` that are about the same thing get the same one, and once their verdicts
    differ the nightly comparison cannot tell them apart. Refused here, at `repro validate`,
    on the second claim, rather than failing a night later. Repeated explicit ids are refused
    beside the claim's other fields (_cross_references)."""
    problems: list[_RawProblem] = []
    first: dict[str, int] = {}
    by_index = dict(claims)
    for i, claim in claims:
        if claim.id is not None:
            continue
        identity = claim_id(claim)
        if identity not in first:
            first[identity] = i
            continue
        j = first[identity]
        if claim.model_dump() == by_index[j].model_dump():
            message = f"duplicate claim: the same as claims[{j}], field for field; delete one"
        else:
            message = (
                f"this claim and claims[{j}] are about the same thing ({identity}), so "
                "`repro compare` cannot tell their verdicts apart; give each an `id:` (a "
                "name unique in this study), or merge them if they are one claim"
            )
        problems.append(_RawProblem(("claims", i), message))
    return problems


def _check_value_claim(study: Study, claim: Claim, loc: Loc, names: list[str]) -> list[_RawProblem]:
    if claim.experiment not in names:
        return [_unknown((*loc, "experiment"), claim.experiment, names, "experiment")]
    problems = [_check_epoch(study, claim.epoch, claim.experiment, (*loc, "epoch"))]
    seeds = study.seeds_of(study.experiment(claim.experiment))
    if claim.rule.n > seeds and claim.metric != "params":
        problems.append(
            _RawProblem(
                (*loc, "rule"),
                f"the source reports the {claim.rule} runs, but experiment "
                f"{claim.experiment!r} has {plural(seeds, 'seed')}; give it "
                f"`seeds: {claim.rule.n}`",
                str(claim.rule),
                f"a rule over at most {plural(seeds, 'run')}",
            )
        )
    return [p for p in problems if p is not None]


SHARED_NAME = ("name already used by {other}; experiments and checkpoints share the store, so "
               "their names must differ: rename this one (and any claim that names "
               "it)")  # fmt: skip


def _listed_twice(loc: Loc, names: list[Any]) -> list[_RawProblem]:
    """An ordering claim that names one experiment twice, at the repeat: the metric cannot
    both rise and fall from a run to itself, so one of the two is a slip for another name."""
    problems: list[_RawProblem] = []
    first: dict[str, int] = {}
    for j, name in enumerate(names):
        if not isinstance(name, str):
            continue  # not a name: its own problem says so
        if name.strip() in first:
            message = (
                f"experiment {name.strip()!r} is listed twice (also at "
                f"{_format_loc((*loc, 'experiments', first[name.strip()]))}): an ordering "
                "compares different experiments, "
                "each once; remove the repeat or name the experiment meant"
            )
            problems.append(_RawProblem((*loc, "experiments", j), message, _show(list(names))))
        first.setdefault(name.strip(), j)
    return problems


def _check_checkpoints(study: Study, experiments: dict[str, int]) -> list[_RawProblem]:
    """Names unique beside the experiments (both are directories of the store), layouts and
    sources that exist, and transforms that fit the model."""
    problems: list[_RawProblem] = []
    seen: dict[str, int] = {}
    layouts, sources = sorted(study.layouts), sorted(study.sources)
    for i, checkpoint in enumerate(study.checkpoints):
        loc: Loc = ("checkpoints", i)
        name = checkpoint.name
        if name in experiments or name in seen:
            other = (
                f"experiments[{experiments[name]}]"
                if name in experiments
                else f"checkpoints[{seen[name]}]"
            )
            problems.append(_RawProblem((*loc, "name"), SHARED_NAME.format(other=other),
                                        repr(name)))  # fmt: skip
        seen.setdefault(name, i)
        if checkpoint.source is not None and checkpoint.source not in study.sources:
            problems.append(_unknown((*loc, "source"), checkpoint.source, sources, "source"))
        layout = study.layouts.get(checkpoint.layout)
        if layout is None:
            problems.append(_unknown((*loc, "layout"), checkpoint.layout, layouts, "layout"))
            continue
        for transform in layout.transforms:
            if (why := transform_misfit(transform, checkpoint.model)) is not None:
                message = f"layout {checkpoint.layout!r} declares transform {transform!r}, {why}"
                problems.append(_RawProblem((*loc, "model"), message))
    return problems


def _check_checkpoint_claim(study: Study, claim: Claim, loc: Loc) -> list[_RawProblem]:
    names = [c.name for c in study.checkpoints]
    if claim.checkpoint not in names:
        return [_unknown((*loc, "checkpoint"), claim.checkpoint, names, "checkpoint")]
    problems = []
    if claim.metric not in CHECKPOINT_METRICS:
        message = "a released checkpoint is judged on the test set and its architecture only"
        problems.append(
            _RawProblem((*loc, "metric"), message, repr(claim.metric), _one_of(CHECKPOINT_METRICS))
        )
    if claim.rule.kind != "single":
        message = "a checkpoint is one set of weights: its claims are single-run claims"
        problems.append(_RawProblem((*loc, "rule"), message, str(claim.rule), "single"))
    return problems


def _check_epoch(study: Study, epoch: int | None, name: str, loc: Loc) -> _RawProblem | None:
    """A claim about epoch k of an experiment that trains fewer epochs can never be checked."""
    if epoch is None:
        return None
    recipe = study.experiment(name).recipe
    epochs = Length.of(recipe, nominal_batches_per_epoch(recipe)).epochs
    if epoch <= epochs:
        return None
    return _RawProblem(loc, f"epoch {epoch} is beyond the end of training: the run has {epochs} "
                            f"epochs ({name})", str(epoch), f"1 to {epochs}")  # fmt: skip


def _unknown(loc: Loc, name: str, known: list[str], what: str) -> _RawProblem:
    return _RawProblem(
        loc,
        f"no {what} named {name!r}" + _did_you_mean(name, known),
        repr(name),
        _one_of(known) if known else None,
    )
