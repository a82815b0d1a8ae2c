"""The only place that changes anything: apply a Plan's operations in order, through a registry of
handlers (operation kind -> function), resolving placeholders just before each call.

A handler is `handler(ctx, args) -> dict | None`; what it returns is merged into `ctx.outputs`, so
a later operation can refer to it with {"$output": key} (e.g. the version that publish made).
`DisplayExecutor` walks the same plan without calling anything: that is `plan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from framework.deploy.plan import Operation, Plan, Resource

Handler = Callable[["Context", dict[str, Any]], "Mapping[str, Any] | None"]


class Registry:
    """Operation kind -> handler. Handlers register themselves with @registry.handler(kind)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def handler(self, kind: str) -> Callable[[Handler], Handler]:
        def register(function: Handler) -> Handler:
            if kind in self._handlers:
                raise ValueError(f"two handlers for {kind}")
            self._handlers[kind] = function
            return function
        return register

    def __getitem__(self, kind: str) -> Handler:
        return self._handlers[kind]

    def __contains__(self, kind: str) -> bool:
        return kind in self._handlers


@dataclass
class Context:
    """What handlers may use: the cloud's clients (`api`), resolvable values, outputs so far."""

    api: Any
    secrets: Mapping[str, str] = field(default_factory=dict)  # env name -> value (from the deploying env)
    package: bytes | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    keep: Callable[[str], str] | None = None  # reads a value kept from the deployed function
    files: Sequence[Any] = ()  # the generated app's files (the image build context)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            if len(value) == 1:
                (key, inner), = value.items()
                if key == "$secret":
                    return self.secrets[inner]
                if key == "$package":
                    return self.package
                if key == "$output":
                    return self.outputs[inner]
                if key == "$keep":
                    assert self.keep is not None
                    return self.keep(inner)
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.resolve(v) for v in value]
        return value


Progress = Callable[[str, int, int, Resource, Operation], None]  # (event, index, total, resource, op)


class Executor:
    def __init__(self, registry: Registry, context: Context, progress: Progress | None = None):
        self.registry = registry
        self.context = context
        self.progress = progress

    def check(self, plan: Plan) -> None:
        unknown = sorted({op.kind for op in plan.operations if op.kind not in self.registry})
        if unknown:
            raise ValueError(f"no handler for {', '.join(unknown)}")

    def run(self, plan: Plan) -> dict[str, Any]:
        self.check(plan)
        steps = [(r, op) for r in plan.resources for op in r.operations]
        for index, (resource, op) in enumerate(steps, 1):
            if self.progress:
                self.progress("start", index, len(steps), resource, op)
            result = self.registry[op.kind](self.context, self.context.resolve(dict(op.args)))
            if result:
                self.context.outputs.update(result)
            if self.progress:
                self.progress("done", index, len(steps), resource, op)
        return self.context.outputs


class DisplayExecutor:
    """Walks a plan like Executor but only lists the calls it would make: a dry run."""

    def __init__(self, registry: Registry | None = None):
        self.registry = registry

    def run(self, plan: Plan) -> list[str]:
        if self.registry is not None:
            Executor(self.registry, Context(api=None)).check(plan)
        return [f"{resource.kind} {resource.name}: {op.api or op.kind}"
                for resource in plan.resources for op in resource.operations]
