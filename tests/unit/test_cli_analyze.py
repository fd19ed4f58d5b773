"""`analyze` on broken input: the report is still written, with what could be read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nix_cache_action.cli import main

LOGS = Path(__file__).parent.parent / "logs"


def test_garbage_lines_and_a_truncated_last_line(tmp_path: Path) -> None:
    good = (LOGS / "rebuild-2.34.log").read_bytes()
    broken = tmp_path / "broken.log"
    broken.write_bytes(
        b"some wrapper said hello\n"
        + good
        + b"@nix {not json}\n"
        + b"\x00\x01 binary junk\n"
        + b'@nix {"action":"start","id":99,"level":3,"te'  # cut mid-record, no newline
    )
    report_path, summary = tmp_path / "r.json", tmp_path / "s.md"
    status = main(["analyze", str(broken), "--report", str(report_path), "--summary", str(summary)])
    report = json.loads(report_path.read_text())
    assert status == 1  # the log holds a differing check, and the mode is fail
    assert report["totals"]["differs"] == 1
    assert report["totals"]["reproducible"] == 1
    assert report["runs"][0]["plain_lines"] == 4
    assert any("4 lines" in note for note in report["notes"])
    assert summary.read_text().strip()


def test_warn_mode_exits_zero(tmp_path: Path) -> None:
    status = main(
        [
            "analyze",
            str(LOGS / "rebuild-2.8.log"),
            "--reproducibility",
            "warn",
            "--report",
            str(tmp_path / "r.json"),
        ]
    )
    assert status == 0
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "warning"


def test_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(LOGS / "substitute-2.8.log"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema_version"] == 1
    assert report["totals"]["substituted"] == 2
    assert report["substituters"][0]["name"] == "Magic Nix Cache"


def test_missing_log_names_the_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "/nonexistent/build.log"]) == 2
    err = capsys.readouterr().err
    assert "log: /nonexistent/build.log is not a readable file" in err


def test_merge_of_two_reports(tmp_path: Path) -> None:
    one, two, out = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "m.json"
    main(["analyze", str(LOGS / "substitute-2.34.log"), "--report", str(one)])
    main(["analyze", str(LOGS / "build-2.34.log"), "--report", str(two)])
    assert main(["merge", str(one), str(two), "--report", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["totals"]["substituted"] == 2
    assert merged["totals"]["built"] == 4
    assert merged["totals"]["hit_rate"] == round(2 / 6, 4)


def test_merge_rejects_another_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 99}))
    assert main(["merge", str(bad)]) == 2
    assert "schema_version 99" in capsys.readouterr().err


def test_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nix_cache_action", "analyze", str(LOGS / "fail-2.8.log"), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["totals"]["failed"] == 1


def test_a_bad_argument_still_leaves_a_report(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    assert main(["analyze", "/nonexistent/x.log", "--report", str(report_path)]) == 2
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "failed"
    assert report["stopped"].startswith("log: /nonexistent/x.log is not a readable file")


@pytest.mark.parametrize("text", ["", "building foo\nerror: plain format\n"])
def test_a_log_without_any_nix_record_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    log = tmp_path / "plain.log"
    log.write_text(text, encoding="utf-8")
    report_path = tmp_path / "r.json"
    assert main(["analyze", str(log), "--report", str(report_path)]) == 1
    said = capsys.readouterr().err
    assert "holds no @nix record" in said
    assert "--log-format internal-json" in said
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "failed"
    assert "holds no @nix record" in report["stopped"]


def test_a_log_that_ends_mid_run_is_incomplete_and_never_ok(tmp_path: Path) -> None:
    whole = (LOGS / "build-2.34.log").read_bytes().splitlines(keepends=True)
    # The first half: builds and the whole-run activities started, not all stopped.
    cut = tmp_path / "cut.log"
    cut.write_bytes(b"".join(whole[: len(whole) // 2]))
    report_path = tmp_path / "r.json"
    assert main(["analyze", str(cut), "--report", str(report_path)]) == 1
    report = json.loads(report_path.read_text())
    assert report["incomplete"] is True
    assert report["verdict"] == "failed"
    assert any("ends in the middle of a run" in n for n in report["notes"])
    # The whole log is complete.
    assert main(["analyze", str(LOGS / "build-2.34.log"), "--report", str(report_path)]) == 0
    assert json.loads(report_path.read_text())["incomplete"] is False


@pytest.mark.parametrize("version", ["2.8", "2.34", "det3.22"])
def test_a_build_nix_stopped_is_not_counted_as_built_from_the_log_alone(
    tmp_path: Path, version: str
) -> None:
    """fails-late fails without --keep-going while slow still builds, and Nix stops slow.
    Determinate Nix's log sends no result for slow; upstream's builds activity never counts
    it done. Either way the log tells, and `analyze` needs no store to say so."""
    report_path = tmp_path / "r.json"
    status = main(["analyze", str(LOGS / f"cancel-{version}.log"), "--report", str(report_path)])
    report = json.loads(report_path.read_text())
    assert status == 1
    totals = report["totals"]
    assert (totals["built"], totals["failed"], totals["cancelled"]) == (0, 1, 1)
    assert not [n for n in report["notes"] if "finished" in n]


def test_a_build_the_counters_cannot_place_is_said_to_be_unknown(tmp_path: Path) -> None:
    """A run that finished one build before another failed and a third was stopped: the
    builds activity counts 1 done of the 2 that look finished, and cannot say which. The
    report says it cannot know, rather than guess."""
    log = tmp_path / "mixed.log"
    drv = "/nix/store/{}-{}.drv"
    a, b, c = drv.format("a" * 32, "a"), drv.format("b" * 32, "b"), drv.format("c" * 32, "c")
    records = [
        {"action": "start", "id": 1, "level": 0, "parent": 0, "text": "", "type": 104},
        *(
            {"action": "start", "id": n, "level": 3, "parent": 0, "type": 105,
             "text": f"building '{d}'", "fields": [d, "", 1, 1]}
            for n, d in ((2, a), (3, b), (4, c))
        ),
        {"action": "stop", "id": 2},
        {"action": "result", "fields": [1, 3, 2, 0], "id": 1, "type": 105},
        {"action": "stop", "id": 3},
        {"action": "stop", "id": 4},
        {"action": "result", "fields": [1, 3, 0, 1], "id": 1, "type": 105},
        {"action": "stop", "id": 1},
        {"action": "msg", "level": 0, "msg": f"error: builder for '{c}' failed with exit code 1"},
    ]  # fmt: skip
    log.write_text("".join(f"@nix {json.dumps(r, separators=(',', ':'))}\n" for r in records))
    report_path = tmp_path / "r.json"
    assert main(["analyze", str(log), "--report", str(report_path)]) == 1
    report = json.loads(report_path.read_text())
    assert (report["totals"]["built"], report["totals"]["failed"]) == (2, 1)
    assert any("whether 2 other builds finished" in n for n in report["notes"])


@pytest.mark.parametrize("version", ["2.8", "2.34", "det3.22"])
def test_a_log_whose_last_record_is_cut_is_incomplete_never_ok(
    tmp_path: Path, version: str
) -> None:
    """Real logs of a successful build (Nix 2.8, 2.34, Determinate 3.22), their last record cut
    in the middle: the log was cut, so the report is incomplete and its verdict not ok."""
    lines = (LOGS / f"build-{version}.log").read_bytes().splitlines(keepends=True)
    last = lines[-1]
    assert last.startswith(b"@nix {")
    cut = tmp_path / "cut.log"
    cut.write_bytes(b"".join(lines[:-1]) + last[: len(last) // 2])
    whole = tmp_path / "whole.log"
    whole.write_bytes(b"".join(lines))
    assert main(["analyze", str(whole), "--report", str(tmp_path / "whole.json")]) == 0
    report_path = tmp_path / "cut.json"
    status = main(["analyze", str(cut), "--report", str(report_path)])
    report = json.loads(report_path.read_text())
    assert status == 1
    assert report["incomplete"] is True
    assert report["verdict"] == "failed"
    assert any("ends in a record cut in the middle" in note for note in report["notes"])
    # A broken record followed by more of the log is only a line that was not a record.
    middle = tmp_path / "middle.log"
    middle.write_bytes(b"".join(lines[:-1]) + last[: len(last) // 2] + b"\n" + last)
    assert main(["analyze", str(middle), "--report", str(tmp_path / "middle.json")]) == 0


@pytest.mark.parametrize("version", ["2.8", "2.34", "det3.22"])
def test_one_run_shows_one_set_of_figures_in_every_place(
    version: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build then its rebuild, read from the log alone: the hit rate, the checks and their
    reasons read the same in the terminal, the summary and the JSON."""
    log = tmp_path / "run.log"
    log.write_bytes(
        (LOGS / f"build-{version}.log").read_bytes()
        + (LOGS / f"rebuild-{version}.log").read_bytes()
    )
    report_path, summary_path = tmp_path / "r.json", tmp_path / "s.md"
    main(["analyze", str(log), "--report", str(report_path), "--summary", str(summary_path)])
    said = capsys.readouterr()
    terminal = said.out + said.err
    report = json.loads(report_path.read_text(encoding="utf-8"))
    summary = summary_path.read_text(encoding="utf-8")

    # No cache was asked: "n/a" in the words, null in the JSON, never 0.0.
    assert "cache hit rate n/a, no cache was asked" in terminal
    assert "cache hit rate n/a" in summary
    assert report["totals"]["hit_rate"] is None
    # The log names one check's output path and only the other's derivation: both are named
    # by derivation name, and no .drv stands where an output path belongs.
    paths = {c["path"] for c in report["checks"]}
    assert None in paths
    assert len(paths) == 2
    check_lines = [line for line in terminal.splitlines() if line.startswith("  check ")]
    assert check_lines == ["  check nondet: differs", "  check top: reproducible"]
    fold = summary.split("Store paths and full NAR hashes", 1)[1].split("</details>", 1)[0]
    assert ".drv" not in fold
    assert "- `top`: store path unknown, narHash unknown" in fold
    # A check that needs no reason has none: null, as every absent value.
    assert {c["reason"] for c in report["checks"]} == {None}
