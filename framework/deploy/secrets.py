"""Secret values taken from the deploying environment: held in memory only, compared by digest,
and scrubbed from any text the cloud sends back (error messages may echo parameters)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping

# Per-process key: digests are comparable within one run and meaningless outside it.
_KEY = os.urandom(32)


def digest(value: str) -> str:
    return "digest:" + hmac.new(_KEY, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class SecretValues:
    def __init__(self, values: Mapping[str, str]):
        self._values = dict(values)

    @classmethod
    def from_environ(cls, names: Iterable[str], environ: Mapping[str, str] | None = None) -> SecretValues:
        environ = os.environ if environ is None else environ
        return cls({name: environ[name] for name in names if environ.get(name)})

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def values(self) -> Mapping[str, str]:
        return dict(self._values)

    def digest(self, name: str) -> str:
        return digest(self._values[name])

    def redact(self, text: str) -> str:
        """The text without any secret value, also in the forms an API echoes it (JSON-escaped, URL-quoted)."""
        import json
        import urllib.parse

        for value in sorted(self._values.values(), key=len, reverse=True):
            if len(value) >= 4:
                for form in {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe="")}:
                    text = text.replace(form, "***")
        return text

