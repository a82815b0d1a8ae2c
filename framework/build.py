"""Build: render every selected target of a validated agent into files, plus the manifest (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from framework import __version__
from framework.config.validate import Validated
from framework.errors import UsageError
from framework.platforms import registry
from framework.render import File, json_file

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Build:
    """What `build` writes: files per target, and the manifest describing them."""

    targets: dict[str, list[File]]
    manifest: dict

    def files(self) -> list[File]:
        return [f for files in self.targets.values() for f in files] + [json_file(MANIFEST, self.manifest)]

    def merged(self, previous: dict | None) -> Build:
        """A single-target build whose manifest keeps the other listed targets' entries from the
        previous manifest. The writer calls it under its lock, so two builds of different targets
        into one folder never drop each other's entries."""
        others = set(self.manifest["targets"]) - set(self.targets)
        if not others or not previous:
            return self
        kept = {path: digest for path, digest in previous.get("files", {}).items()
                if path.split("/", 1)[0] in others}
        files = dict(sorted({**kept, **self.manifest["files"]}.items()))
        return replace(self, manifest={**self.manifest, "files": files})


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_all(validated: Validated, only: str | None = None) -> Build:
    """Render the agent's targets (or just `only`: see Build.merged for the other targets' entries)."""
    agent = validated.agent
    names = [t.name for t in agent.targets]
    if only is not None and only not in names:
        listed = ", ".join(names)
        raise UsageError(f"target {only!r} is not in {validated.document.file} (it lists: {listed})")
    targets = {
        settings.name: registry.get(settings.name).render(agent, settings)
        for settings in agent.targets
        if only is None or settings.name == only
    }
    files: dict[str, str] = {}
    for rendered in targets.values():
        files.update({f.path: f.sha256 for f in rendered})
    source = Path(validated.document.file)
    manifest = {
        "framework_version": __version__,
        "agent_yaml": {"path": source.name, "sha256": _sha256_file(source)},
        "prompt_file": None,
        "targets": sorted(names),
        "files": dict(sorted(files.items())),
    }
    if agent.prompt_file:
        manifest["prompt_file"] = {
            "path": agent.prompt_file,
            "sha256": _sha256_file(source.parent / agent.prompt_file),
        }
    return Build(targets=targets, manifest=manifest)
