"""Region names per cloud, by their form: each cloud spells regions its own way, and a name in
another cloud's spelling (us-east1 on AWS) is refused with the well-formed spelling to use. No list
of regions: new ones open every year, and the cloud itself says whether a well-formed name exists."""

from __future__ import annotations

import re

_DIRECTIONS = "north|south|east|west|central|northeast|northwest|southeast|southwest"
# AWS: us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, eusc-de-east-1
_AWS = re.compile(rf"[a-z]{{2,4}}(-[a-z]{{2,4}})?-({_DIRECTIONS})-[0-9]{{1,2}}")
# Google Cloud: us-central1, europe-west4, northamerica-northeast2
_GCP = re.compile(r"[a-z]+-[a-z]+[0-9]{1,2}")
# Azure: westeurope, eastus2, southcentralus, eastus2euap
_AZURE = re.compile(r"[a-z]+[0-9]?[a-z]*")

_FORMS = {
    "aws": (_AWS, "AWS", "area-direction-number, with hyphens (for example us-east-1 or eu-west-1)"),
    "gcp": (_GCP, "Google Cloud", "area-direction and a number, with one hyphen (for example us-central1 "
            "or europe-west1)"),
    "azure": (_AZURE, "Azure", "one lowercase word without hyphens or spaces (for example westeurope or eastus2)"),
}


def _respelled(cloud: str, region: str) -> str:
    """The region in the cloud's own spelling, as a guess: what a user of another cloud meant."""
    words = re.findall(r"[a-z]+|[0-9]+", region.lower())
    if cloud == "azure":  # west-europe: the same words, joined; us-east-1 is another cloud's name (eastus)
        return "" if any(w.isdigit() for w in words) else "".join(words)
    letters = [w for w in words if not w.isdigit()]
    number = next((w for w in words if w.isdigit()), "1")
    if cloud == "aws":
        return "-".join([*letters, number])
    return "-".join(letters[:-1] + [letters[-1] + number]) if len(letters) > 1 else ""


def region_problem(cloud: str, region: str) -> str | None:
    """Why `region` is not a region name of `cloud`, with the spelling it likely means; None if well formed."""
    pattern, title, form = _FORMS[cloud]
    if pattern.fullmatch(region):
        return None
    guess = _respelled(cloud, region)
    hint = f"; did you mean {guess!r}?" if guess and pattern.fullmatch(guess) else ""
    return f"{region!r} is not written like a region of {title}, which writes its regions as {form}{hint}"
