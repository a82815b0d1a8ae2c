"""Google Cloud Functions (2nd gen): target.py (limits, render) + templates/, runner.py
(functions-framework locally), planner.py (pure deploy plan), api.py (google-cloud I/O)."""

from __future__ import annotations

from framework.platforms.base import CiLogin, Definition, DeployerFactory, PausedAnswer, RunnerModule
from framework.platforms.gcp import target

CI_LOGIN = CiLogin(
    step="""\
      - uses: google-github-actions/auth@7c6bc770dae815cd3e89ee6cdf493a5fab2cc093  # v3.0.0
        with:
          workload_identity_provider: ${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}
          service_account: ${{ vars.GCP_@@_SERVICE_ACCOUNT }}""",
    variables="#   GCP_WORKLOAD_IDENTITY_PROVIDER; GCP_PLAN_SERVICE_ACCOUNT (viewer), GCP_DEPLOY_SERVICE_ACCOUNT",
)


def _runner() -> RunnerModule:
    from framework.platforms.gcp import runner  # functions-framework: only to serve

    return runner


def _deployer() -> DeployerFactory:
    from framework.platforms.gcp.api import Deployer  # google-cloud: imported only to deploy

    return Deployer


def _paused() -> PausedAnswer:
    from framework.platforms.gcp.planner import PAUSED_ANSWER  # beside its pause plan: only for serve --paused

    return PAUSED_ANSWER


PLATFORM = Definition.of(target, runner=_runner, deployer=_deployer, ci_login=CI_LOGIN,
                         paused=_paused)
