"""Region names by their form: each cloud spells regions its own way, and a name in another cloud's
spelling (us-east1 on AWS) is refused with the well-formed spelling to use. No list of regions: new
ones open every year, and the cloud itself says whether a well-formed name exists. Each platform
package holds its cloud's RegionForm (framework/platforms/<name>/region.py); nothing here names one."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

DIRECTIONS = "north|south|east|west|central|northeast|northwest|southeast|southwest"


def _words(region: str) -> list[str]:
    return re.findall(r"[a-z]+|[0-9]+", region.lower())


def hyphenated(region: str) -> str:
    """us-east-1 from us-east1 or US East 1: the words, then the number (1 if none), with hyphens."""
    words = _words(region)
    return "-".join([*(w for w in words if not w.isdigit()), next((w for w in words if w.isdigit()), "1")])


def number_on_last_word(region: str) -> str:
    """us-east1 from us-east-1: the words with hyphens, the number (1 if none) on the last one."""
    words = _words(region)
    letters = [w for w in words if not w.isdigit()]
    number = next((w for w in words if w.isdigit()), "1")
    return "-".join(letters[:-1] + [letters[-1] + number]) if len(letters) > 1 else ""


def joined(region: str) -> str:
    """westeurope from west-europe: the same words, joined; a name with a number (us-east-1) is another
    cloud's, not a spelling of this one's (eastus)."""
    words = _words(region)
    return "" if any(w.isdigit() for w in words) else "".join(words)


@dataclass(frozen=True)
class RegionForm:
    """How one cloud writes its region names, and how a name written otherwise is respelled."""

    title: str  # the cloud, for the message: "AWS"
    pattern: re.Pattern[str]
    form: str  # the form in words, with examples
    respelled: Callable[[str], str]  # a guess at what a user of another cloud meant ("" for none)

    def problem(self, region: str) -> str | None:
        """Why `region` is not a region name of this cloud, with the spelling it likely means; None if well formed."""
        if self.pattern.fullmatch(region):
            return None
        guess = self.respelled(region)
        hint = f"; did you mean {guess!r}?" if guess and self.pattern.fullmatch(guess) else ""
        return f"{region!r} is not written like a region of {self.title}, which writes its regions as {self.form}{hint}"
