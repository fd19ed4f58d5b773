"""Nix's log -> what happened: substitutions, builds, checks, cache errors and phase times."""

from nix_cache_action.ledger.reader import Ledger, RunProgress

__all__ = ["Ledger", "RunProgress"]
