"""Azure Functions: target.py (limits, render) + templates/, limits.py (plan sizes), runner.py
(azure-functions locally), planner.py (pure deploy plan), api.py (azure-mgmt I/O)."""

from __future__ import annotations

from framework.platforms.azure import target
from framework.platforms.base import CiLogin, Definition, DeployerFactory, PausedAnswer, RunnerModule

CI_LOGIN = CiLogin(
    step="""\
      - uses: azure/login@f5d393ae46f8fde4be8b75f32e3fc50e654ad0ca  # v3.0.1
        with:
          client-id: ${{ vars.AZURE_@@_CLIENT_ID }}
          tenant-id: ${{ vars.AZURE_TENANT_ID }}
          subscription-id: ${{ vars.AZURE_SUBSCRIPTION_ID }}""",
    variables=("#   AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID; AZURE_PLAN_CLIENT_ID (Reader), "
               "AZURE_DEPLOY_CLIENT_ID:\n#   app registrations with a federated credential for this repository"),
)


def _runner() -> RunnerModule:
    from framework.platforms.azure import runner  # azure-functions: only to serve

    return runner


def _deployer() -> DeployerFactory:
    from framework.platforms.azure.api import Deployer  # azure-mgmt-web: imported only to deploy

    return Deployer


def _paused() -> PausedAnswer:
    from framework.platforms.azure.planner import PAUSED_ANSWER  # beside its pause plan: only for serve --paused

    return PAUSED_ANSWER


PLATFORM = Definition.of(target, runner=_runner, deployer=_deployer, ci_login=CI_LOGIN,
                         paused=_paused)
