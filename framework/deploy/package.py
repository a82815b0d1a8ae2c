"""Deterministic zipping, shared by every platform that uploads a zip: same entries, same bytes
(sorted, timestamps fixed at 1980-01-01, permissions normalised, compression fixed), and a content
hash independent of compression. Lambda's dependency packaging is framework/platforms/aws/package.py.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Generated documentation (DEPLOY.md): no deploy ships it, so a change to it is no change to the code.
DOCS = frozenset({"DEPLOY.md"})


def build_zip(entries: Iterable[tuple[str, bytes, int]]) -> bytes:
    """A zip whose bytes depend only on the entries: sorted, fixed time, fixed modes and compression."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, mode in sorted(entries, key=lambda e: e[0]):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the permissions below are honoured
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def content_hash(entries: Iterable[tuple[str, bytes, int]]) -> str:
    digest = hashlib.sha256()
    for name, content, mode in sorted(entries, key=lambda e: e[0]):
        digest.update(f"{name}\0{mode:o}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return digest.hexdigest()
