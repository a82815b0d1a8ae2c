"""How Google Cloud writes its region names: us-central1, europe-west4, northamerica-northeast2."""

from __future__ import annotations

import re

from framework.config.regions import RegionForm, number_on_last_word

REGION = RegionForm(
    "Google Cloud", re.compile(r"[a-z]+-[a-z]+[0-9]{1,2}"),
    "area-direction and a number, with one hyphen (for example us-central1 or europe-west1)", number_on_last_word)
