"""How Azure writes its region names: westeurope, eastus2, southcentralus, eastus2euap."""

from __future__ import annotations

import re

from framework.config.regions import RegionForm, joined

REGION = RegionForm(
    "Azure", re.compile(r"[a-z]+[0-9]?[a-z]*"),
    "one lowercase word without hyphens or spaces (for example westeurope or eastus2)", joined)
