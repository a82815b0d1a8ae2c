"""The installed package (a wheel, not this checkout) finds its schema, templates and runtime."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_a_wheel_install_validates_and_builds_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    (wheel,) = wheels.glob("*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a wheel is installed by unpacking it
    work = tmp_path / "work"
    work.mkdir()
    (work / "agent.yaml").write_text((ROOT / "agent.yaml").read_text())
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    for command in (["validate"], ["build"]):
        result = subprocess.run([sys.executable, "-I", "-m", "framework", *command], cwd=work, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    generated = {p.relative_to(work / "generated").as_posix() for p in (work / "generated").rglob("*") if p.is_file()}
    expected = {p.relative_to(ROOT / "generated").as_posix() for p in (ROOT / "generated").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert generated == expected
    assert (work / "generated" / "manifest.json").read_bytes() == (ROOT / "generated" / "manifest.json").read_bytes()
