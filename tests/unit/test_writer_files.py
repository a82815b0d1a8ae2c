"""Writing generated/: concurrent writers wait for each other, and a folder that cannot be written is
one line of error with its exit code, in build, serve and invoke alike."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from framework.cli import main
from framework.writer import _locked
from tests.conftest import build, write_agent

AGENT = """\
    name: files-bot
    prompt: {file: prompt.txt}
    model: gpt-4o-mini
    targets:
      aws: {}
      gcp: {}
      azure: {timeout: 200}
      vercel: {timeout: 25}
"""
ONE_TARGET = """\
    name: files-bot
    prompt: You are helpful.
    model: gpt-4o-mini
    targets:
      gcp: {}
"""


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_many_concurrent_builds_into_one_folder_all_succeed_and_leave_one_build(tmp_path, capsys):
    agent = write_agent(tmp_path, AGENT, prompt_file="You are helpful.\n")
    out = tmp_path / "generated"
    build(agent, out)  # every later build replaces existing folders: the path that raced
    with ThreadPoolExecutor(max_workers=24) as pool:
        codes = list(pool.map(lambda _: build(agent, out), range(24)))
    assert codes == [0] * 24
    assert "Traceback" not in capsys.readouterr().err
    reference = tmp_path / "reference"
    assert build(agent, reference) == 0
    assert tree(out) == tree(reference)  # complete, and no staged or old folder left behind


def test_a_second_writer_waits_for_the_first_then_writes(tmp_path, capsys):
    agent = write_agent(tmp_path, AGENT, prompt_file="You are helpful.\n")
    out = tmp_path / "generated"
    done = threading.Event()
    with _locked(out):
        writer = threading.Thread(target=lambda: (build(agent, out), done.set()))
        writer.start()
        assert not done.wait(0.5), "the second writer must wait while the folder is locked"
        assert not (out / "manifest.json").exists()
    writer.join(30)
    assert done.is_set() and (out / "manifest.json").is_file()


def test_concurrent_builds_of_different_targets_keep_each_others_manifest_entries(tmp_path, capsys):
    agent = write_agent(tmp_path, AGENT, prompt_file="You are helpful.\n")
    out = tmp_path / "generated"
    targets = ["aws", "gcp", "azure", "vercel"] * 4
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        codes = list(pool.map(lambda target: build(agent, out, "--target", target), targets))
    assert codes == [0] * len(targets)
    reference = tmp_path / "reference"
    assert build(agent, reference) == 0
    assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()


COMMANDS = [
    ["build"],
    ["serve", "--target", "gcp", "--port", "1"],
    ["invoke", "--target", "gcp", "-m", "Hello"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_output_folder_below_a_file_is_one_line_of_error(tmp_path, capsys, command):
    # A regular file where a folder must be fails for root too (chmod does not stop root).
    agent = write_agent(tmp_path, ONE_TARGET)
    blocker = tmp_path / "blocker"
    blocker.write_text("mine")
    code = main([command[0], "-f", str(agent), "-o", str(blocker / "generated"), *command[1:]])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [f"error: cannot write the output folder {blocker / 'generated'}: "
                                f"{blocker} is a file, not a folder; pass another folder with -o"]
    assert blocker.read_text() == "mine"


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_read_only_output_folder_is_one_line_of_error(tmp_path, capsys, command):
    agent = write_agent(tmp_path, ONE_TARGET)
    out = tmp_path / "generated"
    out.mkdir()
    out.chmod(0o500)
    try:
        code = main([command[0], "-f", str(agent), "-o", str(out), *command[1:]])
    finally:
        out.chmod(0o700)
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.splitlines()) == 1 and err.startswith(f"error: cannot write the output folder {out}: ")
    assert "Permission denied" in err
