"""Stages (dev, prod, ...): the agent with one stage's block merged in, as a document of its own.

A stage's values replace the agent's; a mapping in both (concurrency, targets.aws, ...) is merged key
by key, so `concurrency: {max: 50}` keeps the agent's `warm`. Lists (tools, cors.origins) are
replaced whole. The merged document keeps each value's line and column, so a message points at
the line that set the value, in the stage's block or above it.
"""

from __future__ import annotations

from typing import Any

from framework.config.load import Document, PathT
from framework.errors import UsageError


def names(doc: Document) -> tuple[str, ...]:
    """The stages agent.yaml lists, in the order written."""
    stages = doc.data.get("stages") if isinstance(doc.data, dict) else None
    return tuple(stages) if isinstance(stages, dict) else ()


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{key: _merge(base.get(key), value) for key, value in over.items()}}
    return over


def _under(path: PathT, prefix: PathT) -> bool:
    return path[:len(prefix)] == prefix


def require(doc: Document, stage: str) -> None:
    """A stage agent.yaml does not list is a UsageError naming those it does."""
    listed = names(doc)
    if stage not in listed:
        have = f"it lists: {', '.join(listed)}" if listed else "it has no `stages:`"
        raise UsageError(f"stage {stage!r} is not in {doc.file} ({have})")


def staged(doc: Document, stage: str) -> Document:
    """The document of one stage (pure); see require for a stage not listed."""
    require(doc, stage)
    block = doc.data["stages"][stage] or {}
    data = _merge({key: value for key, value in doc.data.items() if key != "stages"}, block)
    prefix = ("stages", stage)

    def rebased(table: dict[PathT, Any]) -> dict[PathT, Any]:
        """Positions of the agent's values that still stand, then the stage's, moved to their paths."""
        replaced = [path[2:] for path in table if _under(path, prefix) and len(path) > 2
                    and not isinstance(_at(block, path[2:]), dict)]
        kept = {path: mark for path, mark in table.items() if path[:1] != ("stages",)
                and not any(_under(path, cut) and path != cut for cut in replaced)}
        return {**kept, **{path[2:]: mark for path, mark in table.items() if _under(path, prefix) and len(path) > 2}}

    written = frozenset(path[2:] for path in doc.values if _under(path, prefix) and len(path) > 2)
    return Document(file=doc.file, data=data, text="", values=rebased(doc.values), keys=rebased(doc.keys),
                    implicit=rebased(doc.implicit), stage=stage, staged=written)


def _at(data: Any, path: PathT) -> Any:
    for part in path:
        data = data[part]
    return data
