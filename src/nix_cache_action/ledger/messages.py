"""Nix's messages: errors (bounded), cache errors, failed and uncheckable derivations, and the
outputs a rebuild found different."""

from __future__ import annotations

import re
from collections.abc import Mapping

from nix_cache_action.nix.events import Message
from nix_cache_action.report import CacheError

MAX_ERRORS = 50
MAX_ERROR_CHARS = 4000
MORE_ERRORS = "... and {count} more errors"
MISMATCH = "may not be deterministic"

# Nix 2.8 quotes paths with '...', 2.34 with "..."; both are accepted.
_NONDETERMINISTIC = re.compile(
    r"derivation '(?P<drv>[^']+\.drv)' " + MISMATCH + r": "
    r"output ['\"](?P<out>[^'\"]+)['\"] differs"
)
_HTTP_ERROR = re.compile(r"unable to download '(?P<url>[^']+)': HTTP error (?P<code>\d{3})")
_DRV = re.compile(r"(/[^\s'\"]+\.drv)")
_NOT_VALID_FOR_CHECK = re.compile(
    r"some outputs of '(?P<drv>[^']+\.drv)' are not valid, so checking is not possible"
)


class MessageTracker:
    """What Nix said; `queried` (cache -> paths asked) names the cache behind an HTTP error."""

    def __init__(self, queried: Mapping[str, set[str]]) -> None:
        self._queried = queried
        self.cache_errors: list[CacheError] = []
        self.failed: dict[str, str] = {}  # drv -> the error that names it
        self.differs: dict[str, list[str]] = {}  # drv -> output paths that differed
        self.uncheckable: dict[str, str] = {}  # drv -> why --rebuild could not check it
        self._errors: list[str] = []
        self._errors_dropped = 0

    def message(self, event: Message) -> None:
        text = event.text
        http = _HTTP_ERROR.search(text)
        if http is not None:
            url = http["url"]
            self.cache_errors.append(
                CacheError(
                    substituter=_substituter_of(url, self._queried),
                    url=url,
                    status=int(http["code"]),
                    message=text.split("\n", 1)[0][:300],
                    retried="retrying" in text,
                )
            )
        if not (event.is_error and text.startswith("error:")):
            return
        self._remember(text)
        nondet = _NONDETERMINISTIC.search(text)
        if nondet is not None:
            self.differs.setdefault(nondet["drv"], []).append(nondet["out"])
            return
        invalid = _NOT_VALID_FOR_CHECK.search(text)
        if invalid is not None:
            self.uncheckable[invalid["drv"]] = text
            return
        drvs = _DRV.findall(text)
        if drvs:
            # The first drv named is the one that failed; later ones are its dependents.
            self.failed.setdefault(drvs[0], text)

    def failure(self, drv: str, text: str) -> None:
        """A failure Nix reported without a message (Determinate Nix's build result)."""
        self.failed.setdefault(drv, text)

    def _remember(self, text: str) -> None:
        if len(self._errors) >= MAX_ERRORS:
            self._errors_dropped += 1
            return
        self._errors.append(text[:MAX_ERROR_CHARS])

    @property
    def errors(self) -> list[str]:
        extra = [MORE_ERRORS.format(count=self._errors_dropped)] if self._errors_dropped else []
        return [*self._errors, *extra]

    @property
    def failure_errors(self) -> list[str]:
        """The errors, less the mismatch messages that the checks already stand for."""
        return [e for e in self.errors if MISMATCH not in e]


def _substituter_of(url: str, queried: Mapping[str, set[str]]) -> str:
    for cache in queried:
        if url.startswith(cache.split("?", 1)[0].rstrip("/") + "/"):
            return cache
    return url.rsplit("/", 1)[0]
