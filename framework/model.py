"""The agent as frozen data: defaults applied, per-target overrides merged, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from framework.schema import defaults, defaults_of, definition

OVERRIDABLE = ("timeout", "memory", "concurrency", "stream", "limits", "sessions", "auth")
SESSION_KEYS = ("store", "ttl_hours", "max_messages")  # the agent-wide session settings; the rest is the store's

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Concurrency:
    max: int
    warm: int
    # minutes between the scheduler's warm-up requests (issue 14); None: no schedule
    warm_schedule: int | None = None


@dataclass(frozen=True)
class Limits:
    """Bounds on one request's tool loop (docs/agent-loop.md)."""

    max_steps: int
    max_request_tokens: int | None


@dataclass(frozen=True)
class Sessions:
    """Conversations kept between requests: the agent-wide settings and the store's own (table, ...)."""

    store: str  # as written: auto, or the store's kind
    ttl_hours: int
    max_messages: int
    settings: Mapping[str, Any]  # the store's settings under targets.<name>.sessions (table, collection, ...)


@dataclass(frozen=True)
class Auth:
    """API keys callers must send, and an optional daily token quota per key."""

    api_keys: str  # the NAME of the secret holding the keys, one per line
    daily_tokens: int | None


@dataclass(frozen=True)
class TargetSettings:
    """One platform's effective settings: its own options over the agent-wide ones."""

    name: str
    timeout: int
    memory: int
    concurrency: Concurrency
    stream: bool
    limits: Limits
    sessions: Sessions | None
    auth: Auth | None
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
    # HTTP tools and MCP servers, as written in agent.yaml with the schema's defaults filled in
    tools: tuple[Mapping[str, Any], ...] = ()
    mcp: tuple[Mapping[str, Any], ...] = ()
    log_content: bool = False
    # the stage this is (its name is then <name>-<stage>, and so is every resource deploy makes)
    stage: str | None = None

    def target(self, name: str) -> TargetSettings:
        for settings in self.targets:
            if settings.name == name:
                return settings
        raise KeyError(name)

    @property
    def prompt_digest(self) -> str:
        """The prompt's hex SHA-256: what history shows per version, where the platform keeps it."""
        return hashlib.sha256(self.system_prompt.encode("utf-8")).hexdigest()

    def staged(self, name: str) -> str:
        """A resource name agent.yaml gives (targets.azure.app, a Vercel project) made the stage's own, so
        one stage never deploys over another's."""
        return name if not self.stage or name.endswith(f"-{self.stage}") else f"{name}-{self.stage}"

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
            "tools": [_plain(tool) for tool in self.tools],
            "mcp": [_plain(server) for server in self.mcp],
            "limits": {"max_steps": settings.limits.max_steps,
                       "max_request_tokens": settings.limits.max_request_tokens},
            "log_content": self.log_content,
            "auth": None if settings.auth is None else {"api_keys_env": settings.auth.api_keys,
                                                        "daily_tokens": settings.auth.daily_tokens},
            # the platform's render fills in its store (see framework/platforms/sessions.py)
            "sessions": None,
            # secret references the function itself resolves at cold start: none unless the
            # platform's render says so (AWS Lambda: ARNs, SSM parameter names)
            "secret_refs": {},
        }


def _plain(value: Any) -> Any:
    """A frozen mapping as plain JSON data."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def _limits(top: Mapping[str, Any], block: Mapping[str, Any]) -> Limits:
    base = {**defaults("limits"), **(top.get("limits") or {}), **(block.get("limits") or {})}
    return Limits(max_steps=base["max_steps"], max_request_tokens=base.get("max_request_tokens"))


def _sessions(top: Mapping[str, Any], block: Mapping[str, Any]) -> Sessions | None:
    """None when neither agent.yaml nor the target turns sessions on."""
    if top.get("sessions") is None and block.get("sessions") is None:
        return None
    merged = {**defaults_of(definition("sessions")), **(top.get("sessions") or {}), **(block.get("sessions") or {})}
    return Sessions(store=merged["store"], ttl_hours=merged["ttl_hours"], max_messages=merged["max_messages"],
                    settings=MappingProxyType({k: v for k, v in merged.items() if k not in SESSION_KEYS}))


def _auth(top: Mapping[str, Any], block: Mapping[str, Any]) -> Auth | None:
    merged = {**(top.get("auth") or {}), **(block.get("auth") or {})}
    return Auth(api_keys=merged["api_keys"], daily_tokens=merged.get("daily_tokens")) if merged else None


def _tools(data: Mapping[str, Any]) -> tuple[tuple[Mapping[str, Any], ...], tuple[Mapping[str, Any], ...]]:
    """(HTTP tools, MCP servers) in the order written, with the schema's defaults filled in."""
    http_defaults = {"headers": {}, **defaults_of(definition("http_tool", "http"))}
    mcp_defaults = {"headers": {}, "tools": None, **defaults_of(definition("mcp_tools", "mcp"))}
    http, mcp = [], []
    for entry in data.get("tools") or []:
        if "mcp" in entry:
            mcp.append(_frozen({**mcp_defaults, **entry["mcp"]}))
        else:
            http.append(_frozen({**entry, "http": {**http_defaults, **entry["http"]}}))
    return tuple(http), tuple(mcp)


def _concurrency(top: Mapping[str, Any], block: Mapping[str, Any]) -> Concurrency:
    base = defaults("concurrency")
    base.update(top.get("concurrency") or {})
    base.update(block.get("concurrency") or {})
    return Concurrency(max=base["max"], warm=base["warm"], warm_schedule=base.get("warm_schedule"))


def build_agent(data: Mapping[str, Any], system_prompt: str, prompt_file: str | None,
                platforms: tuple[str, ...], stage: str | None = None) -> Agent:
    """Turn schema-valid data into an Agent; the schema's defaults fill what is left out. Its targets
    come in the order of `platforms` (the registry's names). A stage's data is the agent with its
    block merged in (config/stages.py); its name gets the stage as a suffix."""
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
            limits=_limits(data, block),
            sessions=_sessions(data, block),
            auth=_auth(data, block),
            options=MappingProxyType({key: value for key, value in {**defaults("targets", name), **block}.items()
                                      if key not in OVERRIDABLE}),
            origins=MappingProxyType(origins),
        ))
    tools, mcp = _tools(data)
    return Agent(
        name=f"{data['name']}-{stage}" if stage else data["name"],
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
            # the API keys' secret of every target: deploy must set it like any other secret
            **{settings.auth.api_keys: {} for settings in targets if settings.auth},
            **{name: MappingProxyType(dict(refs)) for name, refs in (data.get("secrets") or {}).items()},
        }),
        targets=tuple(targets),
        tools=tools,
        mcp=mcp,
        log_content=top["log_content"],
        stage=stage,
    )
