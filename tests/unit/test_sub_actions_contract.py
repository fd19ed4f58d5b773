"""Contract tests on the sub-actions (plan/action.yml, aggregate/action.yml) and the reusable
workflow that strings them together (.github/workflows/flake.yml).

The same rules as the root action's (tests/unit/test_action_contract.py):

- Inputs reach Python only through `env:` of the step that runs entrypoint.py, as the
  `INPUT_<NAME>` variables settings.py reads for that step's command; what Python does not read
  goes to the installer, or decides an `if:` or fills a `with:` of another step.
- The outputs are what the step writes; every input and output is in README's reference.
- The three actions share their Python environment steps (and plan/ the Nix install steps).
- The workflow's jobs hand each other what the next one reads: the matrix, the plan's artifact,
  each leg's report, in the names the sub-actions look for by default.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from nix_cache_action.action import STEPS
from nix_cache_action.plan import Leg, Plan
from nix_cache_action.render.outputs import OUTPUT_NAMES
from nix_cache_action.settings import (
    AGGREGATE_INPUT_NAMES,
    COMMAND_VARIABLE,
    COMMANDS,
    CONTEXT_VARIABLES,
    INPUT_NAMES,
    PLAN_INPUT_NAMES,
    input_variable,
    load_aggregate_settings,
    load_plan_settings,
    load_settings,
)
from nix_cache_action.steps.aggregate import AGGREGATE_OUTPUT_NAMES
from nix_cache_action.steps.plan import MEMORY_SCOPE_VARIABLE, PLAN_FILE, PLAN_OUTPUT_NAMES
from nix_cache_action.steps.publish import (
    MEMORY_DIRECTORY,
    OUTPUT_DIRECTORY,
    RECORD_FILE,
    REPORT_FILE,
)

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
PLAN = REPO / "plan" / "action.yml"
AGGREGATE = REPO / "aggregate" / "action.yml"
SUB_ACTIONS = [PLAN, AGGREGATE]
FLAKE_WORKFLOW = REPO / ".github" / "workflows" / "flake.yml"
SELF_TEST = REPO / ".github" / "workflows" / "self-test.yml"
README = REPO / "README.md"

ENTRYPOINT_STEP = "run"
PYTHON_STEP = "python"
COMMAND = {ACTION: "build", PLAN: "plan", AGGREGATE: "aggregate"}
PYTHON_INPUTS = {ACTION: INPUT_NAMES, PLAN: PLAN_INPUT_NAMES, AGGREGATE: AGGREGATE_INPUT_NAMES}
# The variables of the entrypoint step that are not inputs: where the venv's Python is, which
# command runs, and (the plan) the name of the flake's record in the Actions cache.
OTHER_VARIABLES = {
    ACTION: {"NIX_CACHE_ACTION_PYTHON", COMMAND_VARIABLE},
    PLAN: {"NIX_CACHE_ACTION_PYTHON", COMMAND_VARIABLE, MEMORY_SCOPE_VARIABLE},
    AGGREGATE: {"NIX_CACHE_ACTION_PYTHON", COMMAND_VARIABLE},
}
# Inputs only the installer reads, by the name it reads them as (as the root action's).
INSTALLER_PASS_THROUGH = {
    PLAN: {"determinate": "determinate", "installer-summary": "summarize"},
    AGGREGATE: {},
}
# Inputs that decide an `if:` or fill a `with:` of another step, and never reach Python.
IF_AND_WITH_ONLY = {
    PLAN: {"install-nix", "magic-nix-cache", "extra-conf", "artifact-name"},
    AGGREGATE: {"plan-artifact", "leg-artifacts"},
}
# ... and the one such use in an `env:`: the lines the installer would have written, without it.
ENV_EXCEPTIONS = {("extra-conf", "Apply extra-conf without the installer")}

# Where the aggregate downloads to, and what Python reads there when `plan`/`reports` are empty.
WORK = f"${{{{ runner.temp }}}}/{OUTPUT_DIRECTORY}"
PLAN_DOWNLOAD = f"{WORK}/plan-artifact"
LEGS_DOWNLOAD = f"{WORK}/leg-artifacts"
FALLBACKS = {
    "plan": f"${{{{ inputs.plan || format('{{0}}/{OUTPUT_DIRECTORY}/plan-artifact/{PLAN_FILE}',"
    " runner.temp) }}",
    "reports": f"${{{{ inputs.reports || format('{{0}}/{OUTPUT_DIRECTORY}/leg-artifacts',"
    " runner.temp) }}",
}
MEMORY = f"{WORK}/{MEMORY_DIRECTORY}"
FLAKE_RECORD_KEY = "nix-cache-action-v1-flake-${{ steps.memory.outputs.scope }}:"

PYTHON_ENVIRONMENT_STEPS = (
    "Find Python",
    "Restore the Python environment",
    "Install the Python environment",
)
NIX_STEPS = ("Install Nix", "Apply extra-conf without the installer", "Start Magic Nix Cache")
ROOT_LOCK = "$GITHUB_ACTION_PATH/requirements.lock"
SUB_LOCK = "$GITHUB_ACTION_PATH/../requirements.lock"

# The project's own actions, as the reusable workflow uses them: checked out at the ref asked
# for (`actions-repository`, `actions-ref`) into this folder of the job's workspace.
ACTIONS_FOLDER = ".nix-cache-action"
SELF_REFERENCES = {
    f"./{ACTIONS_FOLDER}": ACTION,
    f"./{ACTIONS_FOLDER}/plan": PLAN,
    f"./{ACTIONS_FOLDER}/aggregate": AGGREGATE,
}
LEG_ARTIFACT_PREFIX = "nix-cache-action-leg-"
README_SECTIONS = {PLAN: "plan-reference", AGGREGATE: "aggregate-reference"}
INPUT_HEADER = "| Input | Default | What it does |"
OUTPUT_HEADER = "| Output | What it holds |"


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def name_of(path: Path) -> str:
    return str(path.relative_to(REPO))


def steps_of(action: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = action["runs"]["steps"]
    return steps


def step_named(action: dict[str, Any], name: str) -> dict[str, Any]:
    (step,) = [s for s in steps_of(action) if s.get("name") == name]
    return step


def entrypoint_step(action: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in steps_of(action) if "entrypoint.py" in s.get("run", "")]
    return step


def steps_using(action: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [s for s in steps_of(action) if str(s.get("uses", "")).startswith(prefix)]


def uses_input(value: Any, name: str) -> bool:
    """`inputs.NAME` in the value, and not as the start of a longer name (`inputs.plan-artifact`
    is not `inputs.plan`)."""
    return re.search(rf"\binputs\.{re.escape(name)}(?![\w-])", json.dumps(value)) is not None


def expression(text: str) -> str:
    return f"${{{{ {text} }}}}"


@pytest.fixture(scope="module")
def root() -> dict[str, Any]:
    data: dict[str, Any] = load(ACTION)
    return data


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = load(FLAKE_WORKFLOW)
    return data


sub_actions = pytest.mark.parametrize("path", SUB_ACTIONS, ids=name_of)
all_actions = pytest.mark.parametrize("path", [ACTION, *SUB_ACTIONS], ids=name_of)


# --- inputs -------------------------------------------------------------------------------


@sub_actions
def test_inputs_are_what_python_reads_the_installers_own_and_the_steps_own(path: Path) -> None:
    inputs = set(load(path)["inputs"])
    python, installer, others = (
        set(PYTHON_INPUTS[path]),
        set(INSTALLER_PASS_THROUGH[path]),
        IF_AND_WITH_ONLY[path],
    )
    assert not python & installer
    assert not python & others
    assert not installer & others
    assert inputs == python | installer | others


@all_actions
def test_the_entrypoint_step_sets_exactly_the_input_variables_its_command_reads(
    path: Path,
) -> None:
    step = entrypoint_step(load(path))
    env: dict[str, str] = step["env"]
    given = {name: value for name, value in env.items() if name.startswith("INPUT_")}
    assert set(given) == {input_variable(name) for name in PYTHON_INPUTS[path]}
    for name in PYTHON_INPUTS[path]:
        plain = expression(f"inputs.{name}")
        wanted = FALLBACKS[name] if path == AGGREGATE and name in FALLBACKS else plain
        assert given[input_variable(name)] == wanted, name
    assert set(env) - set(given) == OTHER_VARIABLES[path]
    assert env["NIX_CACHE_ACTION_PYTHON"] == expression(f"steps.{PYTHON_STEP}.outputs.python")
    assert step["id"] == ENTRYPOINT_STEP


@all_actions
def test_the_entrypoint_step_runs_its_command(path: Path) -> None:
    assert entrypoint_step(load(path))["env"][COMMAND_VARIABLE] == COMMAND[path]


class Recording(dict[str, str]):
    """An environment that notes every variable read from it."""

    def __init__(self, data: dict[str, str]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


LOADERS = {ACTION: load_settings, PLAN: load_plan_settings, AGGREGATE: load_aggregate_settings}


@all_actions
def test_the_commands_settings_read_exactly_the_inputs_its_action_sets(
    path: Path, tmp_path: Path
) -> None:
    environ = Recording({"GITHUB_WORKSPACE": str(tmp_path), "INPUT_UNDECLARED": "x"})
    LOADERS[path](environ)
    inputs = {input_variable(name) for name in PYTHON_INPUTS[path]}
    assert environ.read - set(CONTEXT_VARIABLES) == inputs


def test_every_command_has_its_action() -> None:
    assert sorted(COMMAND.values()) == sorted(COMMANDS) == sorted(STEPS)


@all_actions
def test_the_action_path_names_files_that_exist(path: Path) -> None:
    """`$GITHUB_ACTION_PATH` is the action's own folder: a sub-action's entrypoint.py and
    requirements.lock are one folder up."""
    text = json.dumps(load(path)["runs"])
    named = re.findall(r"\$GITHUB_ACTION_PATH/([\w./-]+)", text)
    assert {Path(n).name for n in named} == {"entrypoint.py", "requirements.lock"}
    for relative in named:
        assert (path.parent / relative).resolve().is_file(), relative
    assert (path.parent / named[0]).resolve().parent == REPO


@sub_actions
def test_inputs_are_used_only_in_env_with_and_if(path: Path) -> None:
    for step in steps_of(load(path)):
        for key, value in step.items():
            if key in {"env", "with", "if"}:
                continue
            assert "inputs." not in json.dumps(value), f"{step.get('name')}: inputs in {key}"


@sub_actions
def test_inputs_python_does_not_read_only_decide_an_if_or_fill_a_with(path: Path) -> None:
    action = load(path)
    python = entrypoint_step(action)
    for name in IF_AND_WITH_ONLY[path]:
        places = [
            (step.get("name"), key)
            for step in steps_of(action)
            for key, value in step.items()
            if uses_input(value, name)
        ]
        assert places, f"{name} is used nowhere"
        assert not uses_input(python, name), name
        for step_name, key in places:
            allowed = key in {"if", "with"} or (
                key == "env" and (name, step_name) in ENV_EXCEPTIONS
            )
            assert allowed, f"{name} is used in {key} of {step_name}"


@sub_actions
def test_installer_pass_through_inputs_go_only_to_the_installer(path: Path) -> None:
    action = load(path)
    installers = steps_using(action, "DeterminateSystems/nix-installer-action@")
    if not INSTALLER_PASS_THROUGH[path]:
        assert installers == []
        return
    (installer,) = installers
    for name, theirs in INSTALLER_PASS_THROUGH[path].items():
        assert installer["with"][theirs] == expression(f"inputs.{name}")
        elsewhere = [s for s in steps_of(action) if s is not installer and uses_input(s, name)]
        assert elsewhere == []


@sub_actions
def test_every_input_is_described_with_its_default(path: Path) -> None:
    for name, spec in load(path)["inputs"].items():
        description = " ".join(spec["description"].split())
        default = str(spec.get("default", ""))
        assert spec.get("required") is False, name
        assert "Default" in description, name
        shown = "github.token" if name == "github-token" else default or "empty"
        assert shown in description, f"{name}: description does not say its default {shown!r}"


@sub_actions
def test_inputs_shared_with_the_root_action_have_its_default(
    path: Path, root: dict[str, Any]
) -> None:
    """`working-directory`, `summary`, the budgets, the installer's: the same name means the same
    default, as README says ("As the root action's")."""
    inputs = load(path)["inputs"]
    shared = set(inputs) & set(root["inputs"]) - {"plan"}  # the aggregate's `plan` is a file
    assert shared
    for name in shared:
        assert str(inputs[name].get("default", "")) == str(root["inputs"][name].get("default", ""))


# --- the aggregate's downloads ------------------------------------------------------------


def test_the_aggregate_reads_what_it_downloaded_when_not_given_files() -> None:
    action = load(AGGREGATE)
    downloads = steps_using(action, "actions/download-artifact@")
    (plan,) = [s for s in downloads if "name" in s["with"]]
    (legs,) = [s for s in downloads if "pattern" in s["with"]]
    assert plan["with"]["name"] == expression("inputs.plan-artifact")
    assert plan["with"]["path"] == PLAN_DOWNLOAD
    assert plan["if"] == "inputs.plan == ''"
    assert legs["with"]["pattern"] == expression("inputs.leg-artifacts")
    assert legs["with"]["path"] == LEGS_DOWNLOAD
    # One folder per leg's artifact: the folder names the leg, and two legs' report.json files
    # do not overwrite each other.
    assert legs["with"]["merge-multiple"] is False
    assert legs["if"] == "inputs.reports == ''"
    # The step that names the record reads the same plan file as Python.
    assert step_named(action, "Name the flake's memory")["env"]["PLAN"] == FALLBACKS["plan"]


def test_the_plan_and_the_aggregate_keep_the_flakes_record_under_one_name() -> None:
    """The plan restores what the aggregate saved: the same folder (Python's memory/), keys that
    start with the same scope, and the scope the plan step hands Python for the plan file."""
    plan, aggregate = load(PLAN), load(AGGREGATE)
    assert entrypoint_step(plan)["env"][MEMORY_SCOPE_VARIABLE] == expression(
        "steps.memory.outputs.scope"
    )
    for action in (plan, aggregate):
        assert [s["id"] for s in steps_of(action) if s.get("id") == "memory"] == ["memory"]
    (restore,) = steps_using(plan, "actions/cache/restore@")
    (save,) = steps_using(aggregate, "actions/cache/save@")
    for step in (restore, save, *steps_using(aggregate, "actions/cache/restore@")):
        assert step["with"]["path"] == MEMORY
        keys = [step["with"]["key"], *step["with"].get("restore-keys", "").splitlines()]
        assert all(key.startswith(FLAKE_RECORD_KEY) for key in keys), keys
    assert save["if"].startswith("always()")
    assert "${{ github.run_id }}" in save["with"]["key"]


# --- outputs ------------------------------------------------------------------------------


def test_the_plans_outputs_are_what_python_writes_and_the_artifacts_name() -> None:
    outputs = load(PLAN)["outputs"]
    assert list(outputs) == [*PLAN_OUTPUT_NAMES, "artifact-name"]
    for name in PLAN_OUTPUT_NAMES:
        assert outputs[name]["value"] == expression(f"steps.{ENTRYPOINT_STEP}.outputs.{name}")
    assert outputs["artifact-name"]["value"] == expression("inputs.artifact-name")
    assert all(spec["description"].strip() for spec in outputs.values())


def test_the_aggregates_outputs_are_what_python_writes() -> None:
    outputs = load(AGGREGATE)["outputs"]
    names = [*OUTPUT_NAMES, *AGGREGATE_OUTPUT_NAMES]
    assert len(set(names)) == len(names)
    assert sorted(outputs) == sorted(names)
    for name, spec in outputs.items():
        assert spec["value"] == expression(f"steps.{ENTRYPOINT_STEP}.outputs.{name}")
        assert spec["description"].strip()


# --- README -------------------------------------------------------------------------------


def readme_section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(f"<!-- {name}:start -->"), text.index(f"<!-- {name}:end -->")
    return text[start:end]


def table_rows(section: str, header: str) -> dict[str, list[str]]:
    """The rows of the table under `header`: the first cell's name -> the other cells."""
    lines = section.splitlines()
    start = lines.index(header)
    assert lines[start + 1].startswith("|---"), header
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        match = re.fullmatch(r"\| `([^`]+)` \| (.*) \|", line)
        assert match is not None, line
        assert match.group(1) not in rows, f"two rows for {match.group(1)}"
        rows[match.group(1)] = match.group(2).split(" | ")
    return rows


@sub_actions
def test_readme_documents_every_input_with_its_default(path: Path) -> None:
    inputs = load(path)["inputs"]
    rows = table_rows(readme_section(README_SECTIONS[path]), INPUT_HEADER)
    assert list(rows) == list(inputs)
    for name, spec in inputs.items():
        default = str(spec.get("default", "")) or "empty"
        assert len(rows[name]) == 2, name
        assert default in rows[name][0].replace("`", ""), f"README's default for {name}"


@sub_actions
def test_readme_documents_every_output(path: Path) -> None:
    outputs = load(path)["outputs"]
    rows = table_rows(readme_section(README_SECTIONS[path]), OUTPUT_HEADER)
    assert sorted(rows) == sorted(outputs)
    assert all(len(cells) == 1 and cells[0].strip() for cells in rows.values())


def test_readme_names_the_reusable_workflows_inputs_and_outputs(workflow: dict[str, Any]) -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    match = re.search(
        r"Its inputs are (.*?) \(see the file's `workflow_call` section\), its outputs (.*?)\.",
        text,
    )
    assert match is not None
    called = workflow["on"]["workflow_call"]
    assert re.findall(r"`([\w-]+)`", match.group(1)) == list(called["inputs"])
    assert re.findall(r"`([\w-]+)`", match.group(2)) == list(called["outputs"])


# --- steps shared with the root action ----------------------------------------------------


@sub_actions
@pytest.mark.parametrize("name", PYTHON_ENVIRONMENT_STEPS)
def test_the_python_environment_steps_are_the_root_actions(
    path: Path, name: str, root: dict[str, Any]
) -> None:
    """The same venv, under the same cache key: one job that plans and builds makes it once.
    Only the lock's path differs, one folder up."""
    ours = json.dumps(step_named(load(path), name), sort_keys=True)
    theirs = json.dumps(step_named(root, name), sort_keys=True)
    assert (ROOT_LOCK in theirs) == (SUB_LOCK in ours), name
    assert ROOT_LOCK not in ours
    assert ours.replace(SUB_LOCK, ROOT_LOCK) == theirs


@all_actions
def test_the_python_environment_is_made_before_the_entrypoint_runs(path: Path) -> None:
    action = load(path)
    steps = steps_of(action)
    positions = [steps.index(step_named(action, name)) for name in PYTHON_ENVIRONMENT_STEPS]
    assert positions == sorted(positions)
    assert positions[-1] < steps.index(entrypoint_step(action))
    assert step_named(action, PYTHON_ENVIRONMENT_STEPS[0])["id"] == PYTHON_STEP


@sub_actions
def test_the_entrypoint_is_run_as_the_root_action_runs_it(path: Path, root: dict[str, Any]) -> None:
    ours = entrypoint_step(load(path))["run"]
    assert (
        ours.replace("$GITHUB_ACTION_PATH/../", "$GITHUB_ACTION_PATH/")
        == (entrypoint_step(root)["run"])
    )
    assert ours != entrypoint_step(root)["run"]


def test_the_plan_installs_nix_as_the_root_action_does(root: dict[str, Any]) -> None:
    ours = [s for s in steps_of(load(PLAN)) if s.get("name") in NIX_STEPS]
    theirs = [s for s in steps_of(root) if s.get("name") in NIX_STEPS]
    assert len(theirs) == len(NIX_STEPS)
    assert ours == theirs


# --- the reusable workflow ----------------------------------------------------------------


def job_steps_using(job: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(prefix)]


def own_step(job: dict[str, Any], action: Path) -> dict[str, Any]:
    steps: list[dict[str, Any]] = job["steps"]
    (step,) = [s for s in steps if SELF_REFERENCES.get(s.get("uses", "")) == action]
    return step


def default_of(path: Path, name: str) -> str:
    return str(load(path)["inputs"][name].get("default", ""))


TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "boolean": (bool,)}


def test_the_reusable_workflow_is_only_called(workflow: dict[str, Any]) -> None:
    assert set(workflow["on"]) == {"workflow_call"}


def test_its_inputs_have_a_description_and_a_default_of_their_type(
    workflow: dict[str, Any],
) -> None:
    inputs = workflow["on"]["workflow_call"]["inputs"]
    assert inputs
    for name, spec in inputs.items():
        assert str(spec.get("description", "")).strip(), name
        assert "default" in spec, name
        assert spec.get("required", False) is False, name
        default = spec["default"]
        assert isinstance(default, TYPES[spec["type"]]), name
        assert spec["type"] == "boolean" or not isinstance(default, bool), name


def test_its_inputs_are_all_used_and_none_is_undeclared(workflow: dict[str, Any]) -> None:
    used = set(re.findall(r"\binputs\.([\w-]+)", json.dumps(workflow["jobs"])))
    assert used == set(workflow["on"]["workflow_call"]["inputs"])


def test_it_uses_each_sub_action_once_with_inputs_it_has(workflow: dict[str, Any]) -> None:
    used = [s["uses"] for job in workflow["jobs"].values() for s in job.get("steps", [])]
    assert sorted(u for u in used if u in SELF_REFERENCES) == sorted(SELF_REFERENCES)
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            action = SELF_REFERENCES.get(step.get("uses", ""))
            if action is not None:
                extra = set(step.get("with", {})) - set(load(action)["inputs"])
                assert extra == set(), f"{step['uses']} has no input {extra}"


def test_its_defaults_are_the_actions_own(workflow: dict[str, Any]) -> None:
    """Called with no inputs, the workflow does what the actions do by default."""
    inputs = workflow["on"]["workflow_call"]["inputs"]
    passed = 0
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            action = SELF_REFERENCES.get(step.get("uses", ""))
            for theirs, value in step.get("with", {}).items() if action else ():
                match = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", str(value))
                if match is not None and action is not None:
                    ours = str(inputs[match.group(1)]["default"])
                    assert ours == default_of(action, theirs), f"{match.group(1)} -> {theirs}"
                    passed += 1
    assert passed


def test_the_plan_job_hands_the_matrix_to_the_legs(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["plan"]
    step = own_step(job, PLAN)
    assert set(job["outputs"]) <= set(PLAN_OUTPUT_NAMES)
    for name in ("matrix", "legs"):
        assert job["outputs"][name] == expression(f"steps.{step['id']}.outputs.{name}")


def test_the_legs_are_the_plans_matrix_and_all_run_to_their_end(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["build"]
    assert job["needs"] in ("plan", ["plan"])
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert job["strategy"]["fail-fast"] is False
    assert job["runs-on"] == "${{ matrix.runner }}"


def test_an_empty_matrix_skips_the_legs(workflow: dict[str, Any]) -> None:
    """GitHub fails a job whose matrix is empty; `legs` is `0` when everything is cached and
    verified, and empty when the plan job failed."""
    condition = workflow["jobs"]["build"]["if"]
    assert "needs.plan.outputs.legs" in condition
    assert "'0'" in condition


def test_the_legs_read_only_what_a_matrix_entry_holds(workflow: dict[str, Any]) -> None:
    leg = Leg(id="x86_64-linux-1", system="x86_64-linux", runner="r", installables=(".#a",))
    plan = Plan(flake=".", systems=("x86_64-linux",), selection=(), legs=(leg,))
    full, _ = plan.matrix()
    bare, note = plan.matrix(limit=0)  # past GitHub's output limit: no installables
    assert note is not None
    read = set(re.findall(r"\bmatrix\.([\w-]+)", json.dumps(workflow["jobs"]["build"])))
    assert read
    assert read <= set(bare["include"][0]) <= set(full["include"][0])


def test_each_leg_builds_its_part_of_the_downloaded_plan(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["build"]
    (download,) = job_steps_using(job, "actions/download-artifact@")
    leg = own_step(job, ACTION)
    assert job["steps"].index(download) < job["steps"].index(leg)
    assert leg["with"]["plan"] == f"{download['with']['path']}/{PLAN_FILE}"
    assert leg["with"]["leg"] == "${{ matrix.leg }}"
    # One status for the whole flake comes from the aggregate.
    assert leg["with"]["status-checks"] == "false"


def test_the_plans_artifact_has_one_name_throughout(workflow: dict[str, Any]) -> None:
    name = default_of(PLAN, "artifact-name")
    assert name
    plan_step = own_step(workflow["jobs"]["plan"], PLAN)
    assert plan_step.get("with", {}).get("artifact-name", name) == name
    (download,) = job_steps_using(workflow["jobs"]["build"], "actions/download-artifact@")
    assert download["with"]["name"] == name
    aggregate_step = own_step(workflow["jobs"]["aggregate"], AGGREGATE)
    assert aggregate_step.get("with", {}).get("plan-artifact", name) == name
    assert default_of(AGGREGATE, "plan-artifact") == name


def test_each_leg_uploads_its_report_for_the_aggregate_even_when_it_failed(
    workflow: dict[str, Any],
) -> None:
    job = workflow["jobs"]["build"]
    (upload,) = job_steps_using(job, "actions/upload-artifact@")
    assert job["steps"].index(own_step(job, ACTION)) < job["steps"].index(upload)
    assert upload["if"] == "always()"
    name = upload["with"]["name"]
    assert name == LEG_ARTIFACT_PREFIX + "${{ matrix.leg }}"
    pattern = default_of(AGGREGATE, "leg-artifacts")
    assert pattern == LEG_ARTIFACT_PREFIX + "*"
    assert fnmatch.fnmatchcase(name.replace("${{ matrix.leg }}", "x86_64-linux-1"), pattern)
    aggregate_step = own_step(workflow["jobs"]["aggregate"], AGGREGATE)
    assert aggregate_step.get("with", {}).get("leg-artifacts", pattern) == pattern
    # What the aggregate looks for in each leg's folder: its report, and what it added to the
    # record (Python's Paths.report and Paths.record, under RUNNER_TEMP).
    assert upload["with"]["path"].splitlines() == [
        f"{WORK}/{REPORT_FILE}",
        f"{WORK}/{MEMORY_DIRECTORY}/{RECORD_FILE}",
    ]


def test_the_aggregate_counts_every_leg_also_failed_or_cancelled(
    workflow: dict[str, Any],
) -> None:
    job = workflow["jobs"]["aggregate"]
    assert job["if"] == "always()"
    assert sorted(job["needs"]) == ["build", "plan"]
    own_step(job, AGGREGATE)


def test_the_workflows_outputs_are_the_aggregates(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["aggregate"]
    step = own_step(job, AGGREGATE)
    outputs = workflow["on"]["workflow_call"]["outputs"]
    assert outputs
    for name, spec in outputs.items():
        assert spec["description"].strip(), name
        assert spec["value"] == expression(f"jobs.aggregate.outputs.{name}")
        assert job["outputs"][name] == expression(f"steps.{step['id']}.outputs.{name}")
        assert name in load(AGGREGATE)["outputs"]


def test_the_self_test_calls_the_workflow_with_inputs_it_has(workflow: dict[str, Any]) -> None:
    (call,) = [j for j in load(SELF_TEST)["jobs"].values() if "uses" in j]
    assert call["uses"] == "./.github/workflows/flake.yml"
    inputs = workflow["on"]["workflow_call"]["inputs"]
    assert call["with"]
    for name, value in call["with"].items():
        assert name in inputs, name
        assert isinstance(value, TYPES[inputs[name]["type"]]), name


def test_each_job_checks_out_the_actions_at_the_ref_asked_before_it_uses_them(
    workflow: dict[str, Any],
) -> None:
    """The actions of `actions-ref` (the self-test passes the commit under test), never another
    version's: the checkout comes first in every job that uses one."""
    inputs = workflow["on"]["workflow_call"]["inputs"]
    assert inputs["actions-ref"]["default"] == "v1"
    assert inputs["actions-repository"]["default"] == "org/nix-cache-action"
    for name, job in workflow["jobs"].items():
        steps = job.get("steps", [])
        used = [i for i, s in enumerate(steps) if s.get("uses", "") in SELF_REFERENCES]
        assert used, name
        checkouts = [
            i
            for i, s in enumerate(steps)
            if str(s.get("uses", "")).startswith("actions/checkout@")
            and s.get("with", {}).get("path") == ACTIONS_FOLDER
        ]
        assert len(checkouts) == 1, name
        (checkout,) = checkouts
        assert checkout < min(used), name
        given = steps[checkout]["with"]
        assert given["repository"] == "${{ inputs.actions-repository }}"
        assert given["ref"] == "${{ inputs.actions-ref }}"
        assert given["persist-credentials"] is False


def test_the_self_test_runs_the_actions_of_the_commit_under_test() -> None:
    (call,) = [j for j in load(SELF_TEST)["jobs"].values() if "uses" in j]
    assert call["with"]["actions-repository"] == "${{ github.repository }}"
    assert call["with"]["actions-ref"] == "${{ github.sha }}"
