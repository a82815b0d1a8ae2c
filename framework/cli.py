"""Command line: parse arguments, call one function, print, map errors to exit codes. No logic here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framework.errors import ConfigError, FrameworkError, StaleError
from framework.model import TARGET_NAMES


def _parser() -> argparse.ArgumentParser:
    from framework.config.report import FORMATS

    parser = argparse.ArgumentParser(
        prog="python -m framework",
        description="Build and run LLM agents on serverless platforms from one agent.yaml.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-f", "--file", default="agent.yaml", help="the agent file (default: agent.yaml)")
        sub.add_argument("--format", choices=FORMATS, default="text",
                         help="how to print problems: text (people), github (Actions annotations), json")

    validate = commands.add_parser("validate", help="check agent.yaml and print every problem at once")
    common(validate)

    build = commands.add_parser("build", help="validate, then write a function app per target to generated/")
    common(build)
    build.add_argument("-o", "--output", default="generated", help="output folder (default: generated)")
    build.add_argument("--target", choices=TARGET_NAMES, help="build only this target")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 if generated/ differs from a fresh build (CI gate)")
    return parser


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
    from framework.build import render_all
    from framework.config.report import format_problems
    from framework.config.validate import validate_file
    from framework.targets import TARGETS
    from framework.writer import differences, read_manifest, write

    validated = validate_file(args.file)
    if validated.warnings and args.format != "json":
        print(format_problems(list(validated.warnings), args.format), file=sys.stderr)
    out = Path(args.output)
    build = render_all(validated, only=args.target, previous=read_manifest(out))
    full = args.target is None
    if args.check:
        diffs = differences(build, out, full)
        if diffs:
            raise StaleError(diffs)
        print(f"{out}/ is up to date with {args.file}")
        return 0
    write(build, out, full)
    agent = validated.agent
    for settings in agent.targets:
        if settings.name not in build.targets:
            continue
        target = TARGETS[settings.name]
        print(f"{target.title:<34} {out}/{settings.name}/  "
              f"({len(build.targets[settings.name])} files, answers POST {target.endpoint(agent, settings)})")
    print(f"{'manifest':<34} {out}/manifest.json")
    return 0


_COMMANDS = {"validate": _cmd_validate, "build": _cmd_build}


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
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
