"""README.md's example job summary is the renderer's current output, not a stale copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "readme_example.py"


def check(readme: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--readme", str(readme)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_readme_example_is_fresh() -> None:
    done = check(ROOT / "README.md")
    assert done.returncode == 0, done.stderr


def test_a_stale_example_is_caught(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    stale = text.replace("✅ reproducible; compared with the copy from", "✅ reproducible vs", 1)
    assert stale != text
    readme.write_text(stale, "utf-8")
    done = check(readme)
    assert done.returncode == 1
    assert "stale" in done.stderr


def test_the_example_shows_what_the_runs_did() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[
        text.index("<!-- example-summary:start -->") : text.index("<!-- example-summary:end -->")
    ]
    # The live build: good from the cache and checked against its copy, nondet differs, fails
    # fails; with real times and NAR hashes, not the `?` of a recorded log.
    assert "1 installable failed, 1 not reproducible, 1 reproducible" in block
    assert "(cross-machine)" in block
    assert "Reason: builder failed with exit code 3" in block
    assert "narHash unknown" not in block
    assert "Time: evaluation" in block
