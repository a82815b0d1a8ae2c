"""Vercel Functions: target.py (limits, render) + templates/, runner.py (edge-runtime locally, edge/),
planner.py (pure deploy plan), api.py (REST I/O)."""

from __future__ import annotations

from framework.platforms.base import CiLogin, Definition, DeployerFactory, PausedAnswer, RunnerModule
from framework.platforms.vercel import target

CI_LOGIN = CiLogin(
    # Vercel's API has no OIDC federation: a token is the one repository secret
    variables="#   secrets VERCEL_PLAN_TOKEN, VERCEL_TOKEN: Vercel's API has no OIDC federation",
    deploy_secrets=("VERCEL_TOKEN",),
    plan_secrets={"VERCEL_TOKEN": "VERCEL_PLAN_TOKEN"},
)


def _runner() -> RunnerModule:
    from framework.platforms.vercel import runner  # Node.js and edge-runtime: only to serve

    return runner


def _deployer() -> DeployerFactory:
    from framework.platforms.vercel.api import Deployer  # the REST client: imported only to deploy

    return Deployer


def _paused() -> PausedAnswer:
    from framework.platforms.vercel.planner import PAUSED_ANSWER  # beside its pause plan: only for serve --paused

    return PAUSED_ANSWER


PLATFORM = Definition.of(target, runner=_runner, deployer=_deployer, ci_login=CI_LOGIN,
                         paused=_paused)
