"""serve and invoke: build if stale, check the environment, start the target's local runner."""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from framework.build import render_all
from framework.config.validate import validate_file
from framework.errors import ExitCode, LocalRunError, MissingKeyError, UsageError
from framework.local.base import LocalApp, LocalOptions
from framework.local.http import Front, Response
from framework.model import Agent, TargetSettings
from framework.platforms import registry
from framework.platforms.base import PausedAnswer
from framework.report import TextReporter
from framework.writer import differences, write


@dataclass(frozen=True)
class Prepared:
    agent: Agent
    settings: TargetSettings
    app_dir: Path
    rebuilt: bool


def prepare(file: str, output: str, target: str | None, stage: str | None = None) -> Prepared:
    """Validate (the stage's agent, with a stage), pick the target, and rebuild its output folder if it
    is out of date."""
    validated = validate_file(file, stage)
    names = [t.name for t in validated.agent.targets]
    if target is None:
        if len(names) != 1:
            raise UsageError(f"agent.yaml lists several targets ({', '.join(names)}); choose one with --target")
        target = names[0]
    if target not in names:
        raise UsageError(f"target {target!r} is not in {file} (it lists: {', '.join(names)})")
    out = Path(output)
    build = render_all(validated)
    rebuilt = bool(differences(build, out))
    if rebuilt:
        write(build, out)
    return Prepared(validated.agent, validated.agent.target(target), out / target, rebuilt)


def unset_secrets(agent: Agent, env: dict[str, str]) -> list[str]:
    """The secrets agent.yaml declares (tool headers' included) that this environment lacks."""
    return [name for name in agent.secrets if name != agent.api_key_env and not env.get(name)]


def model_environment(agent: Agent, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The app's environment: ours, which must hold the model API key (never faked)."""
    env = dict(os.environ if environ is None else environ)
    if not env.get(agent.api_key_env):
        raise MissingKeyError(
            f"{agent.api_key_env} is not set. Set it to your model API key, for example:\n"
            f"  export {agent.api_key_env}=sk-...\n"
            "For a local OpenAI-compatible server (Ollama, vLLM, LM Studio) set any non-empty key and its address:\n"
            f"  export {agent.api_key_env}=local OPENAI_BASE_URL=http://127.0.0.1:11434/v1")
    return env


def launch(prepared: Prepared, port: int, env: dict[str, str], log: bool = False, paused: bool = False) -> LocalApp:
    """The target's app in its local runtime on `port`; paused: behind a PausedFront there."""
    settings = prepared.settings
    options = LocalOptions(
        app_dir=prepared.app_dir.resolve(),
        port=port,
        timeout=float(settings.timeout),
        concurrency=settings.concurrency.max,
        env=env,
        function_name=prepared.agent.name,
        memory=settings.memory,
        settings=dict(settings.options),
        log=log,
    )
    runner = registry.get(settings.name).runner
    if runner is None:
        raise LocalRunError(f"{settings.name} has no local runner: deploy generated/{settings.name}/ to try it")
    if not paused:
        return runner(options)
    answer = paused_answer(prepared)
    return PausedFront(runner(replace(options, port=0)), answer, port, log)


def paused_answer(prepared: Prepared) -> PausedAnswer:
    """What the target's platform answers every request while the agent is paused."""
    load = registry.get(prepared.settings.name).paused
    if load is None:
        raise UsageError(f"--paused: {prepared.settings.name} says nothing of what it answers while paused")
    return load()


class PausedFront:
    """The app, run as usual, behind a front that answers every request (the agent's path, health
    checks, OPTIONS, a warm-up) as the platform does while the agent is paused, before the app sees
    it: the platform refuses them all at its edge, and clients can be tried against that here."""

    def __init__(self, app: LocalApp, answer: PausedAnswer, port: int, log: bool):
        refusal = Response(answer.status, dict(answer.headers), answer.body)
        try:
            self._front = Front(lambda _request: refusal, port=port, log=log).start()
        except OSError as exc:
            app.close()
            raise LocalRunError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self._app = app
        self.answer = answer
        self.url = f"http://127.0.0.1:{self._front.port}{urllib.parse.urlsplit(app.url).path}"

    def close(self) -> None:
        self._front.close()
        self._app.close()


# The variables that point each store at a back-end: when the environment sets one, serve and invoke
# use that back-end (and create the table the agent needs there); else they start one on 127.0.0.1.
STORE_VARIABLES = {"dynamodb": ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"),
                   "firestore": ("FIRESTORE_EMULATOR_HOST", "FIRESTORE_ENDPOINT"),
                   "table": ("AZURE_TABLE_ENDPOINT",),
                   "redis": ("KV_REST_API_URL",)}


def sessions_block(prepared: Prepared) -> dict | None:
    """agent.json's "sessions" of the app to run (None: sessions off)."""
    try:
        config = json.loads((prepared.app_dir / "agent.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    block = config.get("sessions")
    return block if isinstance(block, dict) else None


def store_given(block: dict, env: dict[str, str]) -> bool:
    """Whether the environment points the store of agent.json's sessions block somewhere."""
    names = STORE_VARIABLES.get(block.get("store"), ())
    if block.get("store") == "redis":
        names = (block.get("url_env") or "UPSTASH_REDIS_REST_URL", *names)
    return any(env.get(name) for name in names)


@contextmanager
def local_store(prepared: Prepared, env: dict[str, str], reporter: TextReporter | None = None) -> Iterator[dict]:
    """The app's environment with a session store to use: the one the environment points at, else one
    started here (moto's DynamoDB, the Firestore emulator or fake, Azurite, redis-server behind an
    Upstash REST front), stopped when the block ends. Without sessions: the environment as it is."""
    block = sessions_block(prepared)
    if block is None:
        yield env
        return
    from framework.local import stores

    kind = block.get("store")
    with ExitStack() as stack:
        env = dict(env)
        if not store_given(block, env):
            local = stack.enter_context(stores.start(kind))
            env.update(local.env)
            if kind == "redis":
                env[block.get("url_env") or "UPSTASH_REDIS_REST_URL"] = local.env["KV_REST_API_URL"]
                env[block.get("token_env") or "UPSTASH_REDIS_REST_TOKEN"] = local.env["KV_REST_API_TOKEN"]
            if reporter is not None:
                shown = " ".join(f"{k}={v}" for k, v in sorted(local.env.items()) if "KEY" not in k and "TOKEN" not in k
                                 and "CONNECTION" not in k)
                reporter.note(f"sessions: a local {kind} store for this run ({shown}); it forgets everything "
                              "when it stops")
        if kind == "dynamodb":
            endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB") or env["AWS_ENDPOINT_URL"]
            stores.prepare_dynamodb({"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
                                     "AWS_SECRET_ACCESS_KEY": "local", **env,  # noqa: S106
                                     "AWS_ENDPOINT_URL": endpoint}, str(block.get("table")))
        elif kind == "table":
            stores.prepare_table(env, str(block.get("table")))
        yield env


@dataclass
class Answer:
    status: int
    content_type: str
    chunks: Iterator[bytes]
    session_id: str | None = None


def post(url: str, message: str, stream: bool | None = None, timeout: float = 3600,
         session_id: str | None = None) -> Answer:
    """One POST {"message": ...} to a local app; the body is read as it arrives."""
    payload: dict = {"message": message}
    if stream is not None:
        payload["stream"] = stream
    if session_id is not None:
        payload["session_id"] = session_id
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    conn.request("POST", parts.path or "/", body=json.dumps(payload).encode(),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := response.read1(65536):
                yield chunk
        finally:
            conn.close()

    return Answer(response.status, response.getheader("Content-Type") or "", chunks(),
                  response.getheader("x-session-id"))


@contextmanager
def invoke(prepared: Prepared, message: str, stream: bool | None, env: dict[str, str],
           session_id: str | None = None, reporter: TextReporter | None = None,
           paused: bool = False) -> Iterator[Answer]:
    """Start the app (and its local session store, unless the environment points at one) on a free
    port and send one request; both stop when the block ends. The function's own log lines (its usage
    record) go to stderr, as the platform's log would show them. paused: as serve --paused."""
    with local_store(prepared, env, reporter) as app_env:
        app = launch(prepared, 0, app_env, log=True, paused=paused)
        try:
            yield post(app.url, message, stream, session_id=session_id)
        finally:
            app.close()


def _prepared(file: str, output: str, target: str | None, reporter: TextReporter,
              stage: str | None) -> tuple[Prepared, dict[str, str]]:
    """The app to run and its environment; says so when generated/ had to be rebuilt first."""
    prepared = prepare(file, output, target, stage)
    env = model_environment(prepared.agent)
    if prepared.rebuilt:
        reporter.note(f"rebuilt {output}/ from {file}")
    for name in unset_secrets(prepared.agent, env):
        reporter.note(f"{name} is not set here: the function gets it from this environment, as deploy "
                      f"copies it into the cloud; what needs it (a tool's header) will go without it")
    return prepared, env


def serve_command(file: str, output: str, target: str | None, port: int, quiet: bool,
                  reporter: TextReporter, stage: str | None = None, paused: bool = False) -> ExitCode:
    """Run the app until Ctrl-C or SIGTERM (the local front then lets requests in flight finish).
    paused: every request gets the platform's answer to a paused agent (PausedFront)."""
    import signal
    import threading

    prepared, env = _prepared(file, output, target, reporter, stage)
    with local_store(prepared, env, reporter) as app_env:
        return _serve(prepared, app_env, port, quiet, reporter, threading, signal, paused)


def _serve(prepared: Prepared, env: dict[str, str], port: int, quiet: bool, reporter: TextReporter,
           threading, signal, paused: bool) -> ExitCode:
    app = launch(prepared, port, env, log=not quiet, paused=paused)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    where = f"Serving {prepared.agent.name} ({prepared.settings.name})"
    first = (f"{where} PAUSED at {app.url}: every request gets {app.answer.said}; run without --paused to answer"
             if isinstance(app, PausedFront) else f"{where} at {app.url}")
    reporter.result([first, f"  try: curl -X POST {app.url} -H 'Content-Type: application/json' "
                            "-d '{\"message\": \"Hello\"}'"], None)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return ExitCode.OK


def invoke_command(file: str, output: str, target: str | None, message: str, stream: bool | None, raw: bool,
                   reporter: TextReporter, session_id: str | None = None, stage: str | None = None,
                   paused: bool = False) -> ExitCode:
    """Send one message and print the answer: JSON indented (raw: as sent), a stream as it arrives;
    FAILED unless the app answered 2xx. session_id: continue that conversation, kept in a store that
    outlives this command (the environment must point at one: `python -m framework.local.stores KIND`
    starts one and prints the variables). paused: the answer the platform gives while paused (FAILED)."""
    prepared, env = _prepared(file, output, target, reporter, stage)
    if paused:
        reporter.note(f"{prepared.agent.name} ({prepared.settings.name}) is PAUSED here: the request gets "
                      f"{paused_answer(prepared).said}")
    block = sessions_block(prepared)
    if session_id is not None and block is None:
        raise UsageError(f"--session: {prepared.agent.name} keeps no sessions on {prepared.settings.name} "
                         "(add `sessions: {store: auto}` to agent.yaml)")
    if session_id is not None and not store_given(block, env):
        kind = block.get("store")
        raise UsageError(f"--session continues a conversation kept in a store that outlives this command, and the "
                         f"environment points at none: start one with `python -m framework.local.stores {kind}` "
                         "and export the variables it prints")
    with invoke(prepared, message, stream, env, session_id, reporter, paused) as answer:
        return show(answer, raw, reporter)


def show(answer: Answer, raw: bool, reporter: TextReporter) -> ExitCode:
    """An answer printed the way invoke prints it (local or --deployed): JSON indented (raw: as sent),
    a stream as it arrives, the session id on stderr; FAILED unless the status is 2xx."""
    if answer.content_type.startswith("application/json"):
        body = b"".join(answer.chunks)
        try:
            text = body.decode() if raw else json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            text = body.decode("utf-8", "replace")
        reporter.result([text], None)
    else:
        reporter.stream(answer.chunks)
    if answer.session_id and not raw:
        reporter.note(f"session: {answer.session_id} (continue it with --session {answer.session_id})")
    return ExitCode.OK if 200 <= answer.status < 300 else ExitCode.FAILED
