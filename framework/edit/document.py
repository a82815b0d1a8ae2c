"""agent.yaml as the editor changes it: the framework's reading of the text, and form data merged
back into the text with ruamel.yaml's round trip, so the user's comments, key order, quotes and
blank lines survive every edit made in the form.

The data the page edits is what the framework reads (PyYAML, YAML 1.1: `yes` is true, `010` is 8);
ruamel.yaml reads YAML 1.2. So merge compares the new data with the framework's reading of the old
text, and touches only the values that differ: an unchanged `stream: yes` stays as written. New
text values that YAML 1.1 would read as something else (yes, no, on, 010, 1:30, ~) are quoted.

ruamel.yaml keeps the comment lines that follow an entry on that entry (the lines above the next
key belong to the previous one). When an entry is deleted or rewritten, those lines are moved to
the entry that now precedes the next key, so a comment stays above the key it describes.
"""

from __future__ import annotations

import base64
import datetime
import io
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.error import YAMLError as RuamelError
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.tokens import CommentToken

from framework.config.load import parse as _framework_parse
from framework.errors import ConfigError, Problem

_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()


def parse(text: str) -> Any:
    """The data of the text exactly as `validate` reads it; ConfigError (located) when it does not parse."""
    return _framework_parse(text).data


def jsonable(value: Any) -> Any:
    """The data as JSON can carry it to the page (YAML dates become their ISO text)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):  # !!set
        return [jsonable(item) for item in sorted(value, key=repr)]
    if isinstance(value, bytes):  # !!binary
        return base64.b64encode(value).decode("ascii")
    return value


def same(old: Any, new: Any) -> bool:
    """Whether new (JSON from the page) says what old (the framework's reading) says: true is not 1,
    but 1 is 1.0 (JavaScript writes 1.0 as 1)."""
    old = jsonable(old)
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(same(old[key], new[key]) for key in old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(same(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return old == new
    return type(old) is type(new) and old == new


class _Representer(RoundTripRepresenter):
    """ruamel's, with new floats written as YAML 1.1 reads them (1e+20 without a dot is text there)."""


_Representer.add_representer(
    float, lambda rep, data: rep.represent_scalar("tag:yaml.org,2002:float",
                                                  yaml.representer.SafeRepresenter().represent_float(data).value))


def _indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as ruamel.yaml's indent() takes them, measured on the first nested
    block map and block list of the text (2, and lists as `key:\n  - item`, where it has none)."""
    found: dict[str, int] = {}

    def walk(node: yaml.Node, column: int) -> None:
        if isinstance(node, yaml.MappingNode):
            if not node.flow_style and column >= 0 and "mapping" not in found:
                found["mapping"] = node.start_mark.column - column
            for key, value in node.value:
                walk(value, key.start_mark.column)
        elif isinstance(node, yaml.SequenceNode):
            if not node.flow_style and column >= 0 and node.value and "offset" not in found:
                found["offset"] = max(node.start_mark.column - column, 0)
                found["sequence"] = found["offset"] + node.value[0].start_mark.column - node.start_mark.column
            for item in node.value:
                walk(item, -1)

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), -1)
    except yaml.YAMLError:  # the framework's reader took it; a guess only
        pass
    if "offset" not in found:  # no block list yet: the usual `key:\n  - item`
        found["offset"] = 2
        found["sequence"] = 4
    return found.get("mapping") or 2, found["sequence"] or 2, found["offset"]


def _yaml(text: str) -> YAML:
    """A round-trip YAML that writes with the file's own indentation and never folds long lines."""
    y = YAML(typ="rt")
    y.Representer = _Representer
    y.preserve_quotes = True
    y.width = 1 << 16
    mapping, sequence, offset = _indentation(text)
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    return y


def merge(text: str, data: Any) -> str:
    """The text with data in it: changed values replaced in place, removed keys deleted, new keys
    appended, a list of another length written anew; comments, key order and blank lines kept.
    The text must parse (ConfigError otherwise)."""
    old = parse(text)
    if same(old, data):
        return text
    y = _yaml(text)
    try:
        tree = y.load(text)
    except RuamelError as error:  # what PyYAML reads and ruamel does not (a NEL line break, a tab before a value)
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        why = getattr(error, "problem", None) or error
        raise ConfigError([Problem("agent.yaml", line, col, "(file)", (
            f"the form cannot be merged into this text ({why}): edit it in the YAML view, or write this line "
            "without tabs or unusual line breaks"))]) from None
    if isinstance(tree, CommentedMap) and isinstance(old, dict) and isinstance(data, dict):
        _merge_map(tree, old, data)
    else:
        tree = _node(data, None)
    merged = _dump(y, tree)
    if not _reads_as(merged, data):  # ruamel garbles a block list opening with `- {}` under a comment
        _flow_lists_opening_with_empty_map(tree)
        merged = _dump(y, tree)
    return merged


def _dump(y: YAML, tree: Any) -> str:
    out = io.StringIO()
    y.dump(tree, out)
    return out.getvalue()


def _reads_as(text: str, data: Any) -> bool:
    try:
        return same(parse(text), data)
    except ConfigError:
        return False


def _flow_lists_opening_with_empty_map(node: Any) -> None:
    """Such lists written [{}, ...], which ruamel gets right (valid, every comment kept, if less tidy)."""
    if isinstance(node, CommentedSeq) and len(node) and isinstance(node[0], CommentedMap) and not len(node[0]):
        node.fa.set_flow_style()
    for child in node.values() if isinstance(node, CommentedMap) else node if isinstance(node, CommentedSeq) else ():
        _flow_lists_opening_with_empty_map(child)


# ---- the walk --------------------------------------------------------------------------------------

def _merge_map(node: CommentedMap, old: dict, new: dict) -> None:
    for key in [key for key in node if key not in new]:
        _delete(node, key)
    if not node and not new:  # a block map with no key left is written {}
        node.fa.set_flow_style()
    for key, value in new.items():
        if key in node:
            _set(node, key, old.get(key), value)
        else:
            _append(node, key, value)


def _set(parent: CommentedMap | CommentedSeq, key: Any, old: Any, new: Any) -> None:
    if same(old, new):
        return
    current = parent[key]
    if isinstance(current, CommentedMap) and isinstance(old, dict) and isinstance(new, dict):
        _merge_map(current, old, new)
        return
    if isinstance(current, CommentedSeq) and isinstance(old, list) and isinstance(new, list) \
            and len(old) == len(new) == len(current):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            _set(current, index, before, after)
        return
    if _leaf(current) and not isinstance(new, (dict, list)):
        parent[key] = _node(new, current)  # the entry's comment token stays where it is
        return
    tail = _take_tail(parent, key)
    header = _token(parent, key)
    if header is not None:  # the comment on the key's line stays; lines above a first child go with it
        header.value = _eol(header.value)
    parent[key] = _node(new, current)
    if header is not None and isinstance(parent[key], (CommentedMap, CommentedSeq)) and len(parent[key]) \
            and not parent[key].fa.flow_style():
        parent[key].ca.comment = [header, None]
    _put_tail(parent, key, tail)


def _delete(node: CommentedMap, key: Any) -> None:
    """Delete key; the comment lines above the next key move up to the entry before it (those
    above the deleted key go with it)."""
    keys = list(node)
    index = keys.index(key)
    tail = _take_tail(node, key)
    del node[key]
    node.ca.items.pop(key, None)
    if index > 0:
        before = _deepest(node, keys[index - 1])
        token = _token(*before)
        if token is not None:
            token.value = _eol(token.value)
        _put_tail(*before, tail)
    elif node.ca.comment and node.ca.comment[0] is not None:  # a nested map's first key
        node.ca.comment[0].value = _eol(node.ca.comment[0].value) + tail
    elif tail:  # the file's first key: the file's opening comments stay, then these
        if not node.ca.comment:
            node.ca.comment = [None, []]
        if node.ca.comment[1] is None:
            node.ca.comment[1] = []
        node.ca.comment[1].append(CommentToken(tail, CommentMark(0)))


def _append(node: CommentedMap, key: Any, value: Any) -> None:
    """A new key at the end of node; the comment lines after node's last entry (above what follows
    node) move after it."""
    tail = _take_tail(node, list(node)[-1]) if len(node) else ""
    node[_key(key)] = _node(value, None)
    _put_tail(node, key, tail)


# ---- new nodes ----------------------------------------------------------------------------------------

def _key(key: Any) -> Any:
    return DoubleQuotedScalarString(key) if isinstance(key, str) and _misread(key) else key


def _misread(text: str) -> bool:
    """Whether YAML 1.1 (the framework's reader) takes the plain text for something else."""
    return _RESOLVER.resolve(yaml.nodes.ScalarNode, text, (True, False)) != _STR_TAG


def _node(value: Any, like: Any) -> Any:
    """A ruamel node for a JSON value, in the style of the node it replaces (quotes, block text,
    flow collections)."""
    if isinstance(value, dict):
        node = CommentedMap((_key(key), _node(item, None)) for key, item in value.items())
        if isinstance(like, (CommentedMap, CommentedSeq)) and like.fa.flow_style():
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        node = CommentedSeq(_node(item, None) for item in value)
        if isinstance(like, (CommentedMap, CommentedSeq)) and like.fa.flow_style():
            node.fa.set_flow_style()
        return node
    if isinstance(value, str):
        if isinstance(like, (LiteralScalarString, FoldedScalarString)) and "\n" in value:
            return LiteralScalarString(value)
        if isinstance(like, (DoubleQuotedScalarString, SingleQuotedScalarString)):
            return type(like)(value)
        return DoubleQuotedScalarString(value) if _misread(value) else value
    return value


# ---- comment tokens --------------------------------------------------------------------------------
# A map entry's token is ca.items[key][2], a list item's ca.items[index][0]: the comment on its
# line, then the whole lines that follow it.

def _leaf(node: Any) -> bool:
    return not isinstance(node, (CommentedMap, CommentedSeq)) or not len(node) or bool(node.fa.flow_style())


def _slot(parent: CommentedMap | CommentedSeq) -> int:
    return 0 if isinstance(parent, CommentedSeq) else 2


def _token(parent: CommentedMap | CommentedSeq, key: Any) -> CommentToken | None:
    entry = parent.ca.items.get(key)
    return entry[_slot(parent)] if entry else None


def _deepest(parent: CommentedMap | CommentedSeq, key: Any) -> tuple[Any, Any]:
    """Where the comment lines after the entry are kept: on its last leaf."""
    while not _leaf(parent[key]):
        parent = parent[key]
        key = list(parent)[-1] if isinstance(parent, CommentedMap) else len(parent) - 1
    return parent, key


def _eol(value: str) -> str:
    """A token's comment on its own line (with the line's end), without the lines after it."""
    end = value.find("\n")
    return value if end < 0 else value[:end + 1]


def _take_tail(parent: CommentedMap | CommentedSeq, key: Any) -> str:
    """Remove and return the whole comment (and blank) lines after the entry."""
    token = _token(*_deepest(parent, key))
    if token is None:
        return ""
    value = token.value
    token.value = _eol(value)
    return value[len(token.value):]


def _put_tail(parent: CommentedMap | CommentedSeq, key: Any, tail: str) -> None:
    if not tail:
        return
    parent, key = _deepest(parent, key)
    token = _token(parent, key)
    if token is None:
        entry = parent.ca.items.setdefault(key, [None, None, None, None])
        entry[_slot(parent)] = CommentToken("\n" + tail, CommentMark(0))
    else:
        token.value = (token.value if token.value.endswith("\n") else token.value + "\n") + tail
