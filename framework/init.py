"""init: start an agent in any repository. Writes a commented starter agent.yaml, the schema editors read
(its `$schema` line points at generated/agent.schema.json beside it, so no framework checkout is needed)
and the .gitignore lines for the tool state that must never be committed."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from framework.errors import OutputError, UsageError
from framework.render import environment
from framework.schema import schema
from framework.schema_file import write_editor_schema

STARTER = Path(__file__).with_name("templates") / "agent.yaml.j2"
GENERATED = "generated"  # the folder the starter's `$schema` line points into, beside agent.yaml
FALLBACK_NAME = "my-agent"  # when the folder's name holds no usable letters

# Made by the platforms' tools, the local runs and the build's lock beside generated/: machine state.
GITIGNORE_HEADER = "# agenthost: tool state, never committed"
GITIGNORE = (
    f"{GENERATED}/**/node_modules/",
    f"{GENERATED}/**/.aws-sam/",
    f"{GENERATED}/**/.vercel/",
    f".{GENERATED}.lock",
    f"{GENERATED}/**/.*.lock",
    "__pycache__/",
    ".venv/",
)


@dataclass(frozen=True)
class Started:
    """What init wrote: the agent file, its editor schema, and the lines it added to .gitignore."""

    name: str
    agent: Path
    schema: Path
    gitignore: Path
    ignored: tuple[str, ...]


def _name_schema() -> dict:
    return schema()["properties"]["name"]


def suggest_name(text: str) -> str:
    """`text` made into the schema's name form: ASCII lowercase, runs of anything else as one hyphen,
    starting with a letter, not ending with a hyphen, cut to the longest name allowed (may be too short)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"^[^a-z]+", "", re.sub(r"[^a-z0-9]+", "-", ascii_text))
    return slug[:_name_schema()["maxLength"]].rstrip("-")


def _valid(name: str) -> bool:
    return jsonschema.Draft202012Validator(_name_schema()).is_valid(name)


def default_name(folder: Path) -> str:
    """The agent's name when none is given: the folder's own name, made valid."""
    name = suggest_name(folder.resolve().name)
    return name if _valid(name) else FALLBACK_NAME


def check_name(name: str) -> None:
    """A UsageError in plain words (with a valid spelling to try, when there is one) for a bad name."""
    if _valid(name):
        return
    node = _name_schema()
    suggestion = suggest_name(name)
    hint = f"; try {suggestion}" if _valid(suggestion) else ""
    raise UsageError(f"{name!r} cannot be the agent's name: a name {node['x-message']}, and is "
                     f"{node['minLength']} to {node['maxLength']} characters long{hint}")


def starter(name: str) -> str:
    """The starter agent.yaml's text for a valid name (one target, every line commented)."""
    return environment(STARTER.parent).get_template(STARTER.name).render(name=name)


def add_to_gitignore(path: Path, entries: tuple[str, ...] = GITIGNORE) -> tuple[str, ...]:
    """Append the entries `path` lacks (creating it if needed), after one header line, in the file's own
    line endings; the lines already there stay byte for byte, so running init again adds nothing.
    Returns the lines added."""
    with open(path, "a+", encoding="utf-8", newline="") as file:
        file.seek(0)
        text = file.read()
        present = {line.strip() for line in text.splitlines()}
        missing = tuple(entry for entry in entries if entry not in present)
        if missing:
            eol = "\r\n" if "\r\n" in text else "\n"
            block = list(missing) if GITIGNORE_HEADER in present else [GITIGNORE_HEADER, *missing]
            before = eol if text and not text.endswith(("\n", "\r")) else ""  # end the last line
            if text.strip() and GITIGNORE_HEADER not in present:
                before += eol  # a blank line sets our block apart
            file.write(before + eol.join(block) + eol)
    return missing


def init(file: str, name: str | None = None, force: bool = False) -> Started:
    """Write the starter `file` (refused if it exists, unless force), generated/agent.schema.json and the
    .gitignore lines, all in `file`'s folder. Nothing is written when the name or the file is refused."""
    agent = Path(file)
    folder = agent.parent
    if name is None:
        name = default_name(folder)
    check_name(name)
    if agent.exists() and not force:
        raise UsageError(f"{agent} already exists: pass --force to overwrite it (or -f for another file)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        agent.write_text(starter(name), encoding="utf-8")
        gitignore = folder / ".gitignore"
        ignored = add_to_gitignore(gitignore)
    except OSError as error:
        raise OutputError(f"cannot write {error.filename or agent}: {error.strerror or error}") from None
    return Started(name, agent, write_editor_schema(folder / GENERATED), gitignore, ignored)
