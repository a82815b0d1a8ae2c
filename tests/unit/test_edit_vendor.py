"""The editor's form library is vendored, not fetched: framework/edit/static/vendor/ holds the npm package's
dist file as published (VENDOR.json records its version, the tarball's integrity and each file's sha256),
at the version tests/js/package.json pins, so an update is one deliberate step: bump the devDependency, npm
install, copy the files from node_modules, rewrite VENDOR.json."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import JS_DIR, ROOT

VENDOR = ROOT / "framework" / "edit" / "static" / "vendor"
RECORD = json.loads((VENDOR / "VENDOR.json").read_text())
# vendored file -> its path in the npm package
FROM_PACKAGE = {"jsoneditor.js": "dist/jsoneditor.js", "jsoneditor.js.LICENSE.txt": "dist/jsoneditor.js.LICENSE.txt",
                "LICENSE": "LICENSE"}


def test_vendor_json_lists_exactly_the_vendored_files():
    on_disk = sorted(p.name for p in VENDOR.iterdir() if p.name != "VENDOR.json")
    assert sorted(RECORD["files"]) == on_disk == sorted(FROM_PACKAGE)


@pytest.mark.parametrize("name", sorted(FROM_PACKAGE))
def test_each_vendored_file_has_the_sha256_vendor_json_records(name):
    assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == RECORD["files"][name]


def test_the_vendored_version_is_the_one_tests_js_pins():
    pinned = json.loads((JS_DIR / "package.json").read_text())["devDependencies"][RECORD["name"]]
    assert RECORD["version"] == pinned


def test_the_vendored_integrity_is_the_lock_files():
    locked = json.loads((JS_DIR / "package-lock.json").read_text())["packages"][f"node_modules/{RECORD['name']}"]
    assert (locked["version"], locked["integrity"]) == (RECORD["version"], RECORD["integrity"])


@pytest.mark.parametrize(("name", "source"), sorted(FROM_PACKAGE.items()))
def test_each_vendored_file_is_the_installed_packages_own(name, source):
    installed = JS_DIR / "node_modules" / RECORD["name"] / source
    assert (VENDOR / name).read_bytes() == installed.read_bytes(), f"{name} differs from npm's {source}"
