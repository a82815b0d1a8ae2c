"""The Lambda zip: contents, byte-reproducibility, size limits, dependencies for Lambda's platform."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import zipfile

import pytest

from framework.errors import PackageError
from framework.platforms.aws import package
from framework.render import File

APP = [File("aws/lambda_function.py", b"import agent_runtime\n"), File("aws/agent_runtime.py", b"x = 1\n"),
       File("aws/agent.json", b'{"name": "bot"}\n'), File("aws/requirements.txt", b"# nothing\n"),
       File("aws/Dockerfile", b"FROM x\n"), File("aws/template.yaml", b"a: 1\n")]


def test_zip_holds_the_code_only_and_is_byte_reproducible(tmp_path):
    first = package.package_lambda(APP, "python3.12", "x86_64", cache=tmp_path)
    second = package.package_lambda(list(reversed(APP)), "python3.12", "x86_64", cache=tmp_path)
    assert first.data == second.data and first.code_sha256 == second.code_sha256
    assert first.code_sha256 == base64.b64encode(hashlib.sha256(first.data).digest()).decode()
    with zipfile.ZipFile(io.BytesIO(first.data)) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["agent.json", "agent_runtime.py", "lambda_function.py"]
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}
        assert archive.read("agent.json") == b'{"name": "bot"}\n'
    changed = package.package_lambda([File("aws/agent.json", b'{"name": "bot2"}\n'), *APP[:2]], "python3.12",
                                     "x86_64", cache=tmp_path)
    assert changed.code_sha256 != first.code_sha256 and changed.content != first.content


def test_size_limits_are_clear_errors(tmp_path):
    with pytest.raises(PackageError, match=r"zipped, over Lambda's .* limit .*package: image"):
        package.package_lambda(APP, "python3.12", "x86_64", cache=tmp_path, zip_limit=100)
    with pytest.raises(PackageError, match="unzipped, over Lambda's"):
        package.package_lambda(APP, "python3.12", "x86_64", cache=tmp_path, unzipped_limit=10)
    with pytest.raises(PackageError, match="50 MB"):
        package.check_size(package.ZIP_LIMIT + 1, 0)
    with pytest.raises(PackageError, match="250 MB"):
        package.check_size(1, package.UNZIPPED_LIMIT + 1)


def test_pip_command_targets_lambdas_platform(tmp_path):
    command = package.pip_command(tmp_path / "r.txt", tmp_path / "t", "python3.13", "arm64")
    assert "--only-binary=:all:" in command and "--no-compile" in command
    assert command[command.index("--python-version") + 1] == "3.13"
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms[0] == "manylinux2014_aarch64" and all(p.endswith("aarch64") for p in platforms)
    assert "manylinux2014_x86_64" in package.pip_command(tmp_path, tmp_path, "python3.12", "x86_64")


def _wheel(folder, name="tinydep", version="0.1"):
    """A minimal pure-Python wheel, made by hand (no network, no build)."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": b"VALUE = 42\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for n, content in files.items():
            archive.writestr(n, content)
        archive.writestr(f"{dist}/RECORD", record)
    return path


def test_dependencies_are_installed_for_lambda_and_cached(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    files = [*APP[:3], File("aws/requirements.txt", b"# deps\ntinydep==0.1\n")]
    built = package.package_lambda(files, "python3.12", "x86_64", cache=tmp_path / "cache")
    with zipfile.ZipFile(io.BytesIO(built.data)) as archive:
        names = archive.namelist()
        assert "tinydep/__init__.py" in names and archive.read("tinydep/__init__.py") == b"VALUE = 42\n"
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

    def no_pip(*args, **kwargs):
        raise AssertionError("pip ran although the requirements are cached")
    again = package.package_lambda(files, "python3.12", "x86_64", cache=tmp_path / "cache", run=no_pip)
    assert again.data == built.data


def test_pip_failure_is_a_clear_error(tmp_path):
    def failing(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "ERROR: No matching distribution found for numpyy")
    files = [*APP[:3], File("aws/requirements.txt", b"numpyy\n")]
    with pytest.raises(PackageError, match="manylinux wheels.*\n.*numpyy"):
        package.package_lambda(files, "python3.12", "x86_64", cache=tmp_path, run=failing)
