"""The live status line: what it says, and how it shares the terminal with the account."""

from __future__ import annotations

import io

from nix_cache_action.ledger import RunProgress
from nix_cache_action.render.live import ERASE, REDRAW_SECONDS, LiveLine, status_text


def test_the_status_says_what_is_built_running_and_downloading() -> None:
    progress = RunProgress(
        built=12,
        checked=0,
        running=["app", "lib", "docs", "tests"],
        fetched=30,
        fetching=["http://127.0.0.1:37515", "http://127.0.0.1:37515"],
    )
    text = status_text(progress, 65.0, width=200)
    assert text == (
        "built 12 · running 4: app, lib, docs ... · fetched 30"
        " · downloading 2 from Magic Nix Cache · 1 min 05 s"
    )
    assert len(status_text(progress, 65.0, width=20)) == 20


def test_lines_go_above_the_status_line_which_is_erased_at_the_end() -> None:
    stream = io.StringIO()
    live = LiveLine(stream)
    idle = RunProgress(built=0, checked=0, running=[], fetched=0, fetching=[])
    live.update(idle, 0.0)
    live.say("  building app")
    live.update(idle, REDRAW_SECONDS / 2)  # too soon: not redrawn
    live.close()
    assert stream.getvalue() == (
        f"{ERASE}built 0 · 0 ms"  # drawn
        f"{ERASE}  building app\nbuilt 0 · 0 ms"  # a line above it, the status again below
        f"{ERASE}"  # erased at the end
    )
