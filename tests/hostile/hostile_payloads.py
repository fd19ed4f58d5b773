"""Attacker text the hostile tier prints through builds, Nix's messages, names and paths.

Every payload puts MARKER right where the runner would take a command's data or token from, so
a command the runner honours whose data, token or property starts with MARKER was injected.
"""

from __future__ import annotations

MARKER = "PWNED"

# One line each, as a builder, Nix or a name may carry them.
PAYLOADS: dict[str, str] = {
    "set-output": "::set-output name=x::PWNED",
    "stop-commands": "::stop-commands::PWNEDzzz",
    "legacy-stop-commands": "##[stop-commands]PWNEDzzz",
    "legacy-error": "##[error]PWNED",
    "legacy-add-mask": "##[add-mask]PWNED",
    "indented-error": "   ::error::PWNED",
    "tab-warning": "\t::warning::PWNED",
    "nbsp-notice": "\u00a0::notice::PWNED",
    "cr-set-output": "x\r::set-output name=y::PWNED",
    "set-env": "::set-env name=LD_PRELOAD::PWNED",
    "add-path": "::add-path::PWNED",
    "legacy-set-output": "##[set-output name=x;]PWNED",
    "echo-on": "::echo::on",
    "save-state": "::save-state name=x::PWNED",
}

# Without spaces or newlines: they survive as one installable or one path component.
WORD_PAYLOADS: dict[str, str] = {
    "legacy-error": "##[error]PWNED",
    "legacy-add-mask": "##[add-mask]PWNED",
    "legacy-stop-commands": "##[stop-commands]PWNEDzzz",
    "v2-error": "::error::PWNED",
    "v2-set-output": "::set-output::PWNED",
}

__all__ = ["MARKER", "PAYLOADS", "WORD_PAYLOADS"]
