"""What the schema cannot say about `tools` and `limits`: unique names, parameter schemas that are
schemas, URL placeholders that are parameters, fixed hosts, headers that name secrets, and whether
the loop fits in each platform's timeout. Pure: findings on agent.yaml paths."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from framework.findings import Finding
from framework.model import Agent
from framework.platforms.registry import spoken

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
SECRET_REF = re.compile(r"\$\{([^{}]*)\}")
_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Header names that carry credentials: their value must come from a secret, never be written out.
_SENSITIVE = re.compile(r"authorization|cookie|key|token|secret|password|auth|credential", re.IGNORECASE)
_AUTH_SCHEMES = re.compile(r"^\s*(bearer|basic|token|bot|apikey|api-key)\s+", re.IGNORECASE)
_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
# A model call that offers tools often takes 2-10 s; the fit warning counts this much per step.
MODEL_CALL_SECONDS = 5


def check(agent: Agent, entries: list[Mapping[str, Any]]) -> list[Finding]:
    """entries: `tools:` as written (schema-valid), for the paths of the findings."""
    out: list[Finding] = []
    names: dict[str, tuple[str | int, ...]] = {}
    for index, entry in enumerate(entries):
        if "mcp" in entry:
            where: tuple[str | int, ...] = ("tools", index, "mcp")
            server = entry["mcp"]
            for position, tool_name in enumerate(server.get("tools") or ()):
                out += _unique(names, tool_name, (*where, "tools", position))
            out += _url(server["url"], (*where, "url"), None)
            out += _headers(agent, server.get("headers") or {}, (*where, "headers"))
            continue
        where = ("tools", index)
        out += _unique(names, entry["name"], (*where, "name"))
        out += _parameters(entry["parameters"], (*where, "parameters"))
        out += _url(entry["http"]["url"], (*where, "http", "url"), entry["parameters"])
        out += _headers(agent, entry["http"].get("headers") or {}, (*where, "http", "headers"))
    return out


def _unique(names: dict[str, tuple[str | int, ...]], name: str, path: tuple[str | int, ...]) -> list[Finding]:
    if name in names:
        return [Finding(path, f"the tool name {name!r} is used twice (first at tools[{names[name][1]}]); "
                              "give each tool its own name")]
    names[name] = path
    return []


def _parameters(parameters: Mapping[str, Any], path: tuple[str | int, ...]) -> list[Finding]:
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        where = (*path, *exc.path)
        if exc.path and exc.path[-1] == "type":
            return [Finding(where, "is not a JSON Schema type; use one of: " + ", ".join(_TYPES))]
        return [Finding(where, f"is not valid in a JSON Schema (the tool's parameters): {exc.message}")]
    if parameters.get("type") != "object":
        return [Finding(path, "must describe an object: start it with `type: object`, then `properties:`")]
    return []


def _url(url: str, path: tuple[str | int, ...], parameters: Mapping[str, Any] | None) -> list[Finding]:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return [Finding(path, "must be a full address starting with https://, e.g. https://api.example.com/orders")]
    if "{" in parts.netloc or "}" in parts.netloc:
        return [Finding(path, "may have {parameters} only after the host: the host and port are fixed here")]
    if parts.username is not None or parts.password is not None:
        return [Finding(path, "must not hold a user name or password; send credentials in a header "
                              "from a secret, e.g. Authorization: Bearer ${TOKEN}")]
    if parts.scheme == "http" and host not in LOOPBACK:
        return [Finding(path, f"must use https:// (http:// only for 127.0.0.1 and localhost); write "
                              f"https://{url.split('://', 1)[1]}")]
    if parts.fragment:
        return [Finding(path, "must not end in a #fragment")]
    found = PLACEHOLDER.findall(url)
    if parameters is None:
        return [Finding(path, "an MCP server's address takes no {parameters}")] if found else []
    declared = parameters.get("properties") or {}
    required = set(parameters.get("required") or ())
    out = []
    for name in dict.fromkeys(found):
        if not _PARAMETER.fullmatch(name) or name not in declared:
            listed = ", ".join(declared) or "none"
            out.append(Finding(path, f"{{{name}}} is not one of the tool's parameters (declared: {listed}); "
                                     "each {x} in the address must be a parameter under parameters.properties"))
        elif name not in required:
            out.append(Finding(path, f"{{{name}}} is in the address, so the parameter {name} must be listed "
                                     f"under parameters.required (the address is incomplete without it)"))
    return out


def _headers(agent: Agent, headers: Mapping[str, str], path: tuple[str | int, ...]) -> list[Finding]:
    out = []
    declared = agent.secrets
    for header, value in headers.items():
        where = (*path, header)
        refs = SECRET_REF.findall(value)
        for ref in refs:
            if not _NAME.fullmatch(ref):
                out.append(Finding(where, f"${{{ref}}} is not a secret name; write it in capital letters, "
                                          "digits and underscores, e.g. ${ORDERS_TOKEN}"))
            elif ref not in declared:
                out.append(Finding(where, f"${{{ref}}} is not a declared secret; list it under `secrets:` "
                                          f"(for example `secrets: {{{ref}: {{}}}}`) so that deploy sets it"))
        literal = _AUTH_SCHEMES.sub("", SECRET_REF.sub("", value)).strip()
        if _SENSITIVE.search(header) and literal:
            out.append(Finding(where, f"the {header} header must not hold the credential itself (agent.yaml is "
                                      f"committed and copied into generated/): write {header}: Bearer ${{NAME}} and "
                                      "list NAME under `secrets:`; deploy copies its value into the cloud"))
    return out


def fit_warnings(agent: Agent) -> list[Finding]:
    """Where max_steps rounds of a model call and the slowest tool cannot fit in the timeout."""
    timeouts = [tool["http"]["timeout"] for tool in agent.tools] + [server["timeout"] for server in agent.mcp]
    if not timeouts:
        return []
    slowest = max(timeouts)
    groups: dict[tuple[tuple[str | int, ...], int, int], list[str]] = {}
    for settings in agent.targets:
        key = (settings.path_of("limits") if settings.explicit("limits") else ("limits",) if
               settings.origins.get("limits") else settings.path_of("timeout"),
               settings.limits.max_steps, settings.timeout)
        groups.setdefault(key, []).append(settings.name)
    out = []
    for (where, steps, timeout), names in groups.items():
        needed = steps * MODEL_CALL_SECONDS + (steps - 1) * slowest
        if needed > timeout:
            out.append(Finding(where, (
                f"on {spoken(names, 'and')}, {steps} steps may need about {needed:g} s ({steps} model calls of about "
                f"{MODEL_CALL_SECONDS} s and {steps - 1} tool rounds of up to {slowest:g} s), more than the timeout "
                f"of {timeout} s; a long request will then answer with stopped: deadline. Lower max_steps or the "
                "tools' timeouts, or raise timeout"), "warning"))
    return out
