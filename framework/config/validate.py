"""Validate agent.yaml: schema, secrets, prompt file, then each target's platform limits.

Every problem is collected (never stop at the first) and located at a line and column.
"""

from __future__ import annotations

import datetime
import difflib
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from framework.config import stages, tools
from framework.config.load import Document, PathT, load
from framework.config.secrets import SECRET_FIX, find_secrets, redact, secret_kind, value_secret_kind
from framework.errors import ConfigError, Problem
from framework.model import Agent, build_agent
from framework.platforms import registry, sessions
from framework.schema import resolve, schema


@dataclass(frozen=True)
class Validated:
    agent: Agent
    warnings: tuple[Problem, ...]
    document: Document


_TYPE_WORDS = {
    "string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
    "object": "a set of `key: value` settings", "array": "a list", "null": "empty",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "empty"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "text" if len(value) > 40 else f"the text {value!r}"
    if isinstance(value, dict):
        return "a set of settings"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date):
        return "a date"
    return type(value).__name__


def _type_words(expected: str | list[str]) -> str:
    names = [expected] if isinstance(expected, str) else [t for t in expected if t != "null"]
    return " or ".join(_TYPE_WORDS.get(name, name) for name in names)


def _example(node: dict[str, Any]) -> str | None:
    examples = node.get("examples") or []
    for example in examples:
        if isinstance(example, (str, int, float, bool)):
            return "true" if example is True else "false" if example is False else str(example)
    return None


def _schema_at(schema_path: Iterable[str | int]) -> dict[str, Any]:
    node: Any = schema()
    for part in schema_path:
        if isinstance(node, dict) and "$ref" in node and part not in node:
            node = resolve(node)
        node = node[part]
    return node


class _Translator:
    """Turn jsonschema errors into plain-language Problems located in the document."""

    def __init__(self, doc: Document):
        self.doc = doc

    def problem(self, path: PathT, message: str, key: bool = False) -> Problem:
        line, col = self.doc.where(path, key=key)
        return Problem(self.doc.file, line, col, self.doc.label(path), message)

    def translate(self, error: ValidationError) -> list[Problem]:
        path: PathT = tuple(error.absolute_path)
        kind, node, value = error.validator, error.schema, error.instance
        hint = node.get("x-message") if isinstance(node, dict) else None

        if kind == "additionalProperties":
            allowed = sorted(node.get("properties", {}))
            out = []
            for extra in sorted(set(value) - set(allowed)):
                close = difflib.get_close_matches(str(extra), allowed, n=1, cutoff=0.6)
                tip = f"did you mean {close[0]!r}?" if close else "allowed here: " + ", ".join(allowed)
                out.append(self.problem(path + (extra,), f"unknown setting {extra!r}; {tip}", key=True))
            return out
        if kind == "required":
            missing = error.message.split("'")[1]
            sub = node.get("properties", {}).get(missing, {})
            example = _example(sub) if isinstance(sub, dict) else None
            add = f"add `{missing}: {example}`" if example else f"add `{missing}:`"
            where = self.doc.where(path, key=True)
            return [Problem(self.doc.file, *where, self.doc.label(path + (missing,)), f"is required; {add}")]
        if kind == "type":
            message = f"must be {_type_words(error.validator_value)}, but is {_describe(value)}"
            if not path:
                message = "agent.yaml must be a set of `key: value` settings, starting with `name:`"
            written = self.doc.implicit.get(path)
            wants_text = "string" in (error.validator_value if isinstance(error.validator_value, list)
                                      else [error.validator_value])
            if written == "" and wants_text:  # nothing after the colon
                sub = _schema_at(list(error.schema_path)[:-1])
                example = _example(sub) if isinstance(sub, dict) else None
                message += f"; write it after the colon, for example {path[-1]}: {example}" if example else \
                    f"; write it after the colon: {path[-1]}: ..."
            elif written is not None and wants_text:
                message += (f"; YAML reads the bare word {written} as {_describe(value)}: "
                            f"write it in quotes, {path[-1]}: \"{written}\"")
            elif written is None and isinstance(value, str) and error.validator_value in ("integer", "number"):
                message += "; write just the number, without quotes or units (for example: 300)"
            return [self.problem(path, message)]
        if kind == "enum":
            options = [str(o) for o in error.validator_value]
            close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
            tip = f" (did you mean {close[0]!r}?)" if close else ""
            return [self.problem(path, f"must be one of: {', '.join(options)}; got {_describe(value)}{tip}")]
        if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            bound = "at least" if "inimum" in kind else "at most"
            return [self.problem(path, f"must be {bound} {error.validator_value}; got {value}")]
        if kind == "pattern" and "propertyNames" in error.schema_path:
            return [self.problem(path + (value,), f"the name {value!r} {hint}", key=True)]
        if kind == "pattern":
            return [self.problem(path, hint or f"does not have the expected form ({error.validator_value})")]
        if kind == "minLength":
            if error.validator_value == 1:
                return [self.problem(path, "must not be empty")]
            return [self.problem(path, f"must be at least {error.validator_value} characters long")]
        if kind == "maxLength":
            return [self.problem(path, f"must be at most {error.validator_value} characters long; it has {len(value)}")]
        if kind == "minProperties" and path == ("targets",):
            first = registry.names()[0]
            return [self.problem(path, f"list at least one platform: {registry.spoken(registry.names())} "
                                       f"(for example: {first}: {{}})")]
        if kind == "minItems":
            return [self.problem(path, f"must list at least {error.validator_value} item(s)")]
        if kind == "uniqueItems":
            return [self.problem(path, "lists the same value twice; keep each value once")]
        if kind in ("oneOf", "anyOf"):
            return self._alternatives(error, hint)
        return [self.problem(path, error.message)]

    def _alternatives(self, error: ValidationError, hint: str | None) -> list[Problem]:
        """Report the errors of the alternative whose type matches the value, else the hint."""
        for index, branch in enumerate(error.validator_value):
            matches_type = "type" in branch and Draft202012Validator(branch).is_type(error.instance, branch["type"])
            if matches_type:
                branch_errors = [e for e in error.context if e.relative_schema_path[0] == index]
                return [p for e in branch_errors for p in self.translate(e)]
        path = tuple(error.absolute_path)
        return [self.problem(path, hint or "does not have any of the accepted forms")]


_VALIDATOR: Draft202012Validator | None = None


def _validator() -> Draft202012Validator:
    """One validator per schema (a newly registered platform's part gives a new schema)."""
    global _VALIDATOR
    if _VALIDATOR is None or _VALIDATOR.schema is not schema():
        _VALIDATOR = Draft202012Validator(schema())
    return _VALIDATOR


def schema_problems(doc: Document) -> list[Problem]:
    translator = _Translator(doc)
    problems = []
    for error in _validator().iter_errors(doc.data):
        problems.extend(translator.translate(error))
    return problems


def _secret_problems(doc: Document) -> list[Problem]:
    """Secrets in values and keys, then anywhere else in the text (comments included)."""
    out = []
    for path, kind in find_secrets(doc.data):
        key = isinstance(path[-1], str) and value_secret_kind(path[-1]) is not None
        line, col = doc.where(path, key=key)
        out.append(Problem(doc.file, line, col, doc.label(path), f"this looks like {kind}; {SECRET_FIX}"))
    flagged = {p.line for p in out}
    for number, text in enumerate(doc.text.splitlines(), 1):
        kind = secret_kind(text)
        if kind and number not in flagged:
            out.append(Problem(doc.file, number, 1, "(comment)", f"this looks like {kind}; {SECRET_FIX}"))
    return out


def _redacted(problems: list[Problem]) -> list[Problem]:
    return [Problem(p.file, p.line, p.col, redact(p.path), redact(p.message), p.severity) for p in problems]


def _read_prompt(doc: Document) -> tuple[str, str | None, list[Problem]]:
    """The system prompt text and the prompt file's path (relative, as written), or problems."""
    prompt = doc.data["prompt"]
    if isinstance(prompt, str):
        return prompt, None, []
    rel = prompt["file"]
    path = ("prompt", "file")
    line, col = doc.where(path)
    base = Path(doc.file).resolve().parent
    where = doc.label(path)
    try:
        target = (base / rel).resolve()
    except (OSError, ValueError):
        return "", None, [Problem(doc.file, line, col, where, f"{rel!r} is not a usable file name")]
    if not target.is_relative_to(base):
        return "", None, [Problem(doc.file, line, col, where, (
            f"{rel!r} is outside the folder of agent.yaml; keep prompt files next to it"))]
    if target.exists() and not target.is_file():
        return "", None, [Problem(doc.file, line, col, where, f"{rel!r} is not a regular file")]
    try:
        # newline="": the prompt reaches the model exactly as written, CRLF included
        with open(target, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        return "", None, [Problem(doc.file, line, col, where, (
            f"prompt file {rel!r} not found next to {Path(doc.file).name}; check the path"))]
    except UnicodeDecodeError:
        return "", None, [Problem(doc.file, line, col, where, f"prompt file {rel!r} is not UTF-8 text")]
    except OSError as exc:
        return "", None, [Problem(doc.file, line, col, where, f"cannot read prompt file {rel!r}: {exc.strerror}")]
    if not text.strip():
        return "", None, [Problem(doc.file, line, col, where, f"prompt file {rel!r} is empty")]
    kind = secret_kind(text)
    if kind:
        return "", None, [Problem(doc.file, line, col, where, f"prompt file {rel!r} contains {kind}; {SECRET_FIX}")]
    return text, rel, []


# The system prompt travels with every request, inside the deployed function. 1 MB of text is about
# 250,000 tokens: more than most models' context windows (gpt-4o-mini and gpt-4o: 128,000 tokens), and
# as much as a Vercel Edge function may bundle on the Hobby plan (1 MB after gzip). Above ~100,000
# tokens many models refuse every request.
MAX_PROMPT_BYTES = 1_000_000
LARGE_PROMPT_BYTES = 400_000
# YAML 1.1 (what PyYAML reads) turns these plain numbers into other values than most people expect
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)(\.[0-9]*)?([eE][-+]?[0-9]+)?")
# What YAML takes for line breaks beyond CR and LF: NEL, LINE and PARAGRAPH SEPARATOR.
_LINE_SEPARATORS = {"\x85": "NEL, U+0085", "\u2028": "U+2028", "\u2029": "U+2029"}


def _number_reading(written: str) -> str:
    """Why YAML 1.1 read `written` as another number than its digits say, in words."""
    digits = written.lstrip("+-")
    if digits.startswith(("0x", "0X")):
        return "a number starting with 0x is hexadecimal"
    if digits.startswith(("0b", "0B")):
        return "a number starting with 0b is binary"
    if ":" in digits:
        return "numbers with ':' are read in base 60, like minutes:seconds"
    if "_" in digits:
        return "underscores in numbers are skipped; other YAML readers take it as text"
    return "a number starting with 0 is octal"


def _yaml_surprises(doc: Document) -> list[Problem]:
    """Warnings where YAML silently read something else than what is written: numbers in YAML 1.1
    forms, and the Unicode line separators, which YAML takes for line breaks (dropping the spaces
    beside them) even inside quotes."""
    out = []
    for path, written in sorted(doc.implicit.items(), key=lambda item: doc.where(item[0])):
        value = _value_at(doc.data, path)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not _DECIMAL.fullmatch(written):
            line, col = doc.where(path)
            decimal = written.lstrip("+-").lstrip("0").replace("_", "") or "0"
            mean = f" or {decimal}" if decimal != str(value) and decimal.isdigit() else ""
            out.append(Problem(doc.file, line, col, doc.label(path), (
                f"YAML reads {written} as {value} ({_number_reading(written)}); "
                f"write the number you mean in plain digits ({value}{mean})"), "warning"))
    strings = sorted((doc.where(path), path) for path in doc.values
                     if isinstance(_value_at(doc.data, path), str))
    for index, mark in enumerate(doc.text):
        if mark not in _LINE_SEPARATORS:
            continue
        # Where an editor shows it (lines end at LF only), in the text value that starts last before it.
        line = doc.text.count("\n", 0, index) + 1
        col = index - doc.text.rfind("\n", 0, index)
        path = next((p for (start, p) in reversed(strings) if start <= (line, col)), ())
        out.append(Problem(doc.file, line, col, doc.label(path), (
            f"contains a Unicode line separator ({_LINE_SEPARATORS[mark]}), which YAML reads as a line break, "
            "dropping it or the spaces next to it even inside quotes; to keep the text exactly as written, "
            "put it in a file and write `prompt: {file: prompt.txt}`"), "warning"))
    return out


def _value_at(data: Any, path: PathT) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _field_problems(doc: Document, agent: Agent) -> list[Problem]:
    """What the schema cannot say: base_url's path, and a prompt too large to send."""
    out = []

    def problem(path: PathT, message: str, severity: str = "error") -> None:
        line, col = doc.where(path)
        out.append(Problem(doc.file, line, col, doc.label(path), message, severity))

    if agent.base_url:
        url = urllib.parse.urlsplit(agent.base_url)
        path = url.path.rstrip("/")
        endpoint = re.search(r"/(chat/)?completions$", path, re.IGNORECASE)
        if endpoint:
            fixed = urllib.parse.urlunsplit((url.scheme, url.netloc, path[:endpoint.start()], "", ""))
            problem(("base_url",), (
                f"must be the service's address without {endpoint.group(0)} (the functions add /chat/completions: "
                f"this one would call {path}/chat/completions); write `base_url: {fixed}`"))
        elif not any(re.fullmatch(r"v[0-9]+\w*", part) for part in path.split("/")):
            problem(("base_url",), (
                "has no version in its path: most OpenAI-compatible services (OpenAI, Ollama, vLLM, LM Studio) "
                f"answer under /v1, e.g. `base_url: {agent.base_url.rstrip('/')}/v1`; keep it as it is only if "
                "your service's documentation says so"), "warning")
    size = len(agent.system_prompt.encode("utf-8"))
    where = ("prompt", "file") if agent.prompt_file else ("prompt",)
    if size > MAX_PROMPT_BYTES:
        problem(where, (
            f"the prompt is {size / 1e6:.1f} MB; it is sent with every request, and {MAX_PROMPT_BYTES // 1_000_000} "
            "MB (about 250,000 tokens) is already more than most models can read at once (gpt-4o-mini: "
            "128,000 tokens) and as much as a Vercel Edge function may hold; shorten it to under "
            f"{LARGE_PROMPT_BYTES // 1000} KB"))
    elif size > LARGE_PROMPT_BYTES:
        problem(where, (
            f"the prompt is {size // 1000} KB (about {size // 4:,} tokens), sent and billed with every "
            "request; many models read at most 128,000 tokens at once and refuse longer requests"), "warning")
    return out


def validate_document(doc: Document, stage: str | None = None) -> Validated:
    """All checks on a parsed document, then on the stage's (the agent with its block merged in);
    raises ConfigError with every error found."""
    validated = _validate(doc)
    return validated if stage is None else _validate(stages.staged(doc, stage))


def validate_stages(doc: Document) -> list[Validated]:
    """The agent and every stage it lists, each checked in full; every error of all of them at once."""
    out, problems = [], []
    for stage in (None, *stages.names(doc)):
        try:
            out.append(_validate(doc if stage is None else stages.staged(doc, stage)))
        except ConfigError as error:
            problems += [p for p in error.problems if p not in problems]
            if stage is None:  # a stage's document is the agent's with its block in: fix the agent first
                break
    if problems:
        raise ConfigError(problems)
    return out


def _stage_problems(doc: Document) -> list[Problem]:
    """A stage's built output goes to generated/<stage>/, beside generated/<platform>/."""
    return [Problem(doc.file, *doc.where(("stages", name), key=True), doc.label(("stages", name)), (
        f"a stage may not be named like a platform ({registry.spoken(registry.names())}); "
        "call it, for example, dev, staging or prod")) for name in stages.names(doc) if name in registry.names()]


def _validate(doc: Document) -> Validated:
    secrets = _secret_problems(doc)
    # a secret pasted into a field also breaks its pattern; the secret is the one thing to say there
    flagged = {p.line for p in secrets}
    problems = [p for p in schema_problems(doc) if p.line not in flagged] + secrets
    problems += _stage_problems(doc) if not problems else []
    if problems:
        raise ConfigError(_redacted(problems))
    system_prompt, prompt_file, problems = _read_prompt(doc)
    if problems:
        raise ConfigError(problems)
    agent = build_agent(doc.data, system_prompt, prompt_file, registry.names(), doc.stage)
    located = _redacted(_yaml_surprises(doc)) + _field_problems(doc, agent)
    findings = tools.check(agent, doc.data.get("tools") or []) + tools.fit_warnings(agent)
    for settings in agent.targets:
        platform = registry.get(settings.name)
        findings += platform.check(agent, settings) + sessions.check(settings, platform.session_store, platform.title)
    for finding in findings:
        key = finding.path[-1:] != ("targets",) and finding.path in doc.keys
        line, col = doc.where(finding.path, key=key)
        located.append(Problem(doc.file, line, col, doc.label(finding.path), finding.message, finding.severity))
    errors = [p for p in located if p.severity == "error"]
    if errors:
        raise ConfigError(located)
    return Validated(agent=agent, warnings=tuple(sorted(located, key=Problem.sort_key)), document=doc)


def validate_file(path: str | Path, stage: str | None = None) -> Validated:
    return validate_document(load(path), stage)
