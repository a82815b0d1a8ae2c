"""A host name that does not resolve is said at once: DNS does not heal during a retry's backoff
(no network, a mistyped endpoint), so the API clients give up on it instead of retrying."""

from __future__ import annotations

import socket
import urllib.parse

from framework.errors import DeployError


def unresolved(error: BaseException) -> bool:
    """Whether the error is, or wraps, a failed name lookup (socket.gaierror), however deep the HTTP
    library buried it: urllib's URLError.reason, requests' and urllib3's causes, azure-core's inner error."""
    seen: set[int] = set()
    stack: list[object] = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return True
        stack.extend((current.__cause__, current.__context__, getattr(current, "reason", None),
                      getattr(current, "inner_exception", None), *current.args))
    return False


class UnresolvedHost(DeployError):
    """The endpoint's name has no DNS answer."""

    def __init__(self, url: str, variable: str | None):
        host = urllib.parse.urlsplit(url).hostname or url
        fix = (f"; if {host} is not the right server, set {variable} to the address to use"
               if variable else "")
        super().__init__(f"cannot find the server {host}: its name does not resolve (DNS), so nothing was "
                         f"tried again; check the network connection (or proxy and DNS settings){fix}")
