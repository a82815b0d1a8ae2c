"""Load agent.yaml safely, keeping the line and column of every node.

PyYAML's composed nodes carry marks; we compose first, check what plain
construction would hide (duplicate keys, non-text keys), then construct
with the safe constructor only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from framework.errors import ConfigError, Problem

try:  # the C loader composes several times faster; same safety
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

PathT = tuple[str | int, ...]
_IMPLICIT_TAGS = {
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:null",
}


@dataclass
class Document:
    """The data of agent.yaml plus where each value and key stands in the file."""

    file: str
    data: Any
    text: str = ""
    values: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    # plain scalars that YAML turned into bool/int/float/null: path -> text as written
    implicit: dict[PathT, str] = field(default_factory=dict)
    # a stage's document (the agent with stages.<stage> merged in, see config/stages.py): its name,
    # and the paths its block wrote, which messages name as stages.<stage>.<path>
    stage: str | None = None
    staged: frozenset[PathT] = frozenset()

    def label(self, path: PathT) -> str:
        """The path as a message names it: where the value was written."""
        probe = tuple(path)
        while probe and self.stage is not None:
            if probe in self.staged:
                return format_path(("stages", self.stage, *path))
            if probe in self.values:
                break
            probe = probe[:-1]
        return format_path(path)

    def where(self, path: PathT, key: bool = False) -> tuple[int, int]:
        """Line and column of the node at path, else of its nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))


def format_path(path: PathT) -> str:
    """targets.aws.timeout, cors.origins[0]; the whole file is '(top level)'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


# agent.yaml is a few dozen values: a document that expands to far more is an alias bomb
MAX_NODES = 10_000


def _walk(doc: Document, node: yaml.Node, path: PathT, problems: list[Problem],
          inside: frozenset[int] = frozenset()) -> None:
    if id(node) in inside:
        line, col = _mark(node)
        raise ConfigError([Problem(doc.file, line, col, format_path(path), (
            "this alias refers to the value that contains it; write the value out instead"))])
    if len(doc.values) >= MAX_NODES:
        line, col = _mark(node)
        raise ConfigError([Problem(doc.file, line, col, format_path(path), (
            f"the file expands to more than {MAX_NODES} values (through aliases); write the values out instead"))])
    inside = inside | {id(node)}
    doc.values[path] = _mark(node)
    if isinstance(node, yaml.ScalarNode):
        if not node.style and node.tag in _IMPLICIT_TAGS:  # plain style: None (Python) or "" (libyaml)
            doc.implicit[path] = node.value
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            _walk(doc, child, path + (index,), problems, inside)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                line, col = _mark(key_node)
                problems.append(Problem(doc.file, line, col, format_path(path), (
                    "merge keys (<<) are not supported in agent.yaml; write the settings out")))
                continue
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:str"):
                line, col = _mark(key_node)
                if not isinstance(key_node, yaml.ScalarNode):
                    problems.append(Problem(doc.file, line, col, format_path(path), (
                        "a key must be a single word or text, not a list or a mapping")))
                    continue
                text = key_node.value
                problems.append(Problem(doc.file, line, col, format_path(path), (
                    f"the key {text!r} is not read as text by YAML; write it in quotes: \"{text}\":")))
                continue
            key = key_node.value
            if key in seen:
                line, col = _mark(key_node)
                first = seen[key][0]
                problems.append(Problem(doc.file, line, col, format_path(path + (key,)), (
                    f"duplicate key {key!r} (first written on line {first}); keep only one")))
                continue
            seen[key] = _mark(key_node)
            doc.keys[path + (key,)] = _mark(key_node)
            _walk(doc, value_node, path + (key,), problems, inside)


def parse(text: str, file: str = "agent.yaml") -> Document:
    """Parse YAML text into a Document, or raise ConfigError with located problems."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([Problem(file, 1, 1, "(top level)",
                                       "the file is empty; start from the sample agent.yaml")])
        doc = Document(file=file, data=None, text=text)
        problems: list[Problem] = []
        _walk(doc, node, (), problems)
        if problems:
            raise ConfigError(problems)
        doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError([Problem(file, line, col, "(YAML syntax)", (
            f"{what}; check the indentation and that text with ':' or '#' is in quotes"))]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, 1, 1, "(YAML syntax)", str(exc))]) from None
    except RecursionError:
        raise ConfigError([Problem(file, 1, 1, "(YAML syntax)", (
            "the values are nested too deeply; agent.yaml needs only a few levels"))]) from None
    finally:
        loader.dispose()
    return doc


def load(path: str | Path) -> Document:
    """Read and parse agent.yaml; a missing or unreadable file is a located error too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), 1, 1, "(file)", (
            "file not found; create it from the sample agent.yaml or pass -f PATH"))]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(str(path), 1, 1, "(file)", (
            f"not UTF-8 text ({exc.reason}); save the file as UTF-8"))]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(path), 1, 1, "(file)", f"cannot read: {exc.strerror}")]) from None
    return parse(text, file=str(path))
