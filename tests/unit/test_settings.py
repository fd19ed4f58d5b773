from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from nix_cache_action.errors import InputError
from nix_cache_action.settings import (
    CONTEXT_VARIABLES,
    INPUT_NAMES,
    GitHubContext,
    Settings,
    commit_sha,
    input_variable,
    load_context,
    load_settings,
)

BOOLEAN_INPUTS = {
    "deep-check": ("deep_check", False),
    "summary": ("summary", True),
    "annotations": ("annotations", True),
    "status-checks": ("status_checks", True),
    "install-nix": ("install_nix", True),
    "magic-nix-cache": ("magic_nix_cache", True),
}
HEAD_SHA = "a" * 40
MERGE_SHA = "b" * 40


def load(workspace: Path, **inputs: str) -> Settings:
    """Settings for a run in `workspace`, inputs given by their action names (`deep-check`)."""
    environ = {"GITHUB_WORKSPACE": str(workspace)}
    environ.update({input_variable(name): value for name, value in inputs.items()})
    return load_settings(environ)


def load_one(workspace: Path, name: str, value: str) -> Settings:
    return load(workspace, **{name: value})


def error_of(workspace: Path, name: str, value: str) -> InputError:
    with pytest.raises(InputError) as caught:
        load_one(workspace, name, value)
    return caught.value


# --- naming ---------------------------------------------------------------------------------


def test_input_variable_keeps_dashes_like_actions_core() -> None:
    assert input_variable("deep-check") == "INPUT_DEEP-CHECK"
    assert input_variable("working-directory") == "INPUT_WORKING-DIRECTORY"
    assert input_variable("some name") == "INPUT_SOME_NAME"


def test_underscore_spelling_of_an_input_is_not_read(tmp_path: Path) -> None:
    environ = {"GITHUB_WORKSPACE": str(tmp_path), "INPUT_DEEP_CHECK": "true"}
    assert load_settings(environ).deep_check is False


def test_load_settings_reads_exactly_the_declared_names(tmp_path: Path) -> None:
    class Recording(Mapping[str, str]):
        def __init__(self, data: dict[str, str]) -> None:
            self.data = data
            self.asked: set[str] = set()

        def __getitem__(self, key: str) -> str:
            self.asked.add(key)
            return self.data[key]

        def __iter__(self) -> Iterator[str]:
            raise AssertionError("settings must ask for names, not walk the environment")

        def __len__(self) -> int:
            return len(self.data)

    environ = Recording({"GITHUB_WORKSPACE": str(tmp_path)})
    load_settings(environ)
    expected = {input_variable(name) for name in INPUT_NAMES} | set(CONTEXT_VARIABLES)
    assert environ.asked == expected


def test_declared_input_names_are_the_action_inputs() -> None:
    assert INPUT_NAMES == (
        "installables",
        "reproducibility",
        "deep-check",
        "fallback",
        "summary",
        "annotations",
        "status-checks",
        "github-token",
        "working-directory",
        "install-nix",
        "magic-nix-cache",
        "extra-conf",
        "verify-once",
        "skip-cached",
        "max-seconds",
        "max-build-seconds",
        "max-built",
        "min-hit-rate",
        "max-per-change",
        "plan",
        "leg",
    )


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [
        ("max-built", "two", "not a whole number"),
        ("max-built", "-1", "out of range"),
        ("max-seconds", "1m", "not a number"),
        ("min-hit-rate", "90", "from 0 to 1"),
    ],
)
def test_a_bad_budget_names_the_input_and_the_fix(name: str, value: str, fix: str) -> None:
    with pytest.raises(InputError, match=fix) as raised:
        load_settings({input_variable(name): value})
    assert raised.value.name == name


def test_budgets_are_read_and_empty_means_none() -> None:
    settings = load_settings(
        {input_variable("max-built"): "3", input_variable("min-hit-rate"): "0.9"}
    )
    assert (settings.budgets.max_built, settings.budgets.min_hit_rate) == (3, 0.9)
    assert (settings.budgets.max_seconds, settings.budgets.max_build_seconds) == (None, None)
    assert settings.verify_once is True


# --- defaults -------------------------------------------------------------------------------


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.installables == (".#default",)
    assert settings.reproducibility == "fail"
    assert settings.deep_check is False
    assert settings.summary is True
    assert settings.annotations is True
    assert settings.status_checks is True
    assert settings.github_token == ""
    assert settings.working_directory == tmp_path.resolve()
    assert settings.install_nix is True
    assert settings.magic_nix_cache is True
    assert settings.extra_conf == ""


@pytest.mark.parametrize("name", [name for name in INPUT_NAMES if name != "installables"])
def test_empty_and_blank_values_mean_unset(tmp_path: Path, name: str) -> None:
    default = load(tmp_path)
    assert load_one(tmp_path, name, "") == default
    assert load_one(tmp_path, name, "  \n\t ") == default


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load(tmp_path)
    with pytest.raises(AttributeError):
        settings.deep_check = True  # type: ignore[misc]


# --- installables ---------------------------------------------------------------------------


def test_installables_space_separated(tmp_path: Path) -> None:
    settings = load(tmp_path, installables=".#a .#b   github:o/r#c")
    assert settings.installables == (".#a", ".#b", "github:o/r#c")


def test_installables_newline_separated_and_trimmed(tmp_path: Path) -> None:
    settings = load(tmp_path, installables="\n  .#a\n.#b\r\n\n\t.#c  \n")
    assert settings.installables == (".#a", ".#b", ".#c")


def test_installables_duplicates_removed_keeping_order(tmp_path: Path) -> None:
    settings = load(tmp_path, installables=".#b .#a\n.#b .#c .#a")
    assert settings.installables == (".#b", ".#a", ".#c")


def test_installables_empty_value_means_the_default(tmp_path: Path) -> None:
    assert load(tmp_path, installables="").installables == (".#default",)


def test_installables_blank_value_is_an_error(tmp_path: Path) -> None:
    error = error_of(tmp_path, "installables", " \n \n ")
    assert error.name == "installables"
    assert str(error).startswith("installables: ")
    assert "remove the input to build .#default" in str(error)


def test_installables_reject_option_lookalikes(tmp_path: Path) -> None:
    error = error_of(tmp_path, "installables", ".#a --impure")
    assert error.name == "installables"
    assert "'--impure'" in str(error)
    assert "extra-conf" in str(error)


# --- reproducibility ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("fail", "fail"),
        ("warn", "warn"),
        ("off", "off"),
        ("  warn\n", "warn"),
    ],
)
def test_reproducibility_modes(tmp_path: Path, value: str, mode: str) -> None:
    assert load(tmp_path, reproducibility=value).reproducibility is mode


@pytest.mark.parametrize("value", ["fial", "Warn", "true", "fail warn"])
def test_reproducibility_misspelt(tmp_path: Path, value: str) -> None:
    error = error_of(tmp_path, "reproducibility", value)
    assert error.name == "reproducibility"
    assert str(error) == (
        f"reproducibility: {value!r} is not one of fail, warn, off; set it to one of those"
    )


# --- booleans -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOOLEAN_INPUTS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        (" true\n", True),
        ("\tFALSE ", False),
    ],
)
def test_boolean_inputs_accept_the_yaml_core_set(
    tmp_path: Path, name: str, value: str, *, expected: bool
) -> None:
    attribute, _default = BOOLEAN_INPUTS[name]
    assert getattr(load_one(tmp_path, name, value), attribute) is expected


@pytest.mark.parametrize("name", BOOLEAN_INPUTS)
def test_boolean_defaults(tmp_path: Path, name: str) -> None:
    attribute, default = BOOLEAN_INPUTS[name]
    assert getattr(load(tmp_path), attribute) is default


@pytest.mark.parametrize("name", BOOLEAN_INPUTS)
@pytest.mark.parametrize("value", ["yes", "no", "1", "0", "on", "off", "tRue", "y"])
def test_boolean_inputs_reject_other_spellings(tmp_path: Path, name: str, value: str) -> None:
    error = error_of(tmp_path, name, value)
    assert error.name == name
    assert str(error).startswith(f"{name}: {value!r} is not a boolean; set it to true or false")
    assert "true, True, TRUE, false, False, FALSE" in str(error)


# --- github-token and extra-conf ------------------------------------------------------------


def test_github_token_is_kept_but_not_shown(tmp_path: Path) -> None:
    hidden = "ghs_0123456789abcdef"
    settings = load(tmp_path, **{"github-token": f" {hidden} \n"})
    assert settings.github_token == hidden
    assert hidden not in repr(settings)
    assert "github_token=" not in repr(settings)


def test_extra_conf_is_kept_as_written_inside(tmp_path: Path) -> None:
    conf = "substituters = https://a https://b\n  # comment\nsandbox = true"
    settings = load(tmp_path, **{"extra-conf": f"\n{conf}\n\n"})
    assert settings.extra_conf == conf


def test_extra_conf_is_not_shown(tmp_path: Path) -> None:
    # nix.conf lines can hold `access-tokens`; a repr in a log must not reveal them.
    settings = load(tmp_path, **{"extra-conf": "access-tokens = github.com=ghp_secret123"})
    assert "ghp_secret123" not in repr(settings)


# --- working-directory ----------------------------------------------------------------------


def test_working_directory_relative_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    settings = load(tmp_path, **{"working-directory": " sub/dir/ "})
    assert settings.working_directory == (tmp_path / "sub" / "dir").resolve()


def test_working_directory_absolute_inside_workspace(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    settings = load(tmp_path, **{"working-directory": str(tmp_path / "sub")})
    assert settings.working_directory == (tmp_path / "sub").resolve()


def test_working_directory_dotdot_that_stays_inside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    settings = load(tmp_path, **{"working-directory": "a/../b"})
    assert settings.working_directory == (tmp_path / "b").resolve()


def test_working_directory_relative_outside_is_rejected(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (tmp_path / "outside").mkdir()
    error = error_of(workspace, "working-directory", "../outside")
    assert error.name == "working-directory"
    assert "outside the workspace" in str(error)
    assert str(error).endswith("such as '.' or 'subdir'")


def test_working_directory_absolute_outside_is_rejected(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    error = error_of(workspace, "working-directory", str(outside))
    assert error.name == "working-directory"
    assert "outside the workspace" in str(error)


def test_working_directory_sibling_with_common_prefix_is_outside(tmp_path: Path) -> None:
    # `/x/workspace-other` starts with the text `/x/workspace` but is not inside it.
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (tmp_path / "workspace-other").mkdir()
    error = error_of(workspace, "working-directory", "../workspace-other")
    assert "outside the workspace" in str(error)


def test_working_directory_symlink_out_of_workspace_is_rejected(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (tmp_path / "outside").mkdir()
    (workspace / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    error = error_of(workspace, "working-directory", "link")
    assert "outside the workspace" in str(error)


def test_working_directory_missing(tmp_path: Path) -> None:
    error = error_of(tmp_path, "working-directory", "nope")
    assert error.name == "working-directory"
    assert "not a directory" in str(error)
    assert str(error).endswith("name an existing directory inside the workspace")


def test_working_directory_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "flake.nix").write_text("{}")
    error = error_of(tmp_path, "working-directory", "flake.nix")
    assert "not a directory" in str(error)


def test_working_directory_without_workspace_uses_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    settings = load_settings({input_variable("working-directory"): "sub"})
    assert settings.working_directory == (tmp_path / "sub").resolve()
    assert settings.github.workspace is None
    with pytest.raises(InputError, match="outside the workspace"):
        load_settings({input_variable("working-directory"): ".."})


# --- GitHub context -------------------------------------------------------------------------


def test_context_outside_github_is_empty_with_default_urls() -> None:
    assert load_context({}) == GitHubContext()
    context = load_context({})
    assert context.is_github_actions is False
    assert context.api_url == "https://api.github.com"
    assert context.server_url == "https://github.com"


def test_context_on_github(tmp_path: Path) -> None:
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_REPOSITORY": "octo/flakes",
        "GITHUB_SHA": MERGE_SHA,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": "/runner/_temp/event.json",
        "GITHUB_API_URL": "https://ghe.example/api/v3",
        "GITHUB_SERVER_URL": "https://ghe.example",
        "GITHUB_RUN_ID": "12345",
        "GITHUB_STEP_SUMMARY": "/runner/_temp/summary",
        "GITHUB_OUTPUT": "/runner/_temp/output",
        "RUNNER_TEMP": "/runner/_temp",
    }
    assert set(environ) == set(CONTEXT_VARIABLES)
    context = load_settings(environ).github
    assert context == GitHubContext(
        is_github_actions=True,
        workspace=tmp_path,
        repository="octo/flakes",
        sha=MERGE_SHA,
        event_name="push",
        event_path=Path("/runner/_temp/event.json"),
        api_url="https://ghe.example/api/v3",
        server_url="https://ghe.example",
        run_id="12345",
        step_summary=Path("/runner/_temp/summary"),
        output=Path("/runner/_temp/output"),
        runner_temp=Path("/runner/_temp"),
    )


@pytest.mark.parametrize("value", ["false", "1", "TRUE", ""])
def test_only_the_exact_true_marks_github_actions(value: str) -> None:
    assert load_context({"GITHUB_ACTIONS": value}).is_github_actions is False


@pytest.mark.parametrize("value", ["flakes", "octo/", "/flakes", "a/b/c"])
def test_repository_must_be_owner_slash_name(value: str) -> None:
    with pytest.raises(InputError) as caught:
        load_context({"GITHUB_REPOSITORY": value})
    assert caught.value.name == "GITHUB_REPOSITORY"


# --- commit_sha -----------------------------------------------------------------------------


def write_event(tmp_path: Path, payload: object) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def test_commit_sha_on_push_is_github_sha(tmp_path: Path) -> None:
    # The payload of a push has no pull_request and must not even be needed.
    context = GitHubContext(event_name="push", sha=MERGE_SHA, event_path=tmp_path / "absent")
    assert commit_sha(context) == MERGE_SHA


def test_commit_sha_outside_github_is_none() -> None:
    assert commit_sha(GitHubContext()) is None


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_commit_sha_on_pull_request_is_the_head(tmp_path: Path, event: str) -> None:
    payload = {
        "action": "synchronize",
        "number": 7,
        "pull_request": {"head": {"sha": HEAD_SHA, "ref": "topic"}, "base": {"sha": "c" * 40}},
    }
    environ = {
        "GITHUB_EVENT_NAME": event,
        "GITHUB_SHA": MERGE_SHA,
        "GITHUB_EVENT_PATH": str(write_event(tmp_path, payload)),
    }
    assert commit_sha(load_context(environ)) == HEAD_SHA


def test_commit_sha_pull_request_without_event_path() -> None:
    context = GitHubContext(event_name="pull_request", sha=MERGE_SHA)
    with pytest.raises(InputError) as caught:
        commit_sha(context)
    assert caught.value.name == "GITHUB_EVENT_PATH"


def test_commit_sha_pull_request_missing_event_file(tmp_path: Path) -> None:
    context = GitHubContext(event_name="pull_request", event_path=tmp_path / "absent.json")
    with pytest.raises(InputError) as caught:
        commit_sha(context)
    assert caught.value.name == "GITHUB_EVENT_PATH"
    assert "absent.json" in str(caught.value)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b""])
def test_commit_sha_pull_request_broken_event_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(content)
    context = GitHubContext(event_name="pull_request", event_path=path)
    with pytest.raises(InputError) as caught:
        commit_sha(context)
    assert caught.value.name == "GITHUB_EVENT_PATH"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        [],
        {"pull_request": None},
        {"pull_request": {"head": {}}},
        {"pull_request": {"head": {"sha": 5}}},
        {"pull_request": {"head": {"sha": ""}}},
    ],
)
def test_commit_sha_pull_request_payload_without_head_sha(tmp_path: Path, payload: object) -> None:
    context = GitHubContext(event_name="pull_request", event_path=write_event(tmp_path, payload))
    with pytest.raises(InputError) as caught:
        commit_sha(context)
    assert caught.value.name == "GITHUB_EVENT_PATH"
    assert "pull_request.head.sha" in str(caught.value)


def test_skip_cached_needs_verify_once() -> None:
    with pytest.raises(InputError, match="needs verify-once: true") as raised:
        load_settings(
            {input_variable("skip-cached"): "true", input_variable("verify-once"): "false"}
        )
    assert raised.value.name == "skip-cached"
    assert load_settings({input_variable("skip-cached"): "true"}).skip_cached is True
