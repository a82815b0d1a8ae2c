"""Command line: parse arguments, call the command's one function, show an error once with its exit code.

What a command does is in its stage's module (framework/commands.py, local/session.py,
deploy/commands.py, deploy/ci.py); what is printed, and where, is the reporter's (framework/report.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from framework.errors import ExitCode, FrameworkError, UsageError
from framework.platforms import registry
from framework.report import FORMATS, TextReporter, reporter

# Each command: its one-line description (shown in `--help` of the command and of the program) and
# examples, shown under the command's options.
_HELP = {
    "init": ("write a commented starter agent.yaml here, the schema editors read, and .gitignore lines",
             "agenthost init                  # the agent is named after this folder\n"
             "agenthost init support-bot"),
    "validate": ("check agent.yaml and print every problem at once",
                 "agenthost validate\n"
                 "agenthost validate -f other.yaml --format github   # annotations in GitHub Actions"),
    "build": ("validate, then write a function app per target to generated/",
              "agenthost build\n"
              "agenthost build --target aws -o out   # one platform, another folder\n"
              "agenthost build --check               # CI: exit 1 if generated/ is out of date"),
    "serve": ("run one target's app locally in its platform's runtime",
              "agenthost serve --target gcp --port 8080\n"
              "agenthost serve --target aws --paused      # what clients get while the agent is paused"),
    "invoke": ("send one message to a target's app run locally, print the answer",
               "agenthost invoke --target azure -m \"What is AI?\"\n"
               "agenthost invoke --deployed --target aws -m \"What is AI?\"   # the deployed agent (issue 14)"),
    "plan": ("show what deploy would create, update or delete (exit 0: no changes, 2: changes pending)",
             "agenthost plan\n"
             "agenthost plan --target aws --format json"),
    "deploy": ("build, show the plan, confirm, apply it to the cloud; print the function URL",
               "agenthost deploy\n"
               "agenthost deploy --yes --format json   # CI: no question"),
    "destroy": ("delete every resource the framework created for this agent (and nothing else)",
                "agenthost destroy --target aws --yes"),
    "info": ("what is deployed now, per target, with URLs",
             "agenthost info\n"
             "agenthost info --target vercel --format json"),
    "init-ci": ("write a GitHub Actions workflow: plan on pull requests, deploy on main, cloud credentials "
                "by OIDC federation",
                "agenthost init-ci\n"
                "agenthost init-ci --branch release --force"),
    # ---- pause / resume (issue 14)
    "pause": ("the kill switch: the platform refuses every new request to the deployed agent; nothing is deleted",
              "agenthost pause --stage prod\n"
              "agenthost pause --target aws --yes --format json   # CI: no question"),
    "resume": ("let requests in again to an agent `pause` stopped",
               "agenthost resume --stage prod"),
    # ---- history (issue 14)
    "history": ("the deployed versions per target, newest first, and which one is live (read from the cloud)",
                "agenthost history\n"
                "agenthost history --target aws --format json"),
    "rollback": ("make the previous (or --to) deployed version live again; a later deploy converges again",
                 "agenthost rollback --target aws\n"
                 "agenthost rollback --target vercel --to dpl_123 --yes   # CI: no question"),
    # ---- logs (issue 14)
    "logs": ("the deployed function's log lines from its platform's log service; each request's usage record "
             "as a table row (time, status, latency, tokens, steps, stopped)",
             "agenthost logs                          # the last hour, every target\n"
             "agenthost logs --target aws --since 15m --follow   # Ctrl-C stops\n"
             "agenthost logs --request 8f14e45f --format json    # one request's usage record"),
    # ---- edit (issue 15)
    "edit": ("edit agent.yaml in your browser: a form and the YAML side by side, checked as you type, saved "
             "and built, tried on a local runtime",
             "agenthost edit                       # opens the browser\n"
             "agenthost edit -f agents/bot/agent.yaml --port 8800 --no-browser"),
}


def _parser() -> argparse.ArgumentParser:
    from framework import __version__

    parser = argparse.ArgumentParser(
        prog="agenthost",
        description="Build and run LLM agents on serverless platforms from one agent.yaml.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, aliases: list[str] | None = None) -> argparse.ArgumentParser:
        text, examples = _HELP[name]
        epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples.splitlines())
        return commands.add_parser(name, aliases=aliases or [], help=text, description=text[0].upper() + text[1:] + ".",
                                   epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)

    platforms = registry.names()

    def selection(sub: argparse.ArgumentParser, output: bool = True) -> None:
        """Which agents and stage a command works on, and where their builds are."""
        sub.add_argument("-f", "--file", action="append", default=[], metavar="FILE",
                         help="an agent file or a glob such as 'agents/*/agent.yaml'; may be given several times "
                              "(default: agent.yaml, else every agents/*/agent.yaml)")
        sub.add_argument("--agent", action="append", default=[], metavar="NAME",
                         help="only this agent (by its name:); may be given several times")
        sub.add_argument("--stage", metavar="NAME", help="the stage (under stages: in agent.yaml) to work on")
        if output:
            sub.add_argument("-o", "--output", default="generated", help="output folder (default: generated)")

    def formats(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--format", choices=FORMATS, default="text",
                         help="how to print the result and problems: text (people), github (Actions "
                              "annotations), json")

    init = command("init")
    init.add_argument("name", nargs="?", metavar="NAME",
                      help="the agent's name (default: this folder's name, made valid)")
    init.add_argument("-f", "--file", default="agent.yaml", help="the agent file to write (default: agent.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing agent file")

    validate = command("validate")
    selection(validate, output=False)
    formats(validate)

    build = command("build")
    selection(build)
    formats(build)
    build.add_argument("--target", choices=platforms, help="build only this target")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 if generated/ differs from a fresh build (CI gate)")
    serve = command("serve")
    selection(serve)
    serve.add_argument("--target", choices=platforms, help="the platform (needed when agent.yaml lists several)")
    serve.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default: 8080)")
    serve.add_argument("--quiet", action="store_true", help="do not print each request")
    serve.add_argument("--paused", action="store_true",
                       help="answer every request as the platform does while the agent is paused (`agenthost pause`)")

    invoke = command("invoke")
    selection(invoke)
    invoke.add_argument("--target", choices=platforms, help="the platform (needed when agent.yaml lists several)")
    invoke.add_argument("-m", "--message", required=True, help="the user message")
    invoke.add_argument("--json", action="store_true", help="print the raw response body")
    invoke.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                        help="ask for a streamed answer (where the target streams)")
    invoke.add_argument("--session", metavar="ID", default=None,
                        help="continue the conversation ID (agents with sessions; the id is printed after each answer)")
    # ---- invoke --deployed (issue 14)
    invoke.add_argument("--deployed", action="store_true",
                        help="send it to the deployed agent's URL (as `info` shows it), with the platform's "
                             "authentication, and AGENT_API_KEY when the agent checks API keys")
    invoke.add_argument("--paused", action="store_true",
                        help="get the answer the platform gives while the agent is paused (`agenthost pause`)")

    for name in ("plan", "deploy", "destroy", "info"):
        sub = command(name, aliases=["remove"] if name == "destroy" else [])
        selection(sub)
        sub.add_argument("--target", choices=platforms, help="the platform (default: every deployable one)")
        sub.add_argument("--format", choices=("text", "json", "markdown") if name == "plan" else ("text", "json"),
                         default="text", help="text (people), json" + (", or markdown (pull-request comments)"
                                                                       if name == "plan" else ""))
        if name in ("deploy", "destroy"):
            sub.add_argument("-y", "--yes", action="store_true", help="apply without asking (CI)")
            sub.add_argument("--fail-fast", action="store_true",
                             help="stop at the first target that fails (default: go on with the others)")

    init_ci = command("init-ci")
    init_ci.add_argument("-f", "--file", action="append", default=[], metavar="FILE",
                         help="an agent file or a glob; may be given several times (default: agent.yaml, else "
                              "every agents/*/agent.yaml, and the workflow then finds them the same way)")
    init_ci.add_argument("--install", metavar="REQUIREMENT",
                         help="what the workflow pip-installs (default: serverless-agent-hosting==<this version>; "
                              "e.g. 'serverless-agent-hosting @ git+https://github.com/ORG/REPO@vX.Y.Z')")
    init_ci.add_argument("--workflow", default=".github/workflows/agent.yml",
                         help="where to write it (default: .github/workflows/agent.yml)")
    init_ci.add_argument("--branch", default="main", help="the branch that deploys (default: main)")
    init_ci.add_argument("--force", action="store_true", help="overwrite an existing workflow")

    # day two (issue 14): pause / resume, history / rollback
    for name in ("pause", "resume", "history", "rollback"):
        sub = command(name)
        selection(sub)
        sub.add_argument("--target", choices=platforms, help="the platform (default: every deployable one)")
        sub.add_argument("--format", choices=("text", "json"), default="text", help="text (people), json")
        if name in ("pause", "resume", "rollback"):
            sub.add_argument("-y", "--yes", action="store_true", help="apply without asking (CI)")
        if name in ("pause", "resume"):
            sub.add_argument("--fail-fast", action="store_true",
                             help="stop at the first target that fails (default: go on with the others)")
        if name == "rollback":
            sub.add_argument("--to", metavar="VERSION", help="the version to make live (default: the one before "
                                                             "the live one); needs --target when several")

    # ---- logs (issue 14)
    logs = command("logs")
    selection(logs)
    logs.add_argument("--target", choices=platforms, help="the platform (default: every deployable one)")
    logs.add_argument("--format", choices=("text", "json"), default="text",
                      help="text (a table of the usage records, other lines as they are), json (the usage "
                           "records, one JSON per line)")
    logs.add_argument("--since", default="1h", metavar="AGE", help="how far back: 30s, 15m, 1h, 2d (default: 1h)")
    logs.add_argument("--follow", action="store_true", help="keep polling for new lines until Ctrl-C")
    logs.add_argument("--request", metavar="ID", help="only the lines of this request (its request_id)")

    # ---- edit (issue 15)
    edit = command("edit")
    edit.add_argument("-f", "--file", action="append", default=[], metavar="FILE",
                      help="the agent file to edit (default: agent.yaml, else the one of agents/*/agent.yaml "
                           "--agent names)")
    edit.add_argument("--agent", action="append", default=[], metavar="NAME",
                      help="the agent to edit (by its name:), when there are several")
    edit.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765; 0: any free one)")
    edit.add_argument("--no-browser", action="store_true", help="print the address only, do not open a browser")
    return parser


def _units(args: argparse.Namespace, every_stage: bool = False):
    """The (agent, stage) units the command line selects (framework/project.py)."""
    from framework import project

    return project.units(project.agent_files(args.file), getattr(args, "output", "generated"), args.agent,
                         args.stage, every_stage=every_stage)


def _one(args: argparse.Namespace):
    """serve and invoke run one agent: the only one, or the one --agent names."""
    units = _units(args)
    if len(units) != 1:
        raise UsageError(f"{args.command} runs one agent; choose one with --agent "
                         f"({', '.join(unit.agent for unit in units)})")
    return units[0]


def _cmd_init(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    import shlex

    from framework.init import init

    started = init(args.file, args.name, force=args.force)
    file = "" if args.file == "agent.yaml" else f" -f {shlex.quote(args.file)}"
    ignored = (f"added {len(started.ignored)} lines to {started.gitignore} (tool state, never committed)"
               if started.ignored else f"{started.gitignore} already ignores the tool state")
    reporter.result([f"wrote {started.agent} (the agent {started.name}, built for AWS Lambda: edit it freely)",
                     f"wrote {started.schema} (the schema your editor reads, named on agent.yaml's first line)",
                     ignored, "next:",
                     f"  agenthost validate{file}    check it and explain any mistake",
                     f"  agenthost build{file}       write the function app into generated/"], None)
    return ExitCode.OK


def _cmd_validate(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework import commands

    return commands.validate(_units(args, every_stage=True), reporter)


def _cmd_build(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework import commands

    return commands.build(_units(args, every_stage=True), args.target, args.check, reporter)


def _cmd_serve(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.local import session

    unit = _one(args)
    return session.serve_command(unit.file, str(unit.output), args.target, args.port, args.quiet, reporter,
                                 unit.stage, paused=args.paused)


def _cmd_invoke(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.local import session

    unit = _one(args)
    if args.deployed and args.paused:
        raise UsageError("--paused shows locally what a paused agent answers; the deployed agent answers "
                         "so once `agenthost pause` has paused it")
    if args.deployed:  # invoke --deployed (issue 14)
        from framework.deploy import remote

        return remote.invoke_deployed(unit.file, args.target, args.output, args.message, args.stream, args.json,
                                      reporter, session_id=args.session, stage=unit.stage, agents=[unit.agent])
    return session.invoke_command(unit.file, str(unit.output), args.target, args.message, args.stream, args.json,
                                  reporter, args.session, unit.stage, paused=args.paused)


def _selected(args: argparse.Namespace) -> dict:
    """What the deploy stage's commands take from the command line: files, stage, agents, streams."""
    from framework import project

    return {"file": project.agent_files(args.file), "target": args.target, "output": args.output,
            "fmt": args.format, "stage": args.stage, "agents": args.agent}


def _cmd_plan(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.deploy import commands

    return commands.plan(**_selected(args), stdout=reporter.stdout, stderr=reporter.stderr)


def _cmd_deploy(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.deploy import commands

    return commands.deploy(**_selected(args), yes=args.yes, fail_fast=args.fail_fast, stdout=reporter.stdout,
                           stderr=reporter.stderr)


def _cmd_destroy(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.deploy import commands

    return commands.destroy(**_selected(args), yes=args.yes, fail_fast=args.fail_fast, stdout=reporter.stdout,
                            stderr=reporter.stderr)


def _cmd_info(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.deploy import commands

    return commands.info(**_selected(args), stdout=reporter.stdout, stderr=reporter.stderr)


def _cmd_init_ci(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework import project
    from framework.deploy.ci import init_ci

    path = init_ci(project.agent_files(args.file), args.workflow, branch=args.branch, force=args.force,
                   install=args.install)
    reporter.result([f"wrote {path}: set the repository variables it names at its top (cloud identities GitHub "
                     "may use)"], None)
    return ExitCode.OK


# ---- pause / resume (issue 14)
def _cmd_pause(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.deploy import pause

    return pause.pause(**_selected(args), yes=args.yes, fail_fast=args.fail_fast, resume=args.command == "resume",
                       stdout=reporter.stdout, stderr=reporter.stderr)


# ---- history (issue 14)
def _cmd_history(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.deploy import history

    return history.history(**_selected(args), stdout=reporter.stdout, stderr=reporter.stderr)


def _cmd_rollback(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.deploy import history

    return history.rollback(**_selected(args), yes=args.yes, to=args.to, stdout=reporter.stdout,
                            stderr=reporter.stderr)


# ---- logs (issue 14)
def _cmd_logs(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.deploy import logs

    return logs.logs(**_selected(args), since=args.since, follow=args.follow, request=args.request,
                     stdout=reporter.stdout, stderr=reporter.stderr)


# ---- edit (issue 15)
def _cmd_edit(args: argparse.Namespace, reporter: TextReporter) -> ExitCode:
    from framework.edit import server

    return server.edit_command(args.file, args.agent, args.port, not args.no_browser, reporter)


@dataclass(frozen=True)
class _Command:
    """A command's function, and the exit codes its results use (an error never borrows one)."""

    run: Callable[[argparse.Namespace, TextReporter], ExitCode]
    results: tuple[ExitCode, ...] = (ExitCode.OK, ExitCode.FAILED)


_COMMANDS = {"init": _Command(_cmd_init),
             "validate": _Command(_cmd_validate), "build": _Command(_cmd_build), "serve": _Command(_cmd_serve),
             "invoke": _Command(_cmd_invoke),
             "plan": _Command(_cmd_plan, (ExitCode.OK, ExitCode.CHANGES_PENDING, ExitCode.FAILED)),
             "deploy": _Command(_cmd_deploy), "destroy": _Command(_cmd_destroy), "info": _Command(_cmd_info),
             "init-ci": _Command(_cmd_init_ci),
             "pause": _Command(_cmd_pause), "resume": _Command(_cmd_pause),  # pause / resume (issue 14)
             "history": _Command(_cmd_history), "rollback": _Command(_cmd_rollback),  # history (issue 14)
             "logs": _Command(_cmd_logs),  # logs (issue 14)
             "edit": _Command(_cmd_edit)}  # edit (issue 15)
_ALIASES = {"remove": "destroy"}  # what Serverless Framework and SAM users type


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = _COMMANDS[_ALIASES.get(args.command, args.command)]
    fmt = getattr(args, "format", "text")
    report = reporter("text" if fmt == "markdown" else fmt)  # markdown is plan's result; errors stay text
    try:
        return command.run(args, report)
    except FrameworkError as error:
        report.error(error)
        return error.exit_code_for(command.results)
    except KeyboardInterrupt:  # nothing to say: the user knows
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader went away (`... | head`): what it read stands, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.FAILED
