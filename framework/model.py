"""The agent as frozen data: defaults applied, per-target overrides merged, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from framework.schema import defaults

OVERRIDABLE = ("timeout", "memory", "concurrency", "stream")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Concurrency:
    max: int
    warm: int


@dataclass(frozen=True)
class TargetSettings:
    """One platform's effective settings: its own options over the agent-wide ones."""

    name: str
    timeout: int
    memory: int
    concurrency: Concurrency
    stream: bool
    options: Mapping[str, Any]
    # where each effective value was written: target block, top level, or nowhere (default)
    origins: Mapping[str, Path | None]

    def explicit(self, key: str) -> bool:
        return self.origins.get(key) is not None

    def path_of(self, key: str) -> Path:
        """The path to point an error at: where the value was written, else the target itself."""
        return self.origins.get(key) or ("targets", self.name)


@dataclass(frozen=True)
class Agent:
    name: str
    system_prompt: str
    prompt_file: str | None
    model: str
    max_tokens: int
    temperature: float | None
    base_url: str | None
    client: str
    api_key_env: str
    public: bool
    cors_origins: tuple[str, ...]
    # environment variable name -> {cloud: reference to its secret store}; the API key is always listed
    secrets: Mapping[str, Mapping[str, str]]
    targets: tuple[TargetSettings, ...]

    def target(self, name: str) -> TargetSettings:
        for settings in self.targets:
            if settings.name == name:
                return settings
        raise KeyError(name)

    def runtime_config(self, settings: TargetSettings) -> dict[str, Any]:
        """What the generated function reads at cold start (agent.json): data, never code."""
        return {
            "name": self.name,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "base_url": self.base_url,
            "client": self.client,
            "system_prompt": self.system_prompt,
            "timeout": settings.timeout,
            "stream": settings.stream,
            "api_key_env": self.api_key_env,
            "cors": {"origins": list(self.cors_origins)},
            "retries": 2,
            # secret references the function itself resolves at cold start: none unless the
            # platform's render says so (AWS Lambda: ARNs, SSM parameter names)
            "secret_refs": {},
        }


def _concurrency(top: Mapping[str, Any], block: Mapping[str, Any]) -> Concurrency:
    base = defaults("concurrency")
    base.update(top.get("concurrency") or {})
    base.update(block.get("concurrency") or {})
    return Concurrency(max=base["max"], warm=base["warm"])


def build_agent(data: Mapping[str, Any], system_prompt: str, prompt_file: str | None,
                platforms: tuple[str, ...]) -> Agent:
    """Turn schema-valid data into an Agent; the schema's defaults fill what is left out. Its targets
    come in the order of `platforms` (the registry's names)."""
    top = {**defaults(), **data}
    targets = []
    for name in platforms:
        if name not in data["targets"]:
            continue
        block = data["targets"][name] or {}
        origins: dict[str, Path | None] = {}
        for key in OVERRIDABLE:
            if key in block:
                origins[key] = ("targets", name, key)
            elif key in data:
                origins[key] = (key,)
            else:
                origins[key] = None
        targets.append(TargetSettings(
            name=name,
            timeout=block.get("timeout", top["timeout"]),
            memory=block.get("memory", top["memory"]),
            concurrency=_concurrency(data, block),
            stream=block.get("stream", top["stream"]),
            options=MappingProxyType({key: value for key, value in {**defaults("targets", name), **block}.items()
                                      if key not in OVERRIDABLE}),
            origins=MappingProxyType(origins),
        ))
    return Agent(
        name=data["name"],
        system_prompt=system_prompt,
        prompt_file=prompt_file,
        model=data["model"],
        max_tokens=top["max_tokens"],
        temperature=data.get("temperature"),
        base_url=data.get("base_url"),
        client=top["client"],
        api_key_env=top["api_key_env"],
        public=top["public"],
        cors_origins=tuple((data.get("cors") or {}).get("origins", ())),
        secrets=MappingProxyType({
            top["api_key_env"]: {},
            **{name: MappingProxyType(dict(refs)) for name, refs in (data.get("secrets") or {}).items()},
        }),
        targets=tuple(targets),
    )
