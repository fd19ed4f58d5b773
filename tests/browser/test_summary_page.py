"""What a reader of the run page sees of the job summary, measured in a real browser.

The summaries come from live builds (see conftest.py): the dag flake with a binary cache holding
part of it, the outcomes flake (a reproducible output, a non-reproducible one, a failure), the
201-derivation wide flake, the dag on a warm cache, and the aggregate of a planned matrix of the
legs flake (three x86_64-linux legs built each on a store of its own: one fails, one is not
reproducible, one is; the aarch64-linux leg never reports). On GitHub's 900 px content box:

- mermaid draws the timeline without an error;
- no table is wider than the column it sits in (a wide table scrolls sideways, hiding columns);
- the timeline's axis never shows the same label twice in a row (a run of "00:00" ticks says
  nothing about when things happened);
- every installable's verdict is on the first screen: in the top 900 px, and not in a column
  that a too-wide table has scrolled out of sight to the right. An aggregate's first screen is
  its legs table: there every leg's verdict is on the first screen, and its installables'
  verdicts (the Outputs table, under the legs table) are only required to be in view sideways.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.browser.conftest import Rendered

CASES = ("dag-partial-cache", "outcomes", "wide", "warm", "aggregate")
FIRST_SCREEN_PX = 900
# Layout rounds to whole pixels; one pixel of difference is not an overflow.
ROUNDING_PX = 1

by_case = pytest.mark.parametrize("case", CASES)


def test_every_case_was_shown(rendered: dict[str, Rendered]) -> None:
    assert sorted(rendered) == sorted(CASES)
    for item in rendered.values():
        assert item.screenshot.is_file(), f"no screenshot at {item.screenshot}"
        assert item.screenshot.stat().st_size > 0


def test_the_runs_are_what_the_cases_say(rendered: dict[str, Rendered]) -> None:
    """The builds behind the pages: otherwise the layout checks would measure something else."""
    dag = rendered["dag-partial-cache"].report["totals"]
    assert dag["substituted"] == 12, dag  # the closures of node-2-0 and node-2-3
    assert dag["built"] == 19, dag  # the other 19 of the 31 derivations
    outcomes = rendered["outcomes"]
    assert outcomes.returncode != 0
    verdicts = {c["installable"]: c["verdict"] for c in outcomes.report["checks"]}
    assert verdicts.get(".#good") == "reproducible", verdicts
    assert verdicts.get(".#nondet") == "differs", verdicts
    statuses = {i["name"]: i["status"] for i in outcomes.report["installables"]}
    assert statuses.get(".#fails") == "failed", statuses
    wide = rendered["wide"]
    assert wide.returncode == 0
    assert wide.report["totals"]["built"] == 201, wide.report["totals"]
    warm = rendered["warm"]
    assert warm.returncode == 0
    totals = warm.report["totals"]
    assert (totals["built"], totals["checked"], totals["previously_verified"]) == (0, 0, 1)
    assert warm.report["baseline"]["totals_before"]["built"] > 0


def test_the_aggregate_adds_up_the_legs_the_case_says(rendered: dict[str, Rendered]) -> None:
    """Four planned legs, three reports: the aggregate fails, and each leg has its verdict."""
    item = rendered["aggregate"]
    assert item.returncode != 0
    assert item.report["verdict"] == "failed", item.report["verdict"]
    legs = {leg["id"]: leg for leg in item.report["legs"]}
    assert sorted(legs) == sorted(item.case.legs)
    verdicts = {leg_id: leg["verdict"] for leg_id, leg in legs.items()}
    assert verdicts == {
        "aarch64-linux-1": "missing",
        "x86_64-linux-1": "failed",  # fails
        "x86_64-linux-2": "ok",  # good
        "x86_64-linux-3": "not-reproducible",  # nondet
    }
    # Failing and missing legs first.
    assert [leg["verdict"] for leg in item.report["legs"]][-1] == "ok"
    # Each leg had a store of its own: what one leg built, no other leg built again.
    assert item.report["duplicate_builds"] == []
    statuses = {i["name"]: i["status"] for i in item.report["installables"]}
    assert sorted(statuses) == sorted(item.case.installables)


def test_a_warm_run_says_on_its_first_screen_what_it_fetched_and_verified_before(
    rendered: dict[str, Rendered],
) -> None:
    """Nothing built, the output verified by the run before, and the comparison with that run:
    all in the first screen's words, as a reviewer reads them."""
    page = rendered["warm"].page
    first = page["first_screen_text"]
    assert "nix-cache-action: 1 output from a cache, all reproducible" in first
    assert "every output was checked: 1 verified by an earlier run, not rebuilt" in first
    assert "verified on 20" in first  # the Outputs table's cell names the day
    assert "Compared with" in first


@by_case
def test_mermaid_draws_without_error(rendered: dict[str, Rendered], case: str) -> None:
    item = rendered[case]
    page = item.page
    blocks = len(re.findall(r"^```mermaid$", item.summary, flags=re.MULTILINE))
    assert page["mermaid_errors"] == [], f"{case}: mermaid failed: {page['mermaid_errors']}"
    # What the page itself logged while drawing (an SVG attribute mermaid computed wrongly, say).
    assert page["console_errors"] == [], f"{case}: errors in the page: {page['console_errors']}"
    assert len(page["diagrams"]) == blocks, f"{case}: {blocks} blocks, {page['diagrams']}"
    for diagram in page["diagrams"]:
        assert diagram["kind"] == "gantt", f"{case}: drew {diagram}"
        assert diagram["tasks"] > 0, f"{case}: a gantt chart without bars: {diagram}"


@by_case
def test_no_table_is_wider_than_its_container(rendered: dict[str, Rendered], case: str) -> None:
    tables = rendered[case].page["tables"]
    too_wide = [
        f"{t['heading']!r} {t['header']}: {t['scroll_width']} px in a {t['container']} of "
        f"{t['container_width']} px"
        for t in tables
        if t["scroll_width"] > t["container_width"] + ROUNDING_PX
    ]
    assert not too_wide, f"{case}: tables wider than their container: " + "; ".join(too_wide)


@by_case
def test_timeline_axis_labels_differ(rendered: dict[str, Rendered], case: str) -> None:
    diagrams = rendered[case].page["diagrams"]
    for diagram in diagrams:
        ticks = diagram["ticks"]
        assert ticks, f"{case}: the timeline has no axis labels"
        repeats = [(i, a) for i, (a, b) in enumerate(itertools.pairwise(ticks)) if a == b]
        assert not repeats, (
            f"{case}: neighbouring axis labels are equal at {repeats}; all labels: {ticks}"
        )


def _verdict_cells(item: Rendered, *, first_screen: bool = False) -> dict[str, dict[str, Any]]:
    """Where the case's verdicts are drawn, by name: each installable's (its row in the Outputs
    table) and, for an aggregate, each leg's (its row in the legs table). With `first_screen`,
    only those the first screen must hold: an aggregate's legs' (its legs table comes right
    after the headline and pushes the Outputs table down). Fails for a name without a row."""
    page = item.page
    cells = {f"leg {leg}": page["leg_verdicts"].get(leg) for leg in item.case.legs}
    if not (first_screen and item.case.legs):
        cells.update({name: page["verdicts"].get(name) for name in item.case.installables})
    missing = [name for name, cell in cells.items() if cell is None]
    assert not missing, f"{item.case.name}: no row with a verdict for {missing}"
    return {name: cell for name, cell in cells.items() if cell is not None}


@by_case
def test_every_verdict_is_on_the_first_screen(rendered: dict[str, Rendered], case: str) -> None:
    item = rendered[case]
    below = {
        name: f"y {v['y']} + height {v['height']} = {v['y'] + v['height']} px"
        for name, v in _verdict_cells(item, first_screen=True).items()
        if v["y"] + v["height"] > FIRST_SCREEN_PX
    }
    assert not below, (
        f"{case}: verdicts below the first {FIRST_SCREEN_PX} px (page {item.page['page_height']}"
        f" px tall): {below}"
    )


@by_case
def test_every_verdict_is_in_view_without_scrolling_sideways(
    rendered: dict[str, Rendered], case: str
) -> None:
    """The first screen is 900 px wide too: a verdict in a column that a table too wide for its
    box scrolls out of sight is not on it, wherever its row is."""
    hidden = {
        name: f"x {v['x']} + width {v['width']} = {v['x'] + v['width']} px, shown up to "
        f"{v['visible_right']} px"
        for name, v in _verdict_cells(rendered[case]).items()
        if v["x"] + v["width"] > v["visible_right"] + ROUNDING_PX
    }
    assert not hidden, f"{case}: verdicts scrolled out of sight to the right: {hidden}"


def test_an_aggregate_shows_its_legs_and_the_one_that_never_reported_on_its_first_screen(
    rendered: dict[str, Rendered],
) -> None:
    """Right under the headline: the legs table, a row for each of the four legs with its
    verdict, the leg that never reported named as such, and the slowest leg."""
    item = rendered["aggregate"]
    page = item.page
    (legs_table,) = [t for t in page["tables"] if t["header"][:1] == ["Leg"]]
    assert legs_table["heading"] == "4 legs", legs_table
    # No System column (each leg's id names it) and no Nix column: every leg ran the same one,
    # said once under the table.
    assert legs_table["header"] == [
        *("Leg", "Runner", "Verdict"),
        *("Time", "Built", "Fetched", "Hit rate"),
    ]
    assert legs_table["rows"] == 4, legs_table
    cells = page["leg_verdicts"]
    assert all(cell and cell["column"] == "Verdict" for cell in cells.values()), cells
    assert all(cell["rows"] == 1 for cell in cells.values()), cells
    assert "never reported" in cells["aarch64-linux-1"]["text"], cells["aarch64-linux-1"]
    first = page["first_screen_text"]
    for words in ("aarch64-linux-1", "never reported", "Slowest leg", "Every leg ran Nix"):
        assert words in first, f"{words!r} is not on the first screen:\n{first}"
    # The leg that never reported is named where the page says so, not only in its row.
    said = [line for line in first.splitlines() if "never reported" in line]
    assert any("aarch64-linux-1" in line for line in said), said
    # The whole legs table is on the first screen, down to its last row's bottom edge.
    assert max(cell["y"] + cell["height"] for cell in cells.values()) <= FIRST_SCREEN_PX
