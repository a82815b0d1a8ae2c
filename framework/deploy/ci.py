"""init-ci: a GitHub Actions workflow for GitOps, written to pass zizmor (the Actions security linter).

Pull requests: validate (annotations), build --check, then plan per stage as Markdown, in the job summary
and in one pull-request comment that each push edits. The deploy branch: deploy --yes per stage in the
order agent.yaml lists them, one job each chained by `needs:`, each behind its GitHub environment (the
last behind `production`). Cloud credentials by OIDC federation wherever the cloud offers it (AWS role,
Google workload identity, Azure federated credential), never stored keys; Vercel has no federation for
its API, so its tokens are secrets. Every action is pinned to a commit and the framework to the version
that wrote the file, so a run does what the reviewed file says."""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework import __version__
from framework.errors import OutputError, UsageError
from framework.platforms import registry

DISTRIBUTION = "serverless-agent-hosting"
MARKER = "<!-- agenthost-plan -->"  # finds the bot's plan comment again, to edit it rather than add one
COMMENT_LIMIT = 65_000  # GitHub refuses a comment body over 65,536 characters

_CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1  # v7.0.1"
_SETUP_PYTHON = "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97  # v7.0.0"
_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]+")  # a job id's tail and an environment name, as written
_READS = re.compile(r"\$\{\{\s*(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class Repository:
    """What the workflow is written for, as init_ci reads it from the agent files (pure data)."""

    targets: Mapping[str, Mapping[str, Any]]  # platform -> its options, over every agent file
    from_env: tuple[str, ...] = ()  # secrets some target copies from the deploying environment
    stages: tuple[str, ...] = ()  # deploy order; () = no stages, one deploy
    files: tuple[str, ...] = ()  # repository-relative, one `-f` each; () = agenthost finds them itself


def _run(name: str, script: str, env: Mapping[str, str] | None = None) -> str:
    """A `run:` step; the script is a block scalar, so no path or quote in it can break the YAML."""
    lines = [f"      - name: {name}"]
    if env:
        lines += ["        env:"] + [f"          {key}: {value}" for key, value in env.items()]
    lines += ["        run: |"] + [f"          {line}" for line in script.splitlines()]
    return "\n".join(lines)


def _setup(install: str) -> str:
    return "\n".join([
        f"      - uses: {_CHECKOUT}",
        "        with:",
        "          persist-credentials: false  # no token left in .git/config for later steps",
        f"      - uses: {_SETUP_PYTHON}",
        "        with:",
        '          python-version: "3.12"',
        _run("install agenthost", f"python -m pip install {shlex.quote(install)}"),
    ])


def _permissions(login: bool, comment: bool = False) -> str:
    lines = ["    permissions:", "      contents: read  # checkout"]
    if login:
        lines.append("      id-token: write  # the cloud logins trade GitHub's OIDC token for short-lived credentials")
    if comment:
        lines.append("      pull-requests: write  # the one plan comment")
    return "\n".join(lines)


def _plan_script(command: str, stages: Sequence[str]) -> str:
    out = '"$RUNNER_TEMP/plan.md"'
    runs = [f"{command} --stage {shlex.quote(stage)}" for stage in stages] or [command]
    return "\n".join([f"echo {shlex.quote(MARKER)} > {out}",
                      *(f"{run} --format markdown >> {out} || [ $? -eq 2 ]" for run in runs),
                      f'echo "<sub>plan of $HEAD_SHA</sub>" >> {out}',
                      f'cat {out} >> "$GITHUB_STEP_SUMMARY"'])


# the ids of the bot's plan comments (jq, as gh's --jq runs it), on each page of the pull request's comments
MINE = f'.[] | select(.user.login == "github-actions[bot]" and (.body | startswith("{MARKER}"))) | .id'
_COMMENT = f"""\
body="$RUNNER_TEMP/plan.md"
if [ "$(wc -c < "$body")" -gt {COMMENT_LIMIT} ]; then
  body="$RUNNER_TEMP/comment.md"
  printf '%s\\nThe plan is longer than a comment holds: read it in the summary of %s\\n' {shlex.quote(MARKER)} \\
    "$RUN_URL" > "$body"
fi
mine='{MINE}'
id=$(gh api "repos/$REPO/issues/$PR/comments" --paginate --jq "$mine" | head -n 1)
if [ -n "$id" ]; then
  gh api --method PATCH "repos/$REPO/issues/comments/$id" -F "body=@$body" > /dev/null
else
  gh api --method POST "repos/$REPO/issues/$PR/comments" -F "body=@$body" > /dev/null
fi"""

# everything an attacker may choose reaches the scripts through env:, never as ${{ }} inside run:
_COMMENT_ENV = {"GH_TOKEN": "${{ github.token }}", "REPO": "${{ github.repository }}",
                "PR": "${{ github.event.pull_request.number }}",
                "RUN_URL": "${{ github.server_url }}/${{ github.repository }}/actions/runs/${{ github.run_id }}"}


def _header(repo: Repository, branch: str, body: str, explanations: Sequence[str], environments: Sequence[str]) -> str:
    """The comment at the top; the names it lists are read off the body, so they cannot drift from it."""
    reads = {kind: sorted({name for k, name in _READS.findall(body) if k == kind}) for kind in ("vars", "secrets")}
    where = " ".join(repo.files) if repo.files else "agent.yaml, else agents/*/agent.yaml"
    order = ", then ".join(f"{stage} (environment {env})"
                           for stage, env in zip(repo.stages, environments, strict=False))
    lines = [f"# Generated by `agenthost init-ci` (agenthost {__version__}). GitOps for {where}:",
             "#   pull request -> validate (annotations on the lines), build --check, plan"
             + (" per stage" if repo.stages else "") + ": in the job summary and in one",
             "#                   pull-request comment, edited by each push",
             f"#   push to {branch} -> deploy --yes" + (f" per stage: {order}" if repo.stages else ""),
             "# Variables it reads (Settings > Secrets and variables > Actions > Variables):",
             *_listed(reads["vars"]),
             "# Secrets it reads (repository secrets, or secrets of the environments below):",
             *_listed(reads["secrets"]),
             "# What they are:" if explanations else "", *explanations,
             "# Pull requests run their branch's agent.yaml: they get the PLAN identities and no function",
             "# secrets (plan shows a secret as kept). Let the DEPLOY identities trust only the GitHub",
             f"# environment{'s' if len(environments) > 1 else ''} {', '.join(environments)} "
             "(OIDC subject repo:OWNER/REPO:environment:NAME)."]
    return "\n".join(line for line in lines if line) + "\n"


def _listed(names: Sequence[str]) -> list[str]:
    """Names as comment lines of at most 100 characters."""
    return [f"#   {line}" for line in textwrap.wrap(", ".join(names), 96)] or ["#   none"]


def workflow(repo: Repository, branch: str = "main", install: str | None = None) -> str:
    """The workflow text: each target signed in to as its platform's CiLogin says, in the registry's
    order; `install` is the pip requirement of the framework (default: this exact version); pure."""
    for stage in repo.stages:
        if not _STAGE_NAME.fullmatch(stage):
            raise UsageError(f"init-ci: the stage name {stage!r} cannot name a GitHub job or environment "
                             "(letters, digits, - and _)")
    logins_of = {p.name: p.ci_login for p in registry.platforms() if p.name in repo.targets and p.ci_login}

    def logins(role: str) -> list[str]:
        return [login.step.replace("@@", role).replace("REGION", str(repo.targets[name].get("region") or "us-east-1"))
                for name, login in logins_of.items() if login.step]

    signs_in = bool(logins("PLAN"))
    tokens = {name for login in logins_of.values() for name in login.deploy_secrets}
    deploy_env = {name: f"${{{{ secrets.{name} }}}}" for name in sorted(set(repo.from_env) | tokens)}
    plan_env = {env: f"${{{{ secrets.{name} }}}}" for login in logins_of.values()
                for env, name in login.plan_secrets.items()}
    files = "".join(f" -f {shlex.quote(file)}" for file in repo.files)
    setup = _setup(install or f"{DISTRIBUTION}=={__version__}")

    check = [f"  check:\n    name: validate, build --check, plan\n    if: github.event_name == 'pull_request'\n"
             "    runs-on: ubuntu-latest\n"
             f"    timeout-minutes: 30\n{_permissions(signs_in, comment=True)}\n    steps:", setup,
             _run("validate", f"agenthost validate{files} --format github"),
             _run("generated/ is up to date", f"agenthost build{files} --check"),
             *logins("PLAN"),
             _run("plan (exit 2 = changes pending, which is what a pull request is for)",
                  _plan_script(f"agenthost plan{files}", repo.stages),
                  {**plan_env, "HEAD_SHA": "${{ github.event.pull_request.head.sha }}"}),
             _run("keep one plan comment on the pull request", _COMMENT, _COMMENT_ENV)]

    stages: Sequence[str | None] = repo.stages or [None]
    environments = [*repo.stages[:-1], "production"]  # the last (or only) deploy is production
    jobs = ["\n".join(check)]
    for index, (stage, environment) in enumerate(zip(stages, environments, strict=True)):
        needs = f"    needs: deploy-{stages[index - 1]}\n" if index else ""
        deploy = f"agenthost deploy{files}" + (f" --stage {shlex.quote(stage)}" if stage else "") + " --yes"
        jobs.append("\n".join([
            f"  deploy{'-' + stage if stage else ''}:\n    name: deploy{' ' + stage if stage else ''}\n{needs}"
            f"    if: github.event_name == 'push' && github.ref == 'refs/heads/{branch}'\n"
            f"    runs-on: ubuntu-latest\n    timeout-minutes: 60\n    environment: {environment}\n"
            f"{_permissions(signs_in)}\n    steps:", setup, *logins("DEPLOY"),
            # values copied into the functions' settings at deploy time (never printed); a secret-store
            # reference in agent.yaml (`secrets: {NAME: {aws: ..., gcp: ..., azure: ...}}`) needs none
            _run(f"deploy{' ' + stage if stage else ''}", deploy, deploy_env)]))

    body = (f"name: agent\n\non:\n  pull_request:\n  push:\n    branches: [{branch}]\n\n"
            "permissions: {}  # each job asks for only what it needs\n\n"
            "concurrency:\n  group: agent-${{ github.ref }}\n"
            "  # a newer push supersedes a pull request's plan; never stop a deploy half-way\n"
            "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}\n\n"
            "jobs:\n" + "\n\n".join(jobs) + "\n")
    explanations = [login.variables for login in logins_of.values()]
    return _header(repo, branch, body, explanations, environments) + body


def stage_names(documents: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every stage of the agent files, in the order written, first seen first: the deploy order."""
    return tuple(dict.fromkeys(name for data in documents for name in (data.get("stages") or {})))


def _repository_root(workflow_path: Path) -> Path:
    """The folder the workflow runs in: above .github/workflows/, else the current folder."""
    folder = workflow_path.absolute().parent
    return folder.parent.parent if (folder.name, folder.parent.name) == ("workflows", ".github") else Path.cwd()


def _discovered(root: Path) -> list[str]:
    """What agenthost finds without -f: agent.yaml at the root, else every agents/*/agent.yaml."""
    if (root / "agent.yaml").is_file():
        return ["agent.yaml"]
    return sorted(path.relative_to(root).as_posix() for path in root.glob("agents/*/agent.yaml"))


def _relative(files: Sequence[str], root: Path) -> list[str]:
    relative = []
    for file in files:
        try:
            relative.append(Path(file).absolute().relative_to(root.absolute()).as_posix())
        except ValueError:
            raise UsageError(f"{file} is outside the repository the workflow runs in ({root})") from None
    return relative


def init_ci(files: list[str], path: str, branch: str = "main", force: bool = False,
            install: str | None = None) -> Path:
    """Write the workflow for the agent files found (or named); the commands in it name them with -f
    unless they are exactly what agenthost finds by itself in the repository."""
    from framework.config.load import load
    from framework.config.validate import validate_stages

    targets: dict[str, dict[str, Any]] = {}
    from_env: set[str] = set()
    documents: list[Mapping[str, Any]] = []
    # the agent and each of its stages: a stage may add a target, whose login the workflow then needs
    versions = [(file, validated) for file in files for validated in validate_stages(load(file))]
    for file, validated in versions:
        agent = validated.agent
        if validated.document.stage is None:
            documents.append(validated.document.data)
        options = {t.name: dict(t.options) for t in agent.targets}
        for platform in registry.platforms():
            login = platform.ci_login
            for key in (login.requires if login and platform.name in options else ()):
                if not options[platform.name].get(key):
                    raise UsageError(f"init-ci needs `{key}:` under targets.{platform.name} in {file} "
                                     "(the workflow deploys there)")
        for name, settings in options.items():
            targets.setdefault(name, settings)
        # a secret some target takes from the deploying environment must be in the job's environment
        from_env |= {name for name, refs in agent.secrets.items() if any(t not in refs for t in options)}
    target = Path(path)
    root = _repository_root(target)
    relative = _relative(files, root)
    named = () if sorted(relative) == _discovered(root) else tuple(relative)
    if target.exists() and not force:
        raise UsageError(f"{target} already exists: pass --force to overwrite it")
    text = workflow(Repository(targets, tuple(sorted(from_env)), stage_names(documents), named), branch, install)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        from framework.writer import file_in_the_way

        blocked = file_in_the_way(target)
        why = f"{blocked} is a file, not a folder" if blocked else error.strerror or str(error)
        raise OutputError(f"cannot write the workflow {target}: {why}; pass another path with --workflow") from None
    return target
