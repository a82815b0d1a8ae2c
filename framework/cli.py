"""Command line: parse arguments, call one function, print, map errors to exit codes. No logic here."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from framework.errors import ConfigError, FrameworkError, StaleError
from framework.platforms import registry

# Each command: its one-line description (shown in `--help` of the command and of the program) and
# examples, shown under the command's options.
_HELP = {
    "validate": ("check agent.yaml and print every problem at once",
                 "python -m framework validate\n"
                 "python -m framework validate -f other.yaml --format github   # annotations in GitHub Actions"),
    "build": ("validate, then write a function app per target to generated/",
              "python -m framework build\n"
              "python -m framework build --target aws -o out   # one platform, another folder\n"
              "python -m framework build --check               # CI: exit 1 if generated/ is out of date"),
    "serve": ("run one target's app locally in its platform's runtime",
              "python -m framework serve --target gcp --port 8080"),
    "invoke": ("send one message to a target's app run locally, print the answer",
               "python -m framework invoke --target azure -m \"What is AI?\""),
    "plan": ("show what deploy would create, update or delete (exit 0: no changes, 2: changes pending)",
             "python -m framework plan\n"
             "python -m framework plan --target aws --format json"),
    "deploy": ("build, show the plan, confirm, apply it to the cloud; print the function URL",
               "python -m framework deploy\n"
               "python -m framework deploy --yes --format json   # CI: no question"),
    "destroy": ("delete every resource the framework created for this agent (and nothing else)",
                "python -m framework destroy --target aws --yes"),
    "info": ("what is deployed now, per target, with URLs",
             "python -m framework info\n"
             "python -m framework info --target vercel --format json"),
    "init-ci": ("write a GitHub Actions workflow: plan on pull requests, deploy on main, cloud credentials "
                "by OIDC federation",
                "python -m framework init-ci\n"
                "python -m framework init-ci --branch release --force"),
}


def _parser() -> argparse.ArgumentParser:
    from framework import __version__
    from framework.config.report import FORMATS

    parser = argparse.ArgumentParser(
        prog="python -m framework",
        description="Build and run LLM agents on serverless platforms from one agent.yaml.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        text, examples = _HELP[name]
        epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples.splitlines())
        return commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                                   epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)

    platforms = registry.names()

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-f", "--file", default="agent.yaml", help="the agent file (default: agent.yaml)")
        sub.add_argument("--format", choices=FORMATS, default="text",
                         help="how to print the result and problems: text (people), github (Actions "
                              "annotations), json")

    validate = command("validate")
    common(validate)

    build = command("build")
    common(build)
    build.add_argument("-o", "--output", default="generated", help="output folder (default: generated)")
    build.add_argument("--target", choices=platforms, help="build only this target")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 if generated/ differs from a fresh build (CI gate)")
    serve = command("serve")
    serve.add_argument("-f", "--file", default="agent.yaml", help="the agent file (default: agent.yaml)")
    serve.add_argument("-o", "--output", default="generated", help="generated folder (default: generated)")
    serve.add_argument("--target", choices=platforms, help="the platform (needed when agent.yaml lists several)")
    serve.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default: 8080)")
    serve.add_argument("--quiet", action="store_true", help="do not print each request")

    invoke = command("invoke")
    invoke.add_argument("-f", "--file", default="agent.yaml", help="the agent file (default: agent.yaml)")
    invoke.add_argument("-o", "--output", default="generated", help="generated folder (default: generated)")
    invoke.add_argument("--target", choices=platforms, help="the platform (needed when agent.yaml lists several)")
    invoke.add_argument("-m", "--message", required=True, help="the user message")
    invoke.add_argument("--json", action="store_true", help="print the raw response body")
    invoke.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                        help="ask for a streamed answer (where the target streams)")

    for name in ("plan", "deploy", "destroy", "info"):
        sub = command(name)
        sub.add_argument("-f", "--file", default="agent.yaml", help="the agent file (default: agent.yaml)")
        sub.add_argument("-o", "--output", default="generated",
                         help="generated folder, checked for staleness (default: generated)")
        sub.add_argument("--target", choices=platforms, help="the platform (default: every deployable one)")
        sub.add_argument("--format", choices=("text", "json"), default="text", help="text (people) or json")
        if name in ("deploy", "destroy"):
            sub.add_argument("-y", "--yes", action="store_true", help="apply without asking (CI)")
            sub.add_argument("--fail-fast", action="store_true",
                             help="stop at the first target that fails (default: go on with the others)")

    init_ci = command("init-ci")
    init_ci.add_argument("-f", "--file", default="agent.yaml", help="the agent file (default: agent.yaml)")
    init_ci.add_argument("--workflow", default=".github/workflows/agent.yml",
                         help="where to write it (default: .github/workflows/agent.yml)")
    init_ci.add_argument("--branch", default="main", help="the branch that deploys (default: main)")
    init_ci.add_argument("--force", action="store_true", help="overwrite an existing workflow")
    return parser


def _cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from framework.local import session

    prepared = session.prepare(args.file, args.output, args.target)
    env = session.model_environment(prepared.agent)
    if prepared.rebuilt:
        print(f"rebuilt {args.output}/ from {args.file}", file=sys.stderr)
    app = session.launch(prepared, args.port, env, log=not args.quiet)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"Serving {prepared.agent.name} ({prepared.settings.name}) at {app.url}", flush=True)
    print(f"  try: curl -X POST {app.url} -H 'Content-Type: application/json' -d '{{\"message\": \"Hello\"}}'",
          flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0


def _cmd_invoke(args: argparse.Namespace) -> int:
    import json

    from framework.local import session

    prepared = session.prepare(args.file, args.output, args.target)
    env = session.model_environment(prepared.agent)
    if prepared.rebuilt:
        print(f"rebuilt {args.output}/ from {args.file}", file=sys.stderr)
    with session.invoke(prepared, args.message, args.stream, env) as answer:
        if answer.content_type.startswith("application/json"):
            body = b"".join(answer.chunks)
            try:
                text = body.decode() if args.json else json.dumps(json.loads(body), indent=2, ensure_ascii=False)
            except ValueError:
                text = body.decode("utf-8", "replace")
            print(text)
        else:  # a stream: show it as it arrives
            for chunk in answer.chunks:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            print()
    return 0 if 200 <= answer.status < 300 else 1


def _cmd_validate(args: argparse.Namespace) -> int:
    from framework.config.report import format_problems
    from framework.config.validate import validate_file

    validated = validate_file(args.file)
    if args.format == "json":
        print(format_problems(list(validated.warnings), "json"))
    else:
        if validated.warnings:
            print(format_problems(list(validated.warnings), args.format), file=sys.stderr)
        targets = ", ".join(t.name for t in validated.agent.targets)
        print(f"{args.file}: ok ({targets})")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    import json

    from framework.build import render_all
    from framework.config.report import format_problems
    from framework.config.validate import validate_file
    from framework.writer import differences, write

    validated = validate_file(args.file)
    warnings = list(validated.warnings)
    if warnings and args.format != "json":
        print(format_problems(warnings, args.format), file=sys.stderr)
    out = Path(args.output)
    build = render_all(validated, only=args.target)
    full = args.target is None
    if args.check:
        diffs = differences(build, out, full)
        if diffs:
            raise StaleError(diffs)
        if args.format == "json":
            print(json.dumps({**json.loads(format_problems(warnings, "json")), "up_to_date": True}, indent=2))
        else:
            print(f"{out}/ is up to date with {args.file}")
        return 0
    write(build, out, full)
    agent = validated.agent
    built = {}
    for settings in agent.targets:
        if settings.name in build.targets:
            target = registry.get(settings.name)
            built[settings.name] = {"title": target.title, "folder": f"{out}/{settings.name}",
                                    "files": len(build.targets[settings.name]),
                                    "endpoint": target.endpoint(agent, settings)}
    if args.format == "json":
        print(json.dumps({**json.loads(format_problems(warnings, "json")), "targets": built,
                          "manifest": f"{out}/manifest.json"}, indent=2, ensure_ascii=False))
        return 0
    for row in built.values():
        print(f"{row['title']:<34} {row['folder']}/  ({row['files']} files, answers POST {row['endpoint']})")
    print(f"{'manifest':<34} {out}/manifest.json")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from framework.deploy import commands

    return commands.plan(args.file, args.target, args.output, args.format)


def _cmd_deploy(args: argparse.Namespace) -> int:
    from framework.deploy import commands

    return commands.deploy(args.file, args.target, args.output, args.format, args.yes, fail_fast=args.fail_fast)


def _cmd_destroy(args: argparse.Namespace) -> int:
    from framework.deploy import commands

    return commands.destroy(args.file, args.target, args.output, args.format, args.yes, fail_fast=args.fail_fast)


def _cmd_info(args: argparse.Namespace) -> int:
    from framework.deploy import commands

    return commands.info(args.file, args.target, args.output, args.format)


def _cmd_init_ci(args: argparse.Namespace) -> int:
    from framework.deploy.ci import init_ci

    path = init_ci(args.file, args.workflow, branch=args.branch, force=args.force)
    print(f"wrote {path}: set the repository variables it names at its top (cloud identities GitHub may use)")
    return 0


_COMMANDS = {"validate": _cmd_validate, "build": _cmd_build, "serve": _cmd_serve, "invoke": _cmd_invoke,
             "plan": _cmd_plan, "deploy": _cmd_deploy, "destroy": _cmd_destroy, "info": _cmd_info,
             "init-ci": _cmd_init_ci}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    fmt = getattr(args, "format", "text")
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        from framework.config.report import format_problems

        text = format_problems(exc.problems, fmt)
        print(text, file=sys.stdout if fmt in ("json", "github") else sys.stderr)
        if fmt == "text":
            count = sum(p.severity == "error" for p in exc.problems)
            print(f"{count} error(s); nothing was written", file=sys.stderr)
        return exc.exit_code
    except StaleError as exc:
        print("\n".join(exc.differences), file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.command == "plan" and exc.exit_code == 2:
            return 1  # for plan, 2 means "changes pending": CI must never mistake an error for it
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): what it read stands, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
