"""The action's main and its publishers, with an injected environment and streams.

No Nix runs here: main() is driven down the paths that stop before Nix (a bad input, no nix on
PATH), and the publishers are fed Reports built by hand. The real build under a real runner is
tests/e2e/test_act.py.
"""

from __future__ import annotations

import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from nix_cache_action import records
from nix_cache_action.action import DEBUG_VARIABLE, main
from nix_cache_action.github.statuses import PublishOutcome
from nix_cache_action.github.workflow_commands import WorkflowCommands
from nix_cache_action.magic_nix_cache import DAEMON_DIR_VARIABLE
from nix_cache_action.redaction import SECRET_SOURCES
from nix_cache_action.render.annotations import annotations_for
from nix_cache_action.render.outputs import OUTPUT_NAMES, outputs_for
from nix_cache_action.render.statuses import CommitStatus, statuses_for
from nix_cache_action.render.terminal import render_terminal
from nix_cache_action.report import (
    Build,
    Check,
    FileDifference,
    Installable,
    Mode,
    Report,
    Run,
    Substitution,
)
from nix_cache_action.settings import (
    COMMAND_VARIABLE,
    Settings,
    input_variable,
    load_settings,
)
from nix_cache_action.steps.publish import Paths, publish
from nix_cache_action.steps.publish import read_baseline as _baseline

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from typing_extensions import Self

TOKEN = "ghs_0123456789abcdefSECRET"  # noqa: S105 - a made-up token the tests look for
SHA = "c" * 40
HEAD_SHA = "d" * 40
STORE = "/nix/store"
MAGIC = "http://127.0.0.1:37515?trusted=1"


# --- reading back what the runner reads ---------------------------------------------------


@dataclass(frozen=True)
class Command:
    name: str
    properties: dict[str, str]
    data: str


def _unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _unescape_property(text: str) -> str:
    return _unescape_data(text.replace("%3A", ":").replace("%2C", ","))


def commands_in(output: str) -> list[Command]:
    """Workflow commands among the lines of `output`, read the way the runner reads them."""
    found = []
    for line in output.splitlines():
        if not line.startswith("::"):
            continue
        head, _, data = line[2:].partition("::")
        name, _, props = head.partition(" ")
        properties = {}
        for pair in filter(None, props.split(",")):
            key, _, value = pair.partition("=")
            properties[key] = _unescape_property(value)
        found.append(Command(name, properties, _unescape_data(data)))
    return found


def annotations_in(output: str) -> list[Command]:
    return [c for c in commands_in(output) if c.name in {"error", "warning", "notice"}]


def parse_outputs(text: str) -> dict[str, str]:
    """The GITHUB_OUTPUT file: `name<<delimiter`, value lines, `delimiter`, as the runner reads."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        name, separator, delimiter = line.partition("<<")
        assert separator, f"not a heredoc line: {line!r}"
        value: list[str] = []
        while lines[index] != delimiter:
            value.append(lines[index])
            index += 1
        index += 1
        assert name not in outputs, f"{name} written twice"
        outputs[name] = "\n".join(value)
    return outputs


# --- environments -------------------------------------------------------------------------


@dataclass
class Runner:
    """The files and variables a runner gives a step, under tmp_path."""

    root: Path

    def __post_init__(self) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.temp.mkdir(parents=True, exist_ok=True)

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def temp(self) -> Path:
        return self.root / "runner-temp"

    @property
    def output_file(self) -> Path:
        return self.root / "github-output"

    @property
    def summary_file(self) -> Path:
        return self.root / "step-summary.md"

    @property
    def report_file(self) -> Path:
        return self.temp / "nix-cache-action" / "report.json"

    def environ(self, **inputs: str) -> dict[str, str]:
        environ = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(self.output_file),
            "GITHUB_STEP_SUMMARY": str(self.summary_file),
            "GITHUB_REPOSITORY": "owner/repo",
            "GITHUB_SHA": SHA,
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_RUN_ID": "4242",
            input_variable("github-token"): TOKEN,
        }
        environ.update({input_variable(name.replace("_", "-")): v for name, v in inputs.items()})
        return environ

    def settings(self, **inputs: str) -> Settings:
        return load_settings(self.environ(**inputs))

    def outputs(self) -> dict[str, str]:
        return parse_outputs(self.output_file.read_text(encoding="utf-8"))

    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.report_file.read_text(encoding="utf-8"))
        return data


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


class FakePublisher:
    """Records what would be posted; answers with the outcome it was given."""

    def __init__(self, outcome: PublishOutcome | None = None, error: Exception | None = None):
        self.outcome = outcome
        self.error = error
        self.made_with: tuple[str, str, str, str] | None = None
        self.statuses: list[CommitStatus] = []

    def __call__(self, token: str, repository: str, api_url: str, sha: str) -> FakePublisher:
        self.made_with = (token, repository, api_url, sha)
        if self.error is not None:
            raise self.error
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def publish(self, statuses: Iterable[CommitStatus]) -> PublishOutcome:
        self.statuses = list(statuses)
        if self.outcome is not None:
            return self.outcome
        return PublishOutcome(posted=[s.context for s in self.statuses])


# --- reports made by hand -----------------------------------------------------------------


def drv(name: str) -> str:
    return f"{STORE}/{'a' * 32}-{name}.drv"


def out(name: str) -> str:
    return f"{STORE}/{'b' * 32}-{name}"


def reproducible_report() -> Report:
    return Report(
        substitutions=(Substitution(path=out("leaf"), substituter=MAGIC, nar_bytes=120),),
        builds=(
            Build(drv=drv("mid"), status="built", seconds=1.5),
            Build(drv=drv("top"), status="built", seconds=2.25),
            Build(drv=drv("top"), status="checked", seconds=2.0, reason=None),
        ),
        checks=(
            Check(
                drv=drv("top"),
                output="out",
                path=out("top"),
                verdict="reproducible",
                nar_hash="sha256-AAAA",
                check_nar_hash="sha256-AAAA",
                first_copy="built",
                installable=".#default",
            ),
        ),
        installables=(
            Installable(
                name=".#default",
                drv=drv("top"),
                outputs={"out": out("top")},
                nar_hashes={"out": "sha256-AAAA"},
            ),
        ),
        runs=(Run(label="build", seconds=4.0), Run(label="check", seconds=2.5)),
    )


def differing_check(name: str, *, first_copy: str = "substituted") -> Check:
    return Check(
        drv=drv(name),
        output="out",
        path=out(name),
        verdict="differs",
        nar_hash="sha256-FIRST",
        check_nar_hash="sha256-SECOND",
        first_copy=first_copy,  # type: ignore[arg-type]
        substituter=MAGIC if first_copy == "substituted" else None,
        installable=f".#{name}",
        differences=(FileDifference(path="share/stamp", kind="content"),),
    )


def broken_report(mode: Mode = "fail") -> Report:
    """.#nondet builds but differs; .#fails fails to build with a log tail."""
    return Report(
        builds=(
            Build(drv=drv("nondet"), status="built", seconds=0.5),
            Build(
                drv=drv("fails"),
                status="failed",
                seconds=0.1,
                error=f"builder for '{drv('fails')}' failed with exit code 3",
                log_tail=("starting", "oops"),
            ),
        ),
        checks=(differing_check("nondet", first_copy="built"),),
        installables=(
            Installable(
                name=".#nondet",
                drv=drv("nondet"),
                outputs={"out": out("nondet")},
                nar_hashes={"out": "sha256-FIRST"},
            ),
            Installable(
                name=".#fails",
                drv=drv("fails"),
                status="failed",
                error=f"builder for '{drv('fails')}' failed with exit code 3",
            ),
        ),
        reproducibility_mode=mode,
    )


def run_publish(
    runner: Runner, report: Report, publisher: FakePublisher | None = None, **inputs: str
) -> str:
    stdout = io.StringIO()
    settings = runner.settings(**inputs)
    publish(
        report,
        settings=settings,
        paths=Paths.for_context(settings.github),
        commands=WorkflowCommands(stdout),
        stdout=stdout,
        publisher_factory=publisher or FakePublisher(),
    )
    return stdout.getvalue()


# --- main(): a bad input ------------------------------------------------------------------


def test_a_bad_input_is_one_error_naming_it_and_still_leaves_a_report(runner: Runner) -> None:
    stdout = io.StringIO()
    status = main(runner.environ(reproducibility="sometimes"), stdout)
    assert status == 1
    commands = commands_in(stdout.getvalue())
    assert commands[0] == Command("add-mask", {}, TOKEN)
    (error,) = annotations_in(stdout.getvalue())
    assert error.name == "error"
    assert error.properties == {"title": "nix-cache-action: input reproducibility"}
    assert error.data.startswith("reproducibility: 'sometimes' is not one of fail, warn, off")

    report = runner.report()
    assert report["verdict"] == "failed"
    assert report["errors"] == [error.data]
    assert report["installables"] == []
    summary = runner.summary_file.read_text(encoding="utf-8")
    assert "reproducibility" in summary
    assert "sometimes" in summary
    outputs = runner.outputs()
    assert set(outputs) == set(OUTPUT_NAMES)
    assert outputs["report"] == str(runner.report_file)
    assert (outputs["reproducible"], outputs["built"], outputs["out-paths"]) == ("", "0", "{}")


def test_the_token_is_masked_first_and_never_written_anywhere(runner: Runner) -> None:
    stdout = io.StringIO()
    main(runner.environ(installables="   "), stdout)
    text = stdout.getvalue()
    assert text.startswith(f"::add-mask::{TOKEN}\n")
    assert text.count(TOKEN) == 1
    for written in (runner.output_file, runner.summary_file, runner.report_file):
        assert TOKEN not in written.read_text(encoding="utf-8")


def test_a_bad_context_still_gives_one_error_and_a_report(runner: Runner) -> None:
    # With GITHUB_REPOSITORY unusable only the runner's own paths are trusted: the report,
    # the summary and the outputs still go where the runner reads them.
    environ = runner.environ()
    environ["GITHUB_REPOSITORY"] = "no-slash"
    stdout = io.StringIO()
    assert main(environ, stdout) == 1
    (error,) = annotations_in(stdout.getvalue())
    assert error.properties["title"] == "nix-cache-action: input GITHUB_REPOSITORY"
    report = json.loads(runner.report_file.read_text())
    assert report["verdict"] == "failed"
    assert "GITHUB_REPOSITORY" in report["stopped"]
    assert "GITHUB_REPOSITORY" in runner.summary_file.read_text()
    assert runner.outputs()["report"] == str(runner.report_file)


# --- main(): no Nix -----------------------------------------------------------------------


def test_without_nix_on_path_the_step_fails_with_the_fix_and_a_report(
    runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    stdout = io.StringIO()
    publisher = FakePublisher()
    # Nix is started with the environment main() was given (less the inputs).
    environ = {**runner.environ(), "PATH": str(empty)}
    status = main(environ, stdout, publisher_factory=publisher)
    assert status == 1
    text = stdout.getvalue()

    # Nix's own output is fenced off from the runner's command parser, and the fence is closed.
    commands = commands_in(text)
    stop = next(c for c in commands if c.name == "stop-commands")
    assert re.fullmatch(r"nix-cache-action-[0-9a-f]{32}", stop.data)
    assert any(c.name == stop.data for c in commands), "stop-commands never resumed"

    errors = [a for a in annotations_in(text) if a.name == "error"]
    assert [e.properties["title"] for e in errors] == ["nix-cache-action stopped"]
    assert "`nix` was not found on PATH" in errors[0].data
    assert "install-nix" in errors[0].data
    report = runner.report()
    assert report["verdict"] == "failed"
    assert any("was not found on PATH" in e for e in report["errors"])
    assert "not found on PATH" in runner.summary_file.read_text(encoding="utf-8")
    assert runner.outputs()["report"] == str(runner.report_file)
    # Nothing was evaluated, so there is no installable to post a status for.
    assert publisher.made_with is None


def test_main_reads_only_the_inputs_and_the_runner_context(
    runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nix_cache_action.settings import CONTEXT_VARIABLES, INPUT_NAMES  # noqa: PLC0415

    class Recording(dict[str, str]):
        def __init__(self, data: dict[str, str]) -> None:
            super().__init__(data)
            self.read: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.read.add(key)
            return super().get(key, default)

        def __getitem__(self, key: str) -> str:
            self.read.add(key)
            return super().__getitem__(key)

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    environ = Recording({**runner.environ(), "UNRELATED": "x", "INPUT_UNDECLARED": "y"})
    main(environ, io.StringIO(), publisher_factory=FakePublisher())
    inputs = {input_variable(name) for name in INPUT_NAMES}
    assert inputs <= environ.read
    # Besides: where Magic Nix Cache's daemon keeps its log (magic-nix-cache-action sets it).
    # And the runner's debug switch, Nix's configuration for the secrets it may hold, and which
    # step action.yml runs.
    allowed = {DAEMON_DIR_VARIABLE, DEBUG_VARIABLE, COMMAND_VARIABLE, *SECRET_SOURCES}
    assert environ.read <= inputs | set(CONTEXT_VARIABLES) | allowed


# --- publish(): a good run ----------------------------------------------------------------


def test_a_reproducible_run_publishes_outputs_notice_summary_and_report(runner: Runner) -> None:
    publisher = FakePublisher()
    text = run_publish(runner, reproducible_report(), publisher)

    outputs = runner.outputs()
    assert outputs == {
        "reproducible": "true",
        "hit-rate": "0.3333",
        "substituted": "1",
        "built": "2",
        "failed": "0",
        "build-seconds": "3.75",
        "out-paths": json.dumps({".#default": {"out": out("top")}}, separators=(",", ":")),
        "nar-hashes": '{".#default":{"out":"sha256-AAAA"}}',
        "report": str(runner.report_file),
        "previously-verified": "0",
        "over-budget": "false",
    }
    (notice,) = annotations_in(text)
    assert notice.name == "notice"
    assert notice.properties == {"title": "nix-cache-action: all built, no output differs"}
    assert notice.data == (
        "1 store path substituted, 2 built, 0 failed, cache hit rate 33.3%, build time 3.8 s;"
        " rebuild check: 1 reproducible, 0 differ, 0 not checked"
    )
    assert runner.report()["verdict"] == "ok"
    assert runner.summary_file.read_text(encoding="utf-8").startswith("## ✅")

    assert publisher.made_with == (TOKEN, "owner/repo", "https://api.github.com", SHA)
    (status,) = publisher.statuses
    assert status.context == "nix-cache-action / .#default"
    assert status.state == "success"
    assert status.target_url == "https://github.com/owner/repo/actions/runs/4242"
    assert "commit status posted: nix-cache-action / .#default" in text


def test_outputs_are_appended_once_each_after_earlier_writers(runner: Runner) -> None:
    runner.output_file.write_text("earlier<<EOF\nkept\nEOF\n", encoding="utf-8")
    run_publish(runner, reproducible_report())
    outputs = runner.outputs()
    assert outputs["earlier"] == "kept"
    assert set(outputs) == {"earlier", *OUTPUT_NAMES}


def test_summary_and_annotations_can_be_turned_off(runner: Runner) -> None:
    text = run_publish(runner, broken_report(), summary="false", annotations="false")
    assert annotations_in(text) == []
    assert not runner.summary_file.exists()
    # The report and the outputs are always written.
    assert runner.report()["verdict"] == "failed"
    assert runner.outputs()["reproducible"] == "false"


# --- publish(): failures ------------------------------------------------------------------


def test_each_differing_output_and_failed_build_is_an_error_titled_with_the_installable(
    runner: Runner,
) -> None:
    text = run_publish(runner, broken_report())
    notice, differs, failed = annotations_in(text)
    assert (notice.name, notice.properties["title"]) == ("notice", "nix-cache-action: failed")
    assert (differs.name, differs.properties) == ("error", {"title": ".#nondet"})
    assert differs.data.splitlines() == [
        (
            f"{out('nondet')} is not reproducible: the rebuild (NAR hash sha256-SECOND) differs"
            " from the copy built on the same machine (sha256-FIRST)."
        ),
        "Files that differ: share/stamp.",
        (
            "Reproduce locally: nix build '.#nondet' --rebuild --keep-failed,"
            f" then diffoscope {out('nondet')} {out('nondet')}.check"
        ),
    ]
    assert (failed.name, failed.properties) == ("error", {"title": ".#fails"})
    assert failed.data.splitlines() == [
        f"builder for '{drv('fails')}' failed with exit code 3",
        "Last lines of the build log:",
        "starting",
        "oops",
    ]
    assert runner.outputs()["failed"] == "1"


def test_a_difference_against_a_cache_copy_names_the_cache(runner: Runner) -> None:
    report = Report(checks=(differing_check("nondet"),))
    (message,) = [a.data for a in annotations_in(run_publish(runner, report)) if a.name == "error"]
    assert "differs from the copy from Magic Nix Cache (cross-machine) (sha256-FIRST)" in message


def test_in_warn_mode_a_difference_is_a_warning_and_its_status_is_not_red(runner: Runner) -> None:
    report = Report(
        checks=(differing_check("nondet", first_copy="built"),),
        installables=(Installable(name=".#nondet", drv=drv("nondet"), outputs={"out": "x"}),),
        reproducibility_mode="warn",
    )
    publisher = FakePublisher()
    text = run_publish(runner, report, publisher, reproducibility="warn")
    kinds = [(a.name, a.properties["title"]) for a in annotations_in(text)]
    assert kinds == [
        ("notice", "nix-cache-action: not reproducible (reproducibility: warn)"),
        ("warning", ".#nondet"),
    ]
    assert report.exit_status() == 0
    (status,) = publisher.statuses
    assert status.state == "success"
    assert status.description.startswith("NOT reproducible")


def test_a_failed_dependency_no_installable_names_gets_its_own_error(runner: Runner) -> None:
    report = Report(
        builds=(Build(drv=drv("dep"), status="failed", error="dep broke", log_tail=("x",)),),
        installables=(
            Installable(name=".#a", drv=drv("a"), status="failed", error="a dependency failed"),
        ),
    )
    errors = [a for a in annotations_in(run_publish(runner, report)) if a.name == "error"]
    assert [e.properties["title"] for e in errors] == [".#a", "dep"]
    assert errors[1].data == "dep broke\nLast lines of the build log:\nx"


def test_annotations_past_githubs_cap_are_folded_into_one(runner: Runner) -> None:
    names = [f"n{index:02}" for index in range(13)]
    report = Report(checks=tuple(differing_check(name) for name in names))
    errors = [a for a in annotations_in(run_publish(runner, report)) if a.name == "error"]
    assert len(errors) == 10
    assert [e.properties["title"] for e in errors[:9]] == [f".#{n}" for n in names[:9]]
    assert errors[9].data.startswith("and 4 more errors: .#n09; .#n10; .#n11; .#n12")


# --- commit statuses ----------------------------------------------------------------------


def test_statuses_go_to_the_pull_requests_head_commit(runner: Runner) -> None:
    event = runner.root / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": HEAD_SHA}}}))
    publisher = FakePublisher()
    stdout = io.StringIO()
    settings = load_settings(
        {
            **runner.environ(),
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event),
        }
    )
    publish(
        broken_report(),
        settings=settings,
        paths=Paths.for_context(settings.github),
        commands=WorkflowCommands(stdout),
        stdout=stdout,
        publisher_factory=publisher,
    )
    assert publisher.made_with is not None
    assert publisher.made_with[3] == HEAD_SHA
    states = {s.context: s.state for s in publisher.statuses}
    assert states == {
        "nix-cache-action / .#nondet": "failure",
        "nix-cache-action / .#fails": "failure",
    }


def test_a_read_only_token_gives_one_warning_and_changes_nothing_else(runner: Runner) -> None:
    warning = "Commit statuses not posted: GitHub answered 403 (Resource not accessible)"
    publisher = FakePublisher(PublishOutcome(posted=[], warnings=[warning]))
    text = run_publish(runner, reproducible_report(), publisher)
    kinds = [(a.name, a.data) for a in annotations_in(text)]
    assert kinds[1:] == [("warning", warning)]
    assert runner.report()["verdict"] == "ok"


def test_a_publisher_that_cannot_even_start_is_a_warning(runner: Runner) -> None:
    publisher = FakePublisher(error=RuntimeError("boom"))
    text = run_publish(runner, reproducible_report(), publisher)
    (warning,) = [a for a in annotations_in(text) if a.name == "warning"]
    assert "Commit statuses not posted: RuntimeError: boom" in warning.data
    assert runner.report()["verdict"] == "ok"


@pytest.mark.parametrize(
    ("inputs", "note"),
    [
        ({"status_checks": "false"}, None),
        ({"github_token": ""}, "commit statuses skipped: github-token is empty"),
    ],
)
def test_no_statuses_when_turned_off_or_without_a_token(
    runner: Runner, inputs: dict[str, str], note: str | None
) -> None:
    publisher = FakePublisher()
    environ = runner.environ(**inputs)
    stdout = io.StringIO()
    settings = load_settings(environ)
    publish(
        reproducible_report(),
        settings=settings,
        paths=Paths.for_context(settings.github),
        commands=WorkflowCommands(stdout),
        stdout=stdout,
        publisher_factory=publisher,
    )
    assert publisher.made_with is None
    if note is not None:
        assert note in stdout.getvalue()
    assert [a.name for a in annotations_in(stdout.getvalue())] == ["notice"]


def test_statuses_for_each_installable_carry_the_run_url(runner: Runner) -> None:
    statuses = statuses_for(broken_report(), runner.settings().github)
    assert [s.context for s in statuses] == [
        "nix-cache-action / .#nondet",
        "nix-cache-action / .#fails",
    ]
    assert [s.description.split(":")[0] for s in statuses] == [
        "NOT reproducible",
        "build failed",
    ]
    assert {s.target_url for s in statuses} == {"https://github.com/owner/repo/actions/runs/4242"}


# --- pure pieces --------------------------------------------------------------------------


def test_outputs_leave_unknown_figures_empty() -> None:
    outputs = outputs_for(Report(reproducibility_mode="off"), Path("/r.json"))
    assert outputs["reproducible"] == ""
    assert outputs["hit-rate"] == ""
    assert outputs["build-seconds"] == ""
    assert tuple(outputs) == OUTPUT_NAMES


def test_the_notice_says_when_the_check_was_off() -> None:
    (notice,) = annotations_for(Report(reproducibility_mode="off"))
    assert notice.message.endswith("; rebuild check: off")


def test_nix_never_sees_the_inputs_or_the_token(runner: Runner, tmp_path: Path) -> None:
    # A stand-in `nix` that records the environment it was started with, then fails.
    bin_dir = tmp_path / "stand-in-bin"
    bin_dir.mkdir()
    dump = tmp_path / "nix-env.txt"
    fake = bin_dir / "nix"
    # Python, not sh: a shell drops variables whose names have a dash (INPUT_GITHUB-TOKEN).
    fake.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"with open({str(dump)!r}, 'a') as f:\n"
        "    f.writelines(f'{k}={v}\\n' for k, v in os.environ.items())\n"
        "print('nix (Nix) 2.34.8')\nsys.exit(1)\n",
        "utf-8",
    )
    fake.chmod(0o755)
    environ = {**runner.environ(), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    assert main(environ, io.StringIO(), publisher_factory=FakePublisher()) == 1
    seen = dump.read_text(encoding="utf-8")
    assert "PATH=" in seen  # it did run, with the environment
    assert TOKEN not in seen
    assert "INPUT_" not in seen


def test_a_failed_builds_log_is_folded_in_the_step_log_with_commands_paused(
    runner: Runner,
) -> None:
    report = broken_report()
    failing = report.builds[1]
    hostile = records.replace(failing, log_tail=("starting", "::set-output name=x::y"))
    report = records.replace(report, builds=(report.builds[0], hostile))
    text = run_publish(runner, report)
    lines = text.splitlines()
    start = lines.index("::group::Log of the failed build fails")
    pause = lines[start + 1]
    assert pause.startswith("::stop-commands::nix-cache-action-")
    token = pause.removeprefix("::stop-commands::")
    assert lines[start + 2] == "starting"
    assert "set-output" in lines[start + 3]
    assert not lines[start + 3].startswith("::")
    assert lines[start + 4] == f"::{token}::"
    assert lines[start + 5] == "::endgroup::"


def test_the_terminal_shows_the_end_of_a_failed_builds_log() -> None:
    text = render_terminal(broken_report())
    assert "  failed: fails" in text
    assert "    | oops" in text


# --- the baseline action.yml restored ------------------------------------------------------------


def test_a_restored_baseline_is_read_and_an_absent_one_is_no_note(tmp_path: Path) -> None:
    assert _baseline(tmp_path / "absent.json") == (None, None)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(reproducible_report().to_json()), encoding="utf-8")
    baseline, note = _baseline(path)
    assert note is None
    assert baseline is not None
    assert baseline.totals() == reproducible_report().totals()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        pytest.param(b"{not json", "is not JSON", id="text"),
        # Deeper than the JSON decoder recurses: a RecursionError, which once escaped.
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "is not JSON", id="nested"),
        pytest.param(b'{"schema_version": 2}', "has schema_version 2", id="newer"),
        pytest.param(b'{"schema_version": 1}', "is not a nix-cache-action report", id="partial"),
    ],
)
def test_an_unusable_baseline_is_a_note_and_no_comparison(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content)
    baseline, note = _baseline(path)
    assert baseline is None
    assert note is not None
    assert str(path) in note
    assert why in note
    assert note.endswith("no comparison")
