"""Azure Functions: target.py (limits, render) + templates/, limits.py (plan sizes), runner.py
(azure-functions locally), planner.py (pure deploy plan), api.py (azure-mgmt I/O)."""

from __future__ import annotations

from typing import Any

from framework.local.base import LocalApp, LocalOptions
from framework.model import Agent, TargetSettings
from framework.platforms.azure import target
from framework.platforms.base import CiLogin, Definition
from framework.render import File


def _runner(options: LocalOptions) -> LocalApp:
    from framework.platforms.azure import runner  # azure-functions: only to serve

    return runner.start(options)


def _deployer(agent: Agent, settings: TargetSettings, files: list[File], **options: Any) -> Any:
    from framework.platforms.azure.api import Deployer  # azure-mgmt-web: imported only to deploy

    return Deployer(agent, settings, files, **options)


PLATFORM = Definition.of(
    target,
    runner=_runner,
    deployer=_deployer,
    ci_login=CiLogin(
        step="""\
      - uses: azure/login@v2
        with:
          client-id: ${{ vars.AZURE_@@_CLIENT_ID }}
          tenant-id: ${{ vars.AZURE_TENANT_ID }}
          subscription-id: ${{ vars.AZURE_SUBSCRIPTION_ID }}""",
        variables=("#   AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID; AZURE_PLAN_CLIENT_ID (Reader), "
                   "AZURE_DEPLOY_CLIENT_ID:\n#   app registrations with a federated credential for this repository"),
    ),
)
