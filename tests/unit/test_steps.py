"""The action's three steps driven through main(): which step runs (NIX_CACHE_ACTION_COMMAND),
the plan step down the paths that stop before Nix (a bad input, no nix on PATH), and the
aggregate step over plan files and legs' reports written by hand into tmp_path.

No Nix runs here. What the runner would read back is read back the way it reads it: the
workflow commands on stdout, the GITHUB_OUTPUT file, the job summary, and the files under
RUNNER_TEMP; the commit statuses go to a fake publisher.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from xml.etree import ElementTree as ET

import pytest

from nix_cache_action.action import main
from nix_cache_action.github.statuses import PublishOutcome
from nix_cache_action.plan import Attribute, Leg, Plan
from nix_cache_action.plan_command import write_plan
from nix_cache_action.render.outputs import OUTPUT_NAMES
from nix_cache_action.render.statuses import DESCRIPTION_LIMIT, CommitStatus
from nix_cache_action.report import (
    Build,
    Check,
    Installable,
    LegInfo,
    Report,
    Verification,
    read_report,
    write_report,
)
from nix_cache_action.settings import COMMAND_VARIABLE, input_variable
from nix_cache_action.steps.aggregate import AGGREGATE_OUTPUT_NAMES
from nix_cache_action.steps.plan import PLAN_OUTPUT_NAMES
from nix_cache_action.verification import VerificationRecord, load_record

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from typing_extensions import Self

TOKEN = "ghs_0123456789abcdefSTEPS"  # noqa: S105 - a made-up token
SHA = "e" * 40
LINUX = "x86_64-linux"
DARWIN = "aarch64-darwin"
FLAKE_CONTEXT = "nix-cache-action / flake"


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


def errors_in(output: str) -> list[Command]:
    return [c for c in commands_in(output) if c.name == "error"]


def parse_outputs(text: str) -> dict[str, str]:
    """The GITHUB_OUTPUT file: `name<<delimiter`, value lines, `delimiter`."""
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


class FakePublisher:
    """Records the commit statuses it was asked to post."""

    def __init__(self) -> None:
        self.made_with: tuple[str, str, str, str] | None = None
        self.statuses: list[CommitStatus] = []
        self.calls = 0

    def __call__(self, token: str, repository: str, api_url: str, sha: str) -> FakePublisher:
        self.made_with = (token, repository, api_url, sha)
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
        self.calls += 1
        self.statuses.extend(statuses)
        return PublishOutcome(posted=[s.context for s in self.statuses])


# --- the runner's files and variables -----------------------------------------------------


@dataclass
class Runner:
    root: Path

    def __post_init__(self) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.temp.mkdir(parents=True, exist_ok=True)
        self.empty_bin.mkdir(parents=True, exist_ok=True)

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def temp(self) -> Path:
        return self.root / "runner-temp"

    @property
    def empty_bin(self) -> Path:
        return self.root / "empty-bin"

    @property
    def output_file(self) -> Path:
        return self.root / "github-output"

    @property
    def summary_file(self) -> Path:
        return self.root / "step-summary.md"

    @property
    def directory(self) -> Path:
        return self.temp / "nix-cache-action"

    @property
    def report_file(self) -> Path:
        return self.directory / "report.json"

    @property
    def junit_file(self) -> Path:
        return self.directory / "junit.xml"

    @property
    def plan_file(self) -> Path:
        return self.directory / "plan" / "plan.json"

    @property
    def memory_record(self) -> Path:
        return self.directory / "memory" / "verified.json"

    @property
    def memory_report(self) -> Path:
        return self.directory / "memory" / "report.json"

    def environ(self, command: str | None, **inputs: str) -> dict[str, str]:
        """The variables of a step; `max_per_leg="x"` is the input max-per-leg. PATH has no
        nix, so nothing here can run one."""
        environ = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(self.output_file),
            "GITHUB_STEP_SUMMARY": str(self.summary_file),
            "GITHUB_REPOSITORY": "owner/repo",
            "GITHUB_SHA": SHA,
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_RUN_ID": "777",
            "PATH": str(self.empty_bin),
            input_variable("github-token"): TOKEN,
        }
        if command is not None:
            environ[COMMAND_VARIABLE] = command
        environ.update({input_variable(name.replace("_", "-")): v for name, v in inputs.items()})
        return environ

    def outputs(self) -> dict[str, str]:
        return parse_outputs(self.output_file.read_text(encoding="utf-8"))

    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.report_file.read_text(encoding="utf-8"))
        return data

    def plan(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.plan_file.read_text(encoding="utf-8"))
        return data

    def summary(self) -> str:
        return self.summary_file.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Ran:
    status: int
    stdout: str
    publisher: FakePublisher


def run(environ: Mapping[str, str]) -> Ran:
    stdout = io.StringIO()
    publisher = FakePublisher()
    status = main(environ, stdout, publisher_factory=publisher)
    return Ran(status, stdout.getvalue(), publisher)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    made = Runner(tmp_path)
    # As test_action.py does: no nix to be found, whichever environment is looked at.
    monkeypatch.setenv("PATH", str(made.empty_bin))
    return made


# --- dispatch -----------------------------------------------------------------------------


def test_an_unknown_command_is_a_bad_input_naming_the_variable(runner: Runner) -> None:
    ran = run(runner.environ("deploy"))
    assert ran.status == 1
    (error,) = errors_in(ran.stdout)
    assert error.properties == {"title": f"nix-cache-action: input {COMMAND_VARIABLE}"}
    assert error.data.startswith(f"{COMMAND_VARIABLE}: 'deploy' is not one of")
    assert "build, plan, aggregate" in error.data
    report = runner.report()
    assert report["verdict"] == "failed"
    assert COMMAND_VARIABLE in report["stopped"]
    assert "'deploy'" in report["stopped"]
    assert report["errors"] == [error.data]
    assert COMMAND_VARIABLE in runner.summary()
    # No step ran: no plan, no commit status.
    assert not runner.plan_file.exists()
    assert ran.publisher.made_with is None


@pytest.mark.parametrize("command", [None, "", "   ", "build"], ids=repr)
def test_no_command_is_the_build_step(runner: Runner, command: str | None) -> None:
    ran = run(runner.environ(command, reproducibility="sometimes"))
    assert ran.status == 1
    (error,) = errors_in(ran.stdout)
    # The build step's own bad-input path, not the dispatcher's.
    assert error.properties == {"title": "nix-cache-action: input reproducibility"}
    assert error.data.startswith("reproducibility: 'sometimes' is not one of fail, warn, off")
    assert COMMAND_VARIABLE not in ran.stdout
    assert runner.report()["stopped"] == error.data
    assert set(runner.outputs()) == set(OUTPUT_NAMES)


def test_the_command_is_case_sensitive(runner: Runner) -> None:
    ran = run(runner.environ("Plan", selection="checks..x"))
    assert ran.status == 1
    (error,) = errors_in(ran.stdout)
    assert error.properties["title"] == f"nix-cache-action: input {COMMAND_VARIABLE}"
    assert not runner.plan_file.exists()


# --- plan: bad inputs ---------------------------------------------------------------------


BAD_PLAN_INPUTS = [
    pytest.param({"selection": "checks..x"}, "selection", "checks..x", id="selection"),
    pytest.param({"runners": "nolabel"}, "runners", "nolabel", id="runners"),
    pytest.param({"max_per_leg": "many"}, "max-per-leg", "many", id="max-per-leg"),
    # A leg of nothing is no leg: 0 is refused, not read as the default.
    pytest.param({"max_per_leg": "0"}, "max-per-leg", "0", id="max-per-leg-0"),
]


@pytest.mark.parametrize(("inputs", "name", "value"), BAD_PLAN_INPUTS)
def test_a_bad_plan_input_still_writes_a_plan_holding_the_error(
    runner: Runner, inputs: dict[str, str], name: str, value: str
) -> None:
    ran = run(runner.environ("plan", **inputs))
    assert ran.status == 1
    named = [
        e
        for e in errors_in(ran.stdout)
        if e.properties.get("title") == f"nix-cache-action: input {name}"
    ]
    assert len(named) == 1
    (error,) = named
    assert error.data.startswith(f"{name}: ")
    assert repr(value) in error.data

    plan = runner.plan()
    assert plan["errors"] == [error.data]
    assert plan["legs"] == []
    assert plan["attributes"] == []
    assert Plan.from_json(plan).errors == (error.data,)

    outputs = runner.outputs()
    assert tuple(outputs) == PLAN_OUTPUT_NAMES
    assert outputs["legs"] == "0"
    assert outputs["errors"] == "1"
    assert json.loads(outputs["matrix"]) == {"include": []}
    assert outputs["plan"] == str(runner.plan_file)
    assert outputs["directory"] == str(runner.plan_file.parent)
    assert TOKEN not in runner.plan_file.read_text(encoding="utf-8")


@pytest.mark.parametrize(("inputs", "name", "value"), BAD_PLAN_INPUTS)
def test_a_bad_plan_input_is_one_error_annotation(
    runner: Runner, inputs: dict[str, str], name: str, value: str
) -> None:
    ran = run(runner.environ("plan", **inputs))
    (error,) = errors_in(ran.stdout)
    assert error.properties == {"title": f"nix-cache-action: input {name}"}
    assert repr(value) in error.data
    # The fix it names is the input's own: max-per-leg has a default, no budget.
    assert "no budget" not in error.data


def test_a_bad_plan_input_among_good_ones_is_still_caught(runner: Runner) -> None:
    # The second pattern is the bad one; the runner map is good.
    ran = run(runner.environ("plan", selection="checks packages..x", runners=f"{LINUX}=big-runner"))
    assert ran.status == 1
    assert runner.plan()["errors"][0].startswith("selection: 'packages..x'")
    assert runner.outputs()["errors"] == "1"


def test_a_good_max_per_leg_is_no_error_there(runner: Runner) -> None:
    # max-per-leg 5 is fine: the plan then stops only where Nix is needed (none on PATH).
    ran = run(runner.environ("plan", max_per_leg="5"))
    assert ran.status == 1
    (error,) = runner.plan()["errors"]
    assert "max-per-leg" not in error
    assert "not found on PATH" in error
    assert runner.plan()["max_per_leg"] == 5


# --- plan: no Nix -------------------------------------------------------------------------


def test_the_plan_without_nix_on_path_writes_a_plan_saying_so(runner: Runner) -> None:
    ran = run(runner.environ("plan"))
    assert ran.status == 1
    plan = runner.plan()
    (error,) = plan["errors"]
    assert "`nix` was not found on PATH" in error
    assert plan["legs"] == []
    outputs = runner.outputs()
    assert (outputs["legs"], outputs["errors"]) == ("0", "1")
    assert any("was not found on PATH" in e.data for e in errors_in(ran.stdout))
    assert "not found on PATH" in runner.summary()


# --- aggregate: a plan and legs' reports written by hand ----------------------------------


def drv(name: str) -> str:
    return f"/nix/store/{'d' * 32}-{name}.drv"


def out(name: str) -> str:
    return f"/nix/store/{'o' * 32}-{name}"


def installable(name: str, system: str = LINUX) -> str:
    return f".#packages.{system}.{name}"


def name_of(item: str) -> str:
    return item.rsplit(".", 1)[-1]


LEG_1 = Leg("x86_64-linux-1", LINUX, "ubuntu-latest", (installable("a"), installable("b")))
LEG_2 = Leg("x86_64-linux-2", LINUX, "ubuntu-latest", (installable("c"),))
LEG_3 = Leg("aarch64-darwin-1", DARWIN, "macos-latest", (installable("d", DARWIN),))
LEGS = (LEG_1, LEG_2, LEG_3)


def plan_of(legs: Sequence[Leg] = LEGS) -> Plan:
    return Plan(
        flake=".",
        systems=(LINUX, DARWIN),
        selection=("packages",),
        attributes=tuple(
            Attribute(
                attr=("packages", leg.system, name_of(item)),
                installable=item,
                system=leg.system,
                state="to-build",
                drv=drv(name_of(item)),
                outputs={"out": out(name_of(item))},
                leg=leg.id,
            )
            for leg in legs
            for item in leg.installables
        ),
        legs=tuple(legs),
        runners={LINUX: "ubuntu-latest", DARWIN: "macos-latest"},
    )


def leg_report(leg: Leg, *, failed: bool = False, seconds: float = 60.0) -> Report:
    """The leg's installables each built and checked reproducible, or each failed."""
    status: Literal["built", "failed"] = "failed" if failed else "built"
    return Report(
        installables=tuple(
            Installable(
                name=item,
                drv=drv(name_of(item)),
                outputs={"out": out(name_of(item))},
                status=status,
                error=f"build of {drv(name_of(item))} failed" if failed else None,
            )
            for item in leg.installables
        ),
        builds=tuple(
            Build(
                drv=drv(name_of(item)),
                status=status,
                seconds=2.0,
                log_tail=("error: builder failed",) if failed else (),
            )
            for item in leg.installables
        ),
        checks=()
        if failed
        else tuple(
            Check(
                drv=drv(name_of(item)),
                output="out",
                path=out(name_of(item)),
                verdict="reproducible",
                nar_hash=f"sha256-{name_of(item)}",
                check_nar_hash=f"sha256-{name_of(item)}",
                first_copy="built",
                installable=item,
            )
            for item in leg.installables
        ),
        seconds=seconds,
        leg=LegInfo(leg.id, leg.system, leg.runner),
    )


@dataclass
class Artifacts:
    """The plan artifact and the legs' artifacts as download-artifact leaves them."""

    root: Path

    @property
    def plan_file(self) -> Path:
        return self.root / "plan-artifact" / "plan.json"

    @property
    def reports(self) -> Path:
        return self.root / "legs"

    def leg_folder(self, leg: Leg) -> Path:
        return self.reports / f"nix-cache-action-leg-{leg.id}"

    def write_plan(self, plan: Plan | None = None) -> None:
        write_plan(plan_of() if plan is None else plan, self.plan_file)

    def write_leg(self, leg: Leg, report: Report) -> None:
        write_report(report, self.leg_folder(leg) / "report.json")

    def inputs(self, **more: str) -> dict[str, str]:
        return {"plan": str(self.plan_file), "reports": str(self.reports), **more}


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    made = Artifacts(tmp_path / "downloaded")
    made.reports.mkdir(parents=True)
    return made


def junit_suite(path: Path) -> ET.Element:
    suites = ET.fromstring(path.read_text(encoding="utf-8"))  # noqa: S314 - XML the step wrote
    assert suites.tag == "testsuites"
    (suite,) = list(suites)
    assert suite.tag == "testsuite"
    return suite


def leg_results(report: Mapping[str, Any]) -> dict[str, str]:
    return {leg["id"]: leg["verdict"] for leg in report["legs"]}


def test_a_leg_that_never_reported_fails_the_aggregate(
    runner: Runner, artifacts: Artifacts
) -> None:
    artifacts.write_plan()
    artifacts.write_leg(LEG_1, leg_report(LEG_1, seconds=90.0))
    artifacts.write_leg(LEG_2, leg_report(LEG_2, failed=True, seconds=30.0))
    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    assert ran.status == 1

    outputs = runner.outputs()
    assert set(outputs) == {*OUTPUT_NAMES, *AGGREGATE_OUTPUT_NAMES}
    assert outputs["verdict"] == "failed"
    assert outputs["missing-legs"] == LEG_3.id
    assert outputs["legs"] == "3"
    assert outputs["junit"] == str(runner.junit_file)
    assert outputs["report"] == str(runner.report_file)

    # The JUnit file: the missing leg's installable is an error, the failed one a failure.
    suite = junit_suite(runner.junit_file)
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    missing = cases[installable("d", DARWIN)]
    error = missing.find("error")
    assert error is not None
    assert LEG_3.id in (error.get("message") or "")
    assert "never reported" in (error.get("message") or "")
    assert missing.get("classname") == DARWIN
    assert cases[installable("c")].find("failure") is not None
    assert cases[installable("a")].find("error") is None
    assert suite.get("errors") == "1"
    assert suite.get("tests") == "4"

    # One commit status, for the whole flake.
    publisher = ran.publisher
    assert publisher.calls == 1
    assert publisher.made_with == (TOKEN, "owner/repo", "https://api.github.com", SHA)
    (status,) = publisher.statuses
    assert status.context == FLAKE_CONTEXT
    assert status.state == "failure"
    assert len(status.description) <= DESCRIPTION_LIMIT
    assert status.description.startswith("failed: 3 legs")
    assert "1 never reported" in status.description
    assert status.target_url == "https://github.com/owner/repo/actions/runs/777"

    # The job summary has the legs table, the missing leg in it.
    summary = runner.summary()
    assert "### 3 legs" in summary
    assert "| Leg | Runner | Verdict | Time |" in summary
    assert f"| `{LEG_3.id}` " in summary
    assert "| macos-latest | ❌ never reported |" in summary
    assert "❌ never reported" in summary

    report = runner.report()
    assert report["verdict"] == "failed"
    assert leg_results(report) == {LEG_1.id: "ok", LEG_2.id: "failed", LEG_3.id: "missing"}
    # Missing legs come first.
    assert report["legs"][0]["id"] == LEG_3.id
    assert report["legs"][0]["installables"] == 1
    assert report["seconds"] == 90.0


def test_the_aggregate_annotates_the_failures(runner: Runner, artifacts: Artifacts) -> None:
    artifacts.write_plan()
    artifacts.write_leg(LEG_1, leg_report(LEG_1))
    artifacts.write_leg(LEG_2, leg_report(LEG_2, failed=True))
    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    titles = [e.properties.get("title") for e in errors_in(ran.stdout)]
    assert installable("d", DARWIN) in titles
    assert installable("c") in titles
    assert installable("a") not in titles


def test_every_leg_ok_is_an_ok_aggregate(runner: Runner, artifacts: Artifacts) -> None:
    artifacts.write_plan()
    for leg in LEGS:
        artifacts.write_leg(leg, leg_report(leg))
    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    assert ran.status == 0
    outputs = runner.outputs()
    assert outputs["verdict"] == "ok"
    assert outputs["missing-legs"] == ""
    assert outputs["legs"] == "3"
    assert outputs["reproducible"] == "true"
    assert outputs["over-budget"] == "false"
    (status,) = ran.publisher.statuses
    assert (status.context, status.state) == (FLAKE_CONTEXT, "success")
    assert status.description.startswith("ok: 3 legs")
    assert "never reported" not in status.description
    assert errors_in(ran.stdout) == []
    assert set(leg_results(runner.report()).values()) == {"ok"}
    suite = junit_suite(runner.junit_file)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "0", "0")


def test_without_a_plan_file_the_aggregate_stops_and_says_why(
    runner: Runner, artifacts: Artifacts
) -> None:
    # The plan job failed before it uploaded: every leg that did run was ok.
    for leg in LEGS:
        artifacts.write_leg(leg, leg_report(leg))
    absent = artifacts.root / "plan-artifact" / "plan.json"
    ran = run(runner.environ("aggregate", plan=str(absent), reports=str(artifacts.reports)))
    assert ran.status == 1
    report = runner.report()
    assert report["verdict"] == "failed"
    assert report["stopped"].startswith(f"there is no plan at {absent}")
    assert report["stopped"] in report["errors"]
    stopped = [
        e for e in errors_in(ran.stdout) if e.properties.get("title") == "nix-cache-action stopped"
    ]
    assert len(stopped) == 1
    assert "there is no plan" in stopped[0].data
    assert runner.outputs()["verdict"] == "failed"
    (status,) = ran.publisher.statuses
    assert status.state == "failure"


def test_a_plan_file_that_is_not_a_plan_stops_the_aggregate(
    runner: Runner, artifacts: Artifacts
) -> None:
    artifacts.plan_file.parent.mkdir(parents=True)
    artifacts.plan_file.write_text('{"plan_version": 99}', encoding="utf-8")
    for leg in LEGS:
        artifacts.write_leg(leg, leg_report(leg))
    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    assert ran.status == 1
    assert runner.report()["stopped"].startswith("there is no plan at")


def test_a_plan_that_holds_an_error_fails_the_aggregate(
    runner: Runner, artifacts: Artifacts
) -> None:
    # What the plan step writes on a bad input: the error, no legs.
    failed = Plan(flake=".", systems=(), selection=(), errors=("selection: bad",))
    artifacts.write_plan(failed)
    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    assert ran.status == 1
    report = runner.report()
    assert "selection: bad" in report["stopped"]
    assert runner.outputs()["legs"] == "0"


# --- aggregate: budgets -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_seconds", "verdict", "over"),
    [
        pytest.param("55", "over-budget", "true", id="below-the-slowest-leg"),
        # 60 + 50 + 40 = 150 s in all, but the legs run side by side: 60 s is the run.
        pytest.param("100", "ok", "false", id="above-the-slowest-leg"),
        pytest.param("60", "ok", "false", id="exactly-the-slowest-leg"),
    ],
)
def test_max_seconds_is_judged_on_the_slowest_leg(
    runner: Runner, artifacts: Artifacts, max_seconds: str, verdict: str, over: str
) -> None:
    artifacts.write_plan()
    for leg, seconds in zip(LEGS, (50.0, 60.0, 40.0), strict=True):
        artifacts.write_leg(leg, leg_report(leg, seconds=seconds))
    ran = run(runner.environ("aggregate", **artifacts.inputs(max_seconds=max_seconds)))
    outputs = runner.outputs()
    assert outputs["verdict"] == verdict
    assert outputs["over-budget"] == over
    report = runner.report()
    assert report["budgets"]["max_seconds"] == float(max_seconds)
    (status,) = ran.publisher.statuses
    if verdict == "ok":
        assert ran.status == 0
        assert report["budgets"]["exceeded"] == []
        assert status.state == "success"
    else:
        assert ran.status == 1
        (exceeded,) = report["budgets"]["exceeded"]
        assert exceeded.startswith(f"max-seconds {max_seconds}: the run took 60 s")
        assert status.state == "failure"
        assert status.description.startswith("over-budget:")


def test_a_bad_budget_is_a_bad_input_of_the_aggregate(runner: Runner, artifacts: Artifacts) -> None:
    artifacts.write_plan()
    ran = run(runner.environ("aggregate", **artifacts.inputs(max_seconds="soon")))
    assert ran.status == 1
    (error,) = errors_in(ran.stdout)
    assert error.properties == {"title": "nix-cache-action: input max-seconds"}
    assert "'soon'" in error.data
    assert ran.publisher.made_with is None
    assert not runner.junit_file.exists()


# --- aggregate: verify-once ---------------------------------------------------------------


def verified(name: str, when: str, nar_hash: str, output: str = "out") -> Verification:
    return Verification(
        drv=drv(name),
        output=output,
        nar_hash=nar_hash,
        verdict="reproducible",
        checked_at=when,
        commit=SHA,
    )


def test_verify_once_merges_every_record_the_newest_winning(
    runner: Runner, artifacts: Artifacts
) -> None:
    artifacts.write_plan()
    for leg in LEGS:
        artifacts.write_leg(leg, leg_report(leg))
    # Beside the plan: the flake's record as the plan step shipped it.
    VerificationRecord(
        [
            verified("a", "2026-01-01T00:00:00Z", "sha256-a-old"),
            verified("b", "2026-01-05T00:00:00Z", "sha256-b-plan"),
        ]
    ).save(artifacts.plan_file.parent / "verified.json")
    # Two legs' records, each under memory/ in its artifact.
    VerificationRecord(
        [
            verified("a", "2026-02-01T00:00:00Z", "sha256-a-new"),
            verified("c", "2026-02-01T00:00:00Z", "sha256-c"),
        ]
    ).save(artifacts.leg_folder(LEG_1) / "memory" / "verified.json")
    VerificationRecord(
        [
            # Older than the plan's: it must not win.
            verified("b", "2025-12-01T00:00:00Z", "sha256-b-stale"),
            verified("d", "2026-02-02T00:00:00Z", "sha256-d-dev", output="dev"),
        ]
    ).save(artifacts.leg_folder(LEG_3) / "memory" / "verified.json")

    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    assert ran.status == 0
    record, note = load_record(runner.memory_record)
    assert note is None
    hashes = {(e.drv, e.output): e.nar_hash for e in record.entries()}
    assert hashes == {
        (drv("a"), "out"): "sha256-a-new",
        (drv("b"), "out"): "sha256-b-plan",
        (drv("c"), "out"): "sha256-c",
        (drv("d"), "dev"): "sha256-d-dev",
    }
    # And the report for the next run.
    saved = read_report(runner.memory_report)
    assert saved.verdict() == "ok"
    assert len(saved.legs) == 3
    assert runner.memory_report.read_text(encoding="utf-8") == runner.report_file.read_text(
        encoding="utf-8"
    )


def test_verify_once_without_any_record_writes_an_empty_one(
    runner: Runner, artifacts: Artifacts
) -> None:
    artifacts.write_plan()
    artifacts.write_leg(LEG_1, leg_report(LEG_1))
    run(runner.environ("aggregate", **artifacts.inputs()))
    record, note = load_record(runner.memory_record)
    assert note is None
    assert len(record) == 0
    assert runner.memory_report.is_file()


def test_verify_once_false_writes_no_memory(runner: Runner, artifacts: Artifacts) -> None:
    artifacts.write_plan()
    for leg in LEGS:
        artifacts.write_leg(leg, leg_report(leg))
    VerificationRecord([verified("a", "2026-01-01T00:00:00Z", "sha256-a")]).save(
        artifacts.plan_file.parent / "verified.json"
    )
    ran = run(runner.environ("aggregate", **artifacts.inputs(verify_once="false")))
    assert ran.status == 0
    assert runner.report_file.is_file()
    assert not runner.memory_record.exists()
    assert not runner.memory_report.exists()
    assert not (runner.directory / "memory").exists()


def test_junit_false_writes_no_junit_file(runner: Runner, artifacts: Artifacts) -> None:
    artifacts.write_plan()
    for leg in LEGS:
        artifacts.write_leg(leg, leg_report(leg))
    run(runner.environ("aggregate", **artifacts.inputs(junit="false")))
    assert not runner.junit_file.exists()
    assert runner.outputs()["junit"] == ""


# --- aggregate: a broken leg report -------------------------------------------------------


def test_a_leg_report_that_is_not_json_counts_as_missing(
    runner: Runner, artifacts: Artifacts
) -> None:
    artifacts.write_plan()
    artifacts.write_leg(LEG_1, leg_report(LEG_1))
    artifacts.write_leg(LEG_2, leg_report(LEG_2))
    broken = artifacts.leg_folder(LEG_3) / "report.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json", encoding="utf-8")

    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    assert ran.status == 1
    report = runner.report()
    # Not a crash: the aggregate went on, and says which file it could not use.
    assert report["stopped"] is None
    assert not any("unexpected error" in e for e in report["errors"])
    (note,) = [n for n in report["notes"] if str(broken) in n]
    assert "is not JSON" in note
    assert "never reported" in note
    assert leg_results(report) == {LEG_1.id: "ok", LEG_2.id: "ok", LEG_3.id: "missing"}
    outputs = runner.outputs()
    assert outputs["verdict"] == "failed"
    assert outputs["missing-legs"] == LEG_3.id
    (status,) = ran.publisher.statuses
    assert status.state == "failure"
    assert "1 never reported" in status.description


# --- aggregate: the baseline action.yml restored ------------------------------------------


def test_the_aggregate_compares_with_the_restored_baseline(
    runner: Runner, artifacts: Artifacts
) -> None:
    artifacts.write_plan()
    for leg in LEGS:
        artifacts.write_leg(leg, leg_report(leg))
    # The base branch's last run built only leg 1's installables.
    write_report(leg_report(LEG_1), runner.directory / "baseline" / "report.json")
    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    assert ran.status == 0
    baseline = runner.report()["baseline"]
    assert baseline["source"] == "the last run of the base branch"
    assert sorted(baseline["new_builds"]) == [drv("c"), drv("d")]


def test_an_unusable_baseline_is_a_note_not_a_failure(runner: Runner, artifacts: Artifacts) -> None:
    artifacts.write_plan()
    for leg in LEGS:
        artifacts.write_leg(leg, leg_report(leg))
    baseline = runner.directory / "baseline" / "report.json"
    baseline.parent.mkdir(parents=True)
    baseline.write_text("[", encoding="utf-8")
    ran = run(runner.environ("aggregate", **artifacts.inputs()))
    assert ran.status == 0
    report = runner.report()
    assert report["baseline"] is None
    assert any(str(baseline) in note and "no comparison" in note for note in report["notes"])
