"""The installed package (a wheel in a fresh venv, not this checkout) gives the `agenthost` command,
finds its schema, templates and runtime, and starts an agent in an empty folder."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from framework import __version__
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel built from this checkout, installed by pip (which writes the console
    script). The wheel's dependencies are read from this environment's site-packages, named in a .pth
    file: listed paths are only appended to sys.path (their own .pth files, such as the editable install
    of this checkout, are not run), so `framework` can only come from the wheel."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    (wheel,) = wheels.glob("*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    # without PYTHONPATH: a checkout on it holds an egg-info that pip would take for the package installed
    clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, env=clean)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def run(venv: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess:
    """A command of the venv's, run in `cwd` with an environment that names nothing of this checkout."""
    return subprocess.run([str(venv / "bin" / command[0]), *command[1:]], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd)})


def test_framework_is_imported_from_the_wheel_not_the_checkout(venv, tmp_path):
    result = run(venv, tmp_path, "python", "-c", "import framework; print(framework.__file__)")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(venv)


def test_agenthost_version_prints_the_version(venv, tmp_path):
    result = run(venv, tmp_path, "agenthost", "--version")
    assert (result.returncode, result.stdout) == (0, f"agenthost {__version__}\n")


def test_agenthost_help_names_the_command(venv, tmp_path):
    result = run(venv, tmp_path, "agenthost", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: agenthost ")
    assert "init" in result.stdout and "python -m framework" not in result.stdout


def test_init_then_validate_and_build_in_an_empty_folder(venv, tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    for command in (["init", "demo"], ["validate"], ["build"]):
        result = run(venv, work, "agenthost", *command)
        assert result.returncode == 0, (command, result.stderr)
    schema = (ROOT / "schema" / "agent.schema.json").read_bytes()
    assert (work / "generated" / "agent.schema.json").read_bytes() == schema
    assert (work / "generated" / "aws" / "agent.json").is_file()
    assert sorted(p.name for p in work.iterdir()) == [".generated.lock", ".gitignore", "agent.yaml", "generated"]


def test_python_m_framework_builds_the_sample_agent_as_the_checkout_does(venv, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "agent.yaml").write_text((ROOT / "agent.yaml").read_text())
    for command in (["validate"], ["build"]):
        result = run(venv, work, "python", "-I", "-m", "framework", *command)
        assert result.returncode == 0, result.stderr
    generated = {p.relative_to(work / "generated").as_posix() for p in (work / "generated").rglob("*") if p.is_file()}
    expected = {p.relative_to(ROOT / "generated").as_posix() for p in (ROOT / "generated").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert generated == expected
    assert (work / "generated" / "manifest.json").read_bytes() == (ROOT / "generated" / "manifest.json").read_bytes()


def test_the_wheel_ships_the_editors_page_and_its_vendored_form_library(venv, tmp_path):
    listing = ("import pathlib, framework; static = pathlib.Path(framework.__file__).parent / 'edit' / 'static';"
               "print(*sorted(p.relative_to(static).as_posix() for p in static.rglob('*') if p.is_file()))")
    result = run(venv, tmp_path, "python", "-c", listing)
    assert result.returncode == 0, result.stderr
    static = ROOT / "framework" / "edit" / "static"
    assert result.stdout.split() == sorted(p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file())
