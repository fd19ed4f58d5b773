"""Contract tests on action.yml, the workflows and README: what GitHub and users rely on.

- Inputs reach Python only through `env:` of the step that runs entrypoint.py, as the
  `INPUT_<NAME>` variables settings.py reads; no `${{ }}` expression is ever inside a `run:`
  body (template injection).
- Python reads exactly what action.yml sets, plus the runner's own context variables.
- Every input and output is documented in README's action reference.

GitHub's schemas and zizmor's audit of the same files are in tests/tools (they run outside tools).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from nix_cache_action.render.outputs import OUTPUT_NAMES
from nix_cache_action.settings import CONTEXT_VARIABLES, INPUT_NAMES, input_variable

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
# The sub-actions of a planned matrix; tests/unit/test_sub_actions_contract.py has their contract.
SUB_ACTIONS = [REPO / "plan" / "action.yml", REPO / "aggregate" / "action.yml"]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
STANDINS = sorted((REPO / "tests" / "e2e" / "standins").glob("*/action.yml"))
ALL_ACTIONS = [ACTION, *SUB_ACTIONS, *STANDINS]
README_START = "<!-- action-reference:start -->"
README_END = "<!-- action-reference:end -->"
# The sub-actions' own tables, inside the action reference: not the root action's documentation.
README_SUB_SECTIONS = ("plan-reference", "aggregate-reference")
ENTRYPOINT_STEP = "run"
# Inputs that only the installer reads; they never reach Python.
# Inputs only the installer reads, by the name it reads them as: `installer-summary` is its
# `summarize`.
INSTALLER_PASS_THROUGH = {"determinate": "determinate", "installer-summary": "summarize"}
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
# The project's actions that post commit statuses unless told `status-checks: false` (the plan
# posts none); `./` is the root action in this repository's own workflows, `./.nix-cache-action`
# the reusable workflow's checkout of them.
POSTS_STATUSES = {"./", "./.nix-cache-action", "./.nix-cache-action/aggregate"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    data: dict[str, Any] = load(ACTION)
    return data


def steps_of(action: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = action["runs"]["steps"]
    return steps


def entrypoint_step(action: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in steps_of(action) if "entrypoint.py" in s.get("run", "")]
    return step


def all_steps() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in ALL_ACTIONS:
        where = str(path.relative_to(REPO))
        found += [(where, step) for step in load(path)["runs"]["steps"]]
    for path in WORKFLOWS:
        for job in load(path)["jobs"].values():
            # A job that calls a reusable workflow (`uses:`) has no steps of its own.
            found += [(path.name, step) for step in job.get("steps", [])]
    return found


def readme_reference() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END)
    reference = text[start:end]
    for section in README_SUB_SECTIONS:
        begin, finish = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
        cut_from, cut_to = reference.index(begin), reference.index(finish) + len(finish)
        reference = reference[:cut_from] + reference[cut_to:]
    return reference


# --- inputs -------------------------------------------------------------------------------


def test_inputs_are_what_python_reads_plus_the_installers_own(action: dict[str, Any]) -> None:
    assert set(action["inputs"]) == set(INPUT_NAMES) | set(INSTALLER_PASS_THROUGH)


def test_the_entrypoint_step_sets_exactly_the_input_variables_python_reads(
    action: dict[str, Any],
) -> None:
    env: dict[str, str] = entrypoint_step(action)["env"]
    given = {name: value for name, value in env.items() if name.startswith("INPUT_")}
    assert set(given) == {input_variable(name) for name in INPUT_NAMES}
    for name in INPUT_NAMES:
        assert given[input_variable(name)] == f"${{{{ inputs.{name} }}}}"


def test_the_entrypoint_steps_id_is_what_the_outputs_read(action: dict[str, Any]) -> None:
    assert entrypoint_step(action)["id"] == ENTRYPOINT_STEP


@pytest.mark.parametrize(
    "where_step", all_steps(), ids=lambda item: f"{item[0]}:{item[1].get('name', '?')}"
)
def test_no_expression_inside_a_run_body(where_step: tuple[str, dict[str, Any]]) -> None:
    _, step = where_step
    assert "${{" not in step.get("run", "")


def test_inputs_are_used_only_in_env_with_and_if(action: dict[str, Any]) -> None:
    for step in steps_of(action):
        for key, value in step.items():
            text = json.dumps(value)
            if key in {"env", "with"}:
                continue
            if key == "if":
                # `if:` is an expression itself; it decides, it is never run.
                continue
            assert "inputs." not in text, f"{step.get('name')}: inputs used in {key}"


def test_installer_pass_through_inputs_go_only_to_the_installer(action: dict[str, Any]) -> None:
    (installer,) = [s for s in steps_of(action) if "nix-installer-action" in s.get("uses", "")]
    for name, theirs in INSTALLER_PASS_THROUGH.items():
        assert installer["with"][theirs] == f"${{{{ inputs.{name} }}}}"
        elsewhere = [
            s for s in steps_of(action) if s is not installer and f"inputs.{name}" in json.dumps(s)
        ]
        assert elsewhere == []


def test_every_input_is_described_with_its_default(action: dict[str, Any]) -> None:
    for name, spec in action["inputs"].items():
        description = " ".join(spec["description"].split())
        default = str(spec.get("default", ""))
        assert "Default" in description, name
        shown = "github.token" if name == "github-token" else default or "empty"
        assert shown in description, f"{name}: description does not say its default {shown!r}"


# --- outputs ------------------------------------------------------------------------------


def test_outputs_are_what_python_writes(action: dict[str, Any]) -> None:
    assert list(action["outputs"]) == list(OUTPUT_NAMES)
    for name, spec in action["outputs"].items():
        assert spec["value"] == f"${{{{ steps.{ENTRYPOINT_STEP}.outputs.{name} }}}}"
        assert spec["description"].strip()


# --- what Python reads --------------------------------------------------------------------


def test_the_action_reads_no_environment_outside_settings() -> None:
    """No module the action imports looks at os.environ itself; settings.py gets the mapping.

    The one use allowed is main()'s default argument, which hands os.environ to settings.
    (tests/unit/test_action.py records every key main() reads, on top of this.)
    """
    # The steps are imported when they run (action.STEPS); every one of them is looked at.
    script = (
        "import sys, nix_cache_action.action, nix_cache_action.steps.build,"
        " nix_cache_action.steps.plan, nix_cache_action.steps.aggregate;"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items()"
        " if n.startswith('nix_cache_action') and getattr(m, '__file__', None)))"
    )
    listed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    files = {Path(f) for f in listed}
    assert REPO / "src/nix_cache_action/action.py" in files
    assert REPO / "src/nix_cache_action/cli.py" not in files
    # Each command's step, which reads the mapping main() hands it, is among those looked at.
    for command in ("build", "plan", "aggregate"):
        assert REPO / f"src/nix_cache_action/steps/{command}.py" in files
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = set()
        if path.name == "action.py":
            main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
            allowed = {id(d) for d in main.args.defaults}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {
                "environ",
                "environb",
                "getenv",
                "getenvb",
                "putenv",
            }:
                assert id(node) in allowed, f"{path.name}:{node.lineno} reads the environment"


def test_context_variables_are_the_runners_not_inputs() -> None:
    assert not any(name.startswith("INPUT_") for name in CONTEXT_VARIABLES)


# --- README -------------------------------------------------------------------------------


def test_readme_documents_every_input_and_output(action: dict[str, Any]) -> None:
    reference = readme_reference()
    for name in [*action["inputs"], *action["outputs"]]:
        assert re.search(rf"^\| `{re.escape(name)}` \|", reference, re.MULTILINE), name
    for name, spec in action["inputs"].items():
        default = str(spec.get("default", "")) or "empty"
        row = re.search(rf"^\| `{re.escape(name)}` \| ([^|]*) \|", reference, re.MULTILINE)
        assert row is not None
        assert default in row.group(1).replace("`", ""), f"README's default for {name}"


def test_readme_says_what_each_feature_needs_and_what_forks_get() -> None:
    reference = readme_reference()
    assert "statuses: write" in reference
    assert "contents: read" in reference
    assert "fork" in reference
    assert "$RUNNER_TEMP/nix-cache-action/report.json" in reference
    assert "$RUNNER_TEMP/nix-cache-action/nix.log" in reference


# --- pins, timeouts, permissions ----------------------------------------------------------


@pytest.mark.parametrize(
    "path", [ACTION, *SUB_ACTIONS, *WORKFLOWS], ids=lambda p: str(p.relative_to(REPO))
)
def test_third_party_actions_are_pinned_with_the_version_in_a_comment(path: Path) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*(?:- )?uses:\s*(\S+)(.*)$", line)
        if match is None or match.group(1).startswith("./"):
            continue
        assert PINNED.match(match.group(1)), line
        assert re.match(r"^\s*# v\d", match.group(2)), f"no version comment: {line}"


# The one workflow that writes to the repository: it pushes the release tags, started by hand.
RELEASE_WORKFLOW = "release.yml"


def has_a_timeout(job: dict[str, Any], workflow: dict[str, Any]) -> bool:
    """Minutes, or a reusable workflow's number input that holds them (`${{ inputs.NAME }}`)."""
    timeout = job.get("timeout-minutes")
    match = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", str(timeout))
    if match is None:
        return type(timeout) is int
    spec = workflow["on"].get("workflow_call", {}).get("inputs", {}).get(match.group(1), {})
    return spec.get("type") == "number" and type(spec.get("default")) is int


def job_posts_statuses(job: dict[str, Any]) -> bool:
    if "uses" in job:
        # A reusable workflow of this repository's: it posts them when one of its jobs does.
        assert job["uses"].startswith("./"), f"not this repository's workflow: {job['uses']}"
        called = load(REPO / job["uses"])
        return any(
            (j.get("permissions") or {}).get("statuses") == "write" for j in called["jobs"].values()
        )
    return any(
        s.get("uses") in POSTS_STATUSES
        and str(s.get("with", {}).get("status-checks", "true")).lower() != "false"
        for s in job["steps"]
    )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_have_timeouts_and_least_privilege(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}, "top-level permissions grant nothing"
    contents = "write" if path.name == RELEASE_WORKFLOW else "read"
    for name, job in workflow["jobs"].items():
        if "uses" in job:
            # A call of a reusable workflow: GitHub refuses a timeout or a runner on it; the
            # called workflow's jobs have their own.
            assert "timeout-minutes" not in job, name
            assert "runs-on" not in job, name
            assert "steps" not in job, name
        else:
            assert has_a_timeout(job, workflow), name
        permissions = job["permissions"]
        assert permissions.get("contents") == contents
        writes = {k for k, v in permissions.items() if v == "write"} - {"contents"}
        assert writes <= {"statuses"}, f"{name} writes {writes}"
        assert ("statuses" in writes) == job_posts_statuses(job), name


def test_the_release_workflow_runs_by_hand_from_main_only() -> None:
    workflow = load(REPO / ".github/workflows" / RELEASE_WORKFLOW)
    assert set(workflow["on"]) == {"workflow_dispatch"}
    (job,) = workflow["jobs"].values()
    assert job["if"] == "github.ref == 'refs/heads/main'"
    assert [s["run"] for s in job["steps"] if "release.sh" in s.get("run", "")] == [
        "bash scripts/release.sh"
    ]


def test_the_self_test_has_a_case_that_must_fail_and_asserts_it() -> None:
    workflow = load(REPO / ".github/workflows/self-test.yml")
    (job,) = [j for j in workflow["jobs"].values() if "steps" in j]
    ours = [s for s in job["steps"] if s.get("uses") == "./"]
    failing = [s for s in ours if s.get("continue-on-error") is True]
    assert len(ours) == 2
    assert len(failing) == 1
    checks = json.dumps([s.get("env", {}) for s in job["steps"]])
    assert f"steps.{failing[0]['id']}.outcome" in checks


def test_the_self_test_runs_the_reusable_workflow_too() -> None:
    workflow = load(REPO / ".github/workflows/self-test.yml")
    calls = [j["uses"] for j in workflow["jobs"].values() if "uses" in j]
    assert calls == ["./.github/workflows/flake.yml"]
