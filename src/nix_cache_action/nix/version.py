"""Which Nix this is, and every difference between versions that this project meets.

Nothing outside this module compares version numbers: the commands in `commands.py` ask a
`NixVersion` which flag, command or selector to use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nix_cache_action.errors import NixError
from nix_cache_action.records import record
from nix_cache_action.report import Flavour, NixInfo

MINIMUM = (2, 8)
# Checked by this project's tests against Debian's 2.8 and 2.34; newer versions are attempted.
TESTED_UP_TO = (2, 35)

NIX_TOO_OLD = (
    "nix {found} is too old: nix-cache-action needs Nix 2.8 or newer. "
    "Upgrade Nix (the action's install-nix input installs a current one)."
)
NIX_VERSION_UNKNOWN = (
    "could not read the Nix version from `nix --version` (it printed {text!r}). "
    "Check that `nix` on PATH is Nix, Determinate Nix or Lix."
)

# Looked for in this order: Determinate Nix's and Lix's banners both say "Nix" too.
FLAVOURS: tuple[Flavour, ...] = ("lix", "determinate")

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@record
class NixVersion:
    flavour: Flavour
    version: tuple[int, int, int]  # the Nix language/CLI version the flags follow
    text: str  # what `nix --version` printed

    @property
    def label(self) -> str:
        return ".".join(map(str, self.version))

    def info(self) -> NixInfo:
        return NixInfo(version=self.label, flavour=self.flavour, text=self.text)

    def at_least(self, major: int, minor: int) -> bool:
        return self.version[:2] >= (major, minor)

    # --- per-version differences --------------------------------------------------------------

    def path_info_json_flags(self) -> list[str]:
        # 2.33 deprecates bare `--json` on path-info; earlier versions reject `--json-format`.
        # Lix forked from 2.18 and keeps the old flags whatever number it reports.
        if self.flavour != "lix" and self.at_least(2, 33):
            return ["--json", "--json-format", "1"]
        return ["--json"]

    @property
    def reads_installables_from_stdin(self) -> bool:
        # `--stdin` on commands that take installables arrived in 2.15, but until 2.17 a
        # standard input that ends with no word meant `.`: a query started ahead and never
        # told its paths (the CLI killed) would evaluate the flake here. Lix forked later.
        return self.flavour == "lix" or self.at_least(2, 17)

    @property
    def has_output_selectors(self) -> bool:
        # `drv^out,dev` and `drv^*` arrived in 2.13 (Lix forked later, so it has them).
        return self.flavour == "lix" or self.at_least(2, 13)

    def all_outputs(self, drv: str) -> str:
        # Before 2.13 a bare .drv path meant "build its outputs".
        return f"{drv}^*" if self.has_output_selectors else drv

    def some_outputs(self, drv: str, outputs: Iterable[str]) -> str | None:
        """`drv^a,b`, or None when this Nix cannot name outputs of a derivation."""
        names = sorted(outputs)
        return f"{drv}^{','.join(names)}" if names and self.has_output_selectors else None

    def config_show(self) -> list[str]:
        # `nix config show` arrived in 2.20 and `show-config` went later; Lix keeps 2.18's.
        if self.flavour != "lix" and self.at_least(2, 20):
            return ["config", "show", "--json"]
        return ["show-config", "--json"]

    def derivation_show(self) -> list[str]:
        # Renamed in 2.15; the old name was removed later.
        return ["derivation", "show"] if self.at_least(2, 15) else ["show-derivation"]


def parse_version(text: str) -> NixVersion:
    """`nix --version` output -> NixVersion.

    Upstream prints `nix (Nix) 2.34.8`; Determinate Nix `nix (Determinate Nix 3.8.2) 2.30.1`;
    Lix `nix (Lix, like Nix) 2.91.1`. The last version number on the line is the one the CLI
    follows for upstream and Determinate; Lix numbers its releases 2.90+ from a 2.18 base.
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    lowered = line.lower()
    numbers = _VERSION.findall(line)
    if not numbers:
        raise NixError(NIX_VERSION_UNKNOWN.format(text=text.strip()[:200]))
    major, minor, patch = numbers[-1]
    version = (int(major), int(minor), int(patch or 0))
    flavour: Flavour = next((f for f in FLAVOURS if f in lowered), "nix")
    result = NixVersion(flavour=flavour, version=version, text=line)
    if flavour != "lix" and version[:2] < MINIMUM:
        raise NixError(NIX_TOO_OLD.format(found=result.label))
    return result
