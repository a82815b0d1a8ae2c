"""Google Cloud Functions (2nd gen): target.py (limits, render) + templates/, runner.py
(functions-framework locally), planner.py (pure deploy plan), api.py (google-cloud I/O)."""

from __future__ import annotations

from typing import Any

from framework.local.base import LocalApp, LocalOptions
from framework.model import Agent, TargetSettings
from framework.platforms.base import CiLogin, Definition
from framework.platforms.gcp import target
from framework.render import File


def _runner(options: LocalOptions) -> LocalApp:
    from framework.platforms.gcp import runner  # functions-framework: only to serve

    return runner.start(options)


def _deployer(agent: Agent, settings: TargetSettings, files: list[File], **options: Any) -> Any:
    from framework.platforms.gcp.api import Deployer  # google-cloud: imported only to deploy

    return Deployer(agent, settings, files, **options)


PLATFORM = Definition.of(
    target,
    runner=_runner,
    deployer=_deployer,
    ci_login=CiLogin(
        step="""\
      - uses: google-github-actions/auth@v2
        with:
          workload_identity_provider: ${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}
          service_account: ${{ vars.GCP_@@_SERVICE_ACCOUNT }}""",
        variables="#   GCP_WORKLOAD_IDENTITY_PROVIDER; GCP_PLAN_SERVICE_ACCOUNT (viewer), GCP_DEPLOY_SERVICE_ACCOUNT",
    ),
)
