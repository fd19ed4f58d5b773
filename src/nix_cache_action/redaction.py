"""Secrets the run can see, and their removal from everything the action publishes.

Nix quotes its configuration back in warnings and errors ("unknown setting", a malformed line),
and the report, the summary and the annotations carry Nix's words. So every value that looks
secret in the configuration the job gives Nix (the `extra-conf` input, NIX_CONFIG) is found
here, masked for the runner before anything is printed, and replaced by `***` in what is
published. Names count as secret when they say so (`access-tokens`, `netrc-file`,
`secret-key-files`, anything ending in `-token` or `-key`, anything with `password` or `secret`
in it); a malformed line with such a name is read as far as it can be, so a missing `=` does
not let its value through.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from nix_cache_action.records import record
from nix_cache_action.report import Report

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

REDACTED = "***"
# Where the job's configuration for Nix can hold secrets: the action's input, and Nix's own.
SECRET_SOURCES = ("INPUT_EXTRA-CONF", "NIX_CONFIG")
# Shorter values would redact ordinary words; GitHub's own masking has the same floor in spirit.
MIN_SECRET_LENGTH = 4
_SECRET_NAME = re.compile(
    r"^(extra-)?(access-tokens|netrc-file|secret-key-files|.*-tokens?|.*-key|.*password.*"
    r"|.*secret.*)$"
)
_NAME = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(=)?\s*(.*)$")


def config_secrets(text: str) -> set[str]:
    """Secret-looking values in nix.conf-style `text`: each whole value, each word of it and,
    for `host=token` words (access-tokens), the token alone."""
    found: set[str] = set()
    for line in text.splitlines():
        match = _NAME.match(line.split("#", 1)[0])
        if match is None or not _SECRET_NAME.match(match.group(1).lower()):
            continue
        value = match.group(3).strip()
        candidates = [value, *value.split()]
        candidates += [word.split("=", 1)[1] for word in value.split() if "=" in word]
        found.update(c for c in candidates if len(c) >= MIN_SECRET_LENGTH)
    return found


def environment_secrets(environ: Mapping[str, str], token_variable: str) -> set[str]:
    """The token, and the secrets in the configuration the job gives Nix."""
    found = set()
    token = environ.get(token_variable, "").strip()
    if len(token) >= MIN_SECRET_LENGTH:
        found.add(token)
    for variable in SECRET_SOURCES:
        found |= config_secrets(environ.get(variable, ""))
    return found


@record
class Redactor:
    secrets: frozenset[str]

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Redactor:
        return cls(frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH))

    def text(self, value: str) -> str:
        # Longest first: a token inside a longer secret line must not leave the rest behind.
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def report(self, report: Report) -> Report:
        """The same report with every secret replaced, wherever Nix quoted it."""
        if not self.secrets:
            return report
        return Report.from_json(self.json(report.to_json()))

    def json(self, value: Any) -> Any:  # noqa: ANN401 - any JSON value
        """The same JSON value with every string (keys too) redacted."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v) for k, v in value.items()}
        return value


__all__ = ["REDACTED", "SECRET_SOURCES", "Redactor", "config_secrets", "environment_secrets"]
