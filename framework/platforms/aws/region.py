"""How AWS writes its region names: us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, eusc-de-east-1."""

from __future__ import annotations

import re

from framework.config.regions import DIRECTIONS, RegionForm, hyphenated

REGION = RegionForm(
    "AWS", re.compile(rf"[a-z]{{2,4}}(-[a-z]{{2,4}})?-({DIRECTIONS})-[0-9]{{1,2}}"),
    "area-direction-number, with hyphens (for example us-east-1 or eu-west-1)", hyphenated)
