"""Spot secret values pasted into agent.yaml: only secret NAMES belong there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# Shapes of well-known credentials. Matching any of them anywhere in a string is an error.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an OpenAI-style API key (sk-...)", re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{16,}")),
    ("an AWS access key ID (AKIA...)", re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("a GitHub token", re.compile(r"(?<![A-Za-z0-9])(ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{20,}")),
    ("a Google API key (AIza...)", re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}")),
    ("a Slack token (xox...)", re.compile(r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)


# Keys with no telling prefix (Azure OpenAI's and many providers' keys are 32 random hex digits): a
# value that is nothing but 32 or more hex digits, letters and digits mixed, is a key, never a name or
# a setting. Whole values only, so a Key Vault URI's version or a hash inside a text is not taken for one.
_BARE_HEX = re.compile(r"(?=.*[0-9])(?=.*[A-Fa-f])[0-9A-Fa-f]{32,}")
_BARE_HEX_KIND = "an API key (32 or more hexadecimal digits, like an Azure OpenAI key)"
_HEX_RUN = re.compile(r"(?<![0-9A-Za-z])(?=[0-9A-Fa-f]*[0-9])(?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])")


def secret_kind(text: str) -> str | None:
    """What kind of secret the text contains, or None. The secret itself is never returned."""
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return None


def value_secret_kind(value: str) -> str | None:
    """secret_kind, and also a whole value that is a bare hexadecimal key."""
    if _BARE_HEX.fullmatch(value.strip()):
        return _BARE_HEX_KIND
    return secret_kind(value)


def redact(text: str, *, hex_runs: bool = True) -> str:
    """The text with every secret-looking part replaced: problems are printed, even in public CI logs.
    hex_runs=False keeps runs of hex digits (digests, commit ids), for a text whose values
    find_secrets found no bare hexadecimal key in."""
    for _, pattern in (*_PATTERNS, *((("", _HEX_RUN),) if hex_runs else ())):
        text = pattern.sub("<secret>", text)
    return text


def has_bare_hex_key(data: Any) -> bool:
    """Whether a key or value of data is nothing but a hexadecimal key (what redact's hex runs are for)."""
    return any(kind == _BARE_HEX_KIND for _, kind in find_secrets(data))


def find_secrets(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """(path, kind) of every string (key or value) that looks like a secret."""
    if isinstance(data, str):
        kind = value_secret_kind(data)
        if kind:
            yield path, kind
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and value_secret_kind(key):
                yield path + (key,), value_secret_kind(key)
            yield from find_secrets(value, path + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from find_secrets(value, path + (index,))


SECRET_FIX = ("never write secret values in agent.yaml (it is committed and copied into generated/): "
              "store the value in the platform's secret settings and refer to it by name with "
              "api_key_env (for example: api_key_env: OPENAI_API_KEY)")
