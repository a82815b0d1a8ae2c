"""Azure Functions' plan limits and sizes: pure facts the limits check, DEPLOY.md and the planner share."""

from __future__ import annotations

from framework.model import TargetSettings

# https://learn.microsoft.com/azure/azure-functions/functions-scale#timeout: "Regardless of the
# function app timeout setting, 230 seconds is the maximum amount of time that an HTTP triggered
# function can take to respond to a request ... because of the default idle timeout of Azure Load Balancer."
HTTP_RESPONSE_LIMIT = 230
# Flex Consumption instance sizes (../shared/reference/cloud-deploy-apis.md; Microsoft's
# flex-consumption-plan docs list 2,048 MB (default) and 4,096 MB, and 512 MB since GA).
FLEX_MEMORY = (512, 2048, 4096)
FLEX_DEFAULT_MEMORY = 2048
FLEX_MAX_INSTANCES = 1000
# https://learn.microsoft.com/azure/azure-functions/functions-premium-plan: EP1 3.5 GB,
# EP2 7 GB, EP3 14 GB; a plan bursts to at most 100 instances (Linux: 20 in most regions).
PREMIUM_SKUS = ((3584, "EP1"), (7168, "EP2"), (14336, "EP3"))
PREMIUM_MAX_INSTANCES = 100
# Legacy Linux Consumption: 1.5 GB per instance, 100 instances on Linux; retiring 30 Sep 2028
# and getting no new language versions (https://learn.microsoft.com/azure/azure-functions/functions-versions).
CONSUMPTION_MEMORY = 1536
CONSUMPTION_MAX_INSTANCES = 100


def instance_memory(settings: TargetSettings) -> int:
    """Flex instance memory: what the user wrote, else Flex's own default."""
    return settings.memory if settings.explicit("memory") else FLEX_DEFAULT_MEMORY


def premium_sku(settings: TargetSettings) -> str:
    for memory, sku in PREMIUM_SKUS:
        if settings.memory <= memory:
            return sku
    return PREMIUM_SKUS[-1][1]
