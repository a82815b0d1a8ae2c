"""Deploy stage: desired state -> plan of operations -> executor, one module per cloud.

The core (package, plan, executor, commands) never imports a cloud SDK; each cloud's module
(`aws_api` for AWS) is imported only when that cloud is deployed to.
"""

from __future__ import annotations

import importlib
import importlib.util

# target name -> module implementing the Deployer interface (see commands.py): a cloud is
# deployable once framework/deploy/<target>_api.py exists; nothing else needs to change.
DEPLOYERS = {
    target: f"framework.deploy.{target}_api"
    for target in ("aws", "gcp", "azure", "vercel")
    if importlib.util.find_spec(f"framework.deploy.{target}_api") is not None
}


def deployer_module(target: str):
    return importlib.import_module(DEPLOYERS[target])
