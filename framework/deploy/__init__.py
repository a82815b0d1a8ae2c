"""Deploy stage: desired state -> plan of operations -> executor, one module per cloud.

The core (package, plan, executor, commands) never imports a cloud SDK; each cloud's module
(`aws_api` for AWS) is imported only when that cloud is deployed to.
"""

from __future__ import annotations

import importlib

# target name -> module implementing the Deployer interface (see commands.py)
DEPLOYERS = {"aws": "framework.deploy.aws_api"}


def deployer_module(target: str):
    return importlib.import_module(DEPLOYERS[target])
