"""The editor's document: form data merged into agent.yaml's text keeps what the user wrote around it."""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.config.load import parse as framework_parse
from framework.edit.document import jsonable, merge, parse, same
from framework.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "agent.yaml").read_text(encoding="utf-8")

# Comments everywhere ruamel.yaml keeps them differently: on a key's line, above a nested map's first
# key, after a nested map's last key, between list items, at the end; four-space maps, flush lists.
COMMENTED = textwrap.dedent("""\
    # The file's first comment.
    name: fixture-bot   # on name's line

    # above prompt
    prompt: "Be brief."
    concurrency:    # on concurrency's line
        # above max, the nested map's first key
        max: 10
        # above warm
        warm: 0
    # above cors, after concurrency's last key
    cors:
        origins:
        - https://a.example   # on the first origin
        # between the origins
        - https://b.example
    stream: yes
    # above targets
    targets:
        aws: {}
        gcp:
            region: us-central1   # on region's line
    # the file's last comment
    """)


def strict(value):
    """JSON text, where true is not 1 (but 1.0 is 1, as JavaScript writes it)."""
    def numbers(item):
        if isinstance(item, dict):
            return {key: numbers(value) for key, value in item.items()}
        if isinstance(item, list):
            return [numbers(value) for value in item]
        return int(item) if isinstance(item, float) and item.is_integer() and abs(item) < 2**53 else item
    return json.dumps(numbers(value), sort_keys=True)


def edited(text: str, change) -> tuple[dict, str]:
    data = copy.deepcopy(jsonable(parse(text)))
    change(data)
    return data, merge(text, data)


@pytest.mark.parametrize("text", [SAMPLE, COMMENTED], ids=["sample", "commented"])
def test_unchanged_data_gives_the_text_back_byte_for_byte(text):
    assert merge(text, jsonable(parse(text))) == text


def test_a_changed_value_is_replaced_on_its_own_line_keeping_the_comments():
    data, out = edited(SAMPLE, lambda d: d["targets"]["azure"].update(timeout=900))
    assert out == SAMPLE.replace("    timeout: 230\n", "    timeout: 900\n")


def test_a_value_on_a_commented_line_keeps_its_comment():
    _, out = edited(COMMENTED, lambda d: d["targets"]["gcp"].update(region="europe-west1"))
    assert "        region: europe-west1  # on region's line\n" in out  # one column later: a longer value
    assert out.count("\n") == COMMENTED.count("\n")


@pytest.mark.parametrize(("change", "gone", "kept"), [
    (lambda d: d.pop("prompt"), ["# above prompt", "prompt:"], ["# on name's line", "concurrency:"]),
    (lambda d: d["concurrency"].pop("warm"), ["# above warm", "warm:"], ["# above cors, after concurrency's last key"]),
    (lambda d: d["concurrency"].pop("max"), ["max:"], ["# on concurrency's line", "# above warm"]),
    (lambda d: d.pop("concurrency"), ["# above max", "warm:"], ["# above cors, after concurrency's last key"]),
    (lambda d: d["targets"].pop("gcp"), ["region:"], ["# the file's last comment"]),
], ids=["top-level key", "a nested map's last key", "a nested map's first key", "a whole map", "the last entry"])
def test_a_deleted_key_takes_its_own_comments_and_leaves_the_next_keys(change, gone, kept):
    data, out = edited(COMMENTED, change)
    assert strict(parse(out)) == strict(data)
    for line in gone:
        assert line not in out
    for line in kept:
        assert line in out


def test_a_new_key_is_appended_to_its_map_before_the_comments_of_what_follows():
    data, out = edited(COMMENTED, lambda d: d["concurrency"].update(warm_schedule=5))
    assert "    warm: 0\n    warm_schedule: 5\n# above cors, after concurrency's last key\n" in out


def test_a_new_platform_section_uses_the_files_indentation():
    _, out = edited(COMMENTED, lambda d: d["targets"].update(azure={"region": "westeurope", "plan": "flex"}))
    assert out.endswith("    azure:\n        region: westeurope\n        plan: flex\n# the file's last comment\n")


def test_a_list_of_another_length_is_written_anew_in_the_files_list_style():
    data, out = edited(COMMENTED, lambda d: d["cors"].update(origins=["https://c.example"]))
    assert "\ncors:\n    origins:\n    - https://c.example\nstream: yes\n" in out
    assert strict(parse(out)) == strict(data)


@pytest.mark.parametrize("value", ["yes", "no", "on", "off", "010", "0x1F", "1:30", "~", "null", "",
                                   "2024-01-01", "1_000", "true"])
def test_new_text_that_yaml_1_1_would_read_as_another_value_is_quoted(value):
    data, out = edited(COMMENTED, lambda d: d.update(model=value))
    assert parse(out)["model"] == value


def test_an_unchanged_yaml_1_1_word_stays_as_written():
    """stream: yes is true for the framework; a form that did not touch it leaves the word alone."""
    data, out = edited(COMMENTED, lambda d: d.update(model="gpt-4o"))
    assert data["stream"] is True
    assert "stream: yes\n" in out


@pytest.mark.parametrize(("old", "new", "equal"), [
    (True, 1, False), (1, 1.0, True), (1.5, 1.5, True), ("1", 1, False), (None, "", False),
    ({"a": [1, True]}, {"a": [1, True]}, True), ({"a": 1}, {"a": 1, "b": 2}, False), ([1], [1, 1], False),
])
def test_same_compares_as_json_does_across_the_page(old, new, equal):
    assert same(old, new) is equal


# ---- properties: random edits of the sample agent.yaml and of the commented fixture -------------------

_WORDS = st.sampled_from(["yes", "no", "on", "010", "0x1F", "1:30", "~", "null", "", " lead", "trail ",
                          "a: b", "# not a comment", "2024-01-01", "1e3", "-", "'", '"', "{x}", "[1]", "&a", "*a",
                          "!tag", "%", "@", "`", "line\nbreak", "tab\there", "ünï 🤖"])
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85\ufeff")
                | st.sampled_from("\n\t"), max_size=24)
SCALARS = (st.none() | st.booleans() | st.integers(-10**9, 10**9)
           | st.floats(allow_nan=False, allow_infinity=False) | _WORDS | _TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,7}", fullmatch=True), inner, max_size=3),
                      max_leaves=6)
KEYS = st.from_regex(r"[a-z][a-z_]{0,9}", fullmatch=True) | _WORDS.filter(bool)


def _maps(data, path=()):
    if isinstance(data, dict):
        yield path, data
        for key, value in data.items():
            yield from _maps(value, path + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _maps(value, path + (index,))


@st.composite
def edits(draw, text):
    """The text's data after 1 to 5 random changes, deletions and additions at any depth."""
    data = copy.deepcopy(jsonable(parse(text)))
    for _ in range(draw(st.integers(1, 5))):
        _, target = draw(st.sampled_from(list(_maps(data))))
        action = draw(st.sampled_from(["set", "delete", "add"] if target else ["add"]))
        if action == "add":
            key = draw(KEYS.filter(lambda k, taken=target: k not in taken))
            target[key] = draw(VALUES)
        else:
            key = draw(st.sampled_from(sorted(target)))
            if action == "delete":
                del target[key]
            else:
                target[key] = draw(VALUES)
    return data


def _exists(data, path, old) -> bool:
    """Whether path is still in data, through maps and lists of unchanged length only."""
    for part in path:
        if isinstance(part, int):
            if not (isinstance(data, list) and isinstance(old, list) and len(data) == len(old)):
                return False
        elif not (isinstance(data, dict) and part in data):
            return False
        data, old = data[part], old[part]
    return True


def kept_comments(text: str, data) -> list[str]:
    """The comment lines of text whose key is still in data: for a comment on its own line, the next
    key or list item below it; for one after a value, the deepest key or value on that line (`- a: 1  # c`: a)."""
    document = framework_parse(text)
    entries = {**document.keys, **{path: mark for path, mark in document.values.items()
                                   if path and isinstance(path[-1], int)}}
    below = sorted((line, path) for path, (line, _) in entries.items())
    on_line = sorted(((line, len(path)), path) for path, (line, _) in [*document.values.items(),
                                                                         *document.keys.items()])
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("#"):
            comment, owner = line.strip(), next((path for at, path in below if at > number), None)
        elif " # " in line:
            comment = line[line.index(" # "):].strip()
            owner = next((path for (at, _), path in reversed(on_line) if at == number), None)
        else:
            continue
        if owner is None or _exists(data, owner, document.data):
            out.append(comment)
    return out


def _check(text: str, data) -> None:
    out = merge(text, data)
    assert strict(parse(out)) == strict(data)
    remaining = out.splitlines()
    for comment in kept_comments(text, data):
        assert any(comment in line for line in remaining), comment


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.data())
def test_random_edits_of_the_sample_parse_back_and_keep_the_comments_of_remaining_keys(data):
    _check(SAMPLE, data.draw(edits(SAMPLE)))


@FAST
@given(st.data())
def test_random_edits_of_the_commented_fixture_parse_back_and_keep_the_comments_of_remaining_keys(data):
    _check(COMMENTED, data.draw(edits(COMMENTED)))


@pytest.mark.parametrize("value", [[{}, None, False], [{}, 1, 2], [{}, {"a": 1}]])
def test_a_list_opening_with_an_empty_map_under_a_commented_key_parses_back_with_its_comments(value):
    """ruamel writes such a block list garbled (`- 1 -`): it is written [{}, ...] instead (found by hypothesis)."""
    data = {**parse(COMMENTED), "concurrency": value}
    _check(COMMENTED, data)


@pytest.mark.parametrize(("text", "line", "column"), [
    ("name: a\x85model: x\n", 1, 14),  # NEL: a line break to ruamel.yaml, not to the framework's reader
    ("name: \ta\nmodel: x\n", 1, 7),  # a tab before a value
], ids=["NEL", "tab before a value"])
def test_a_text_the_framework_reads_but_ruamel_does_not_is_a_located_config_error(text, line, column):
    data = parse(text)
    with pytest.raises(ConfigError) as refused:
        merge(text, {**data, "model": "y"})
    problem = refused.value.problems[0]
    assert (problem.line, problem.col) == (line, column)
    assert problem.message.startswith("the form cannot be merged into this text (")


@pytest.mark.parametrize(("text", "shown"), [
    ("a: !!set {x, y}\n", {"a": ["x", "y"]}),
    ("a: !!binary aGVsbG8=\n", {"a": "aGVsbG8="}),
    ("a: 2026-12-02\n", {"a": "2026-12-02"}),
], ids=["set", "binary", "date"])
def test_every_yaml_value_the_framework_reads_goes_to_the_page_as_json(text, shown):
    assert json.loads(json.dumps(jsonable(parse(text)))) == shown
