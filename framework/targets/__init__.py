"""The registry of platforms: adding a cloud means adding one module here, nothing else."""

from __future__ import annotations

from framework.targets import aws, azure, gcp, vercel
from framework.targets.base import Target

TARGETS: dict[str, Target] = {module.name: module for module in (aws, gcp, azure, vercel)}  # type: ignore[misc]
