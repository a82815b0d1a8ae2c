"""AWS Lambda: target.py (limits, render) + templates/, runner.py (awslambdaric locally), planner.py
(pure deploy plan), api.py (boto3 I/O)."""

from __future__ import annotations

from framework.platforms.aws import target
from framework.platforms.base import CiLogin, Definition, DeployerFactory, PausedAnswer, RunnerModule

CI_LOGIN = CiLogin(
    step="""\
      - uses: aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c  # v6.2.3
        with:
          role-to-assume: ${{ vars.AWS_@@_ROLE_ARN }}
          aws-region: REGION""",
    variables="#   AWS_PLAN_ROLE_ARN (read-only), AWS_DEPLOY_ROLE_ARN: IAM roles trusting GitHub's OIDC provider",
    requires=("region",),
)


def _runner() -> RunnerModule:
    from framework.platforms.aws import runner  # awslambdaric / aws-lambda-ric: only to serve

    return runner


def _deployer() -> DeployerFactory:
    from framework.platforms.aws.api import Deployer  # boto3: imported only to deploy

    return Deployer


def _paused() -> PausedAnswer:
    from framework.platforms.aws.planner import PAUSED_ANSWER  # beside its pause plan: only for serve --paused

    return PAUSED_ANSWER


PLATFORM = Definition.of(target, runner=_runner, deployer=_deployer, ci_login=CI_LOGIN,
                         paused=_paused)
