"""Secret-looking values in the job's Nix configuration are found and replaced everywhere."""

from __future__ import annotations

from nix_cache_action.redaction import REDACTED, Redactor, config_secrets, environment_secrets
from nix_cache_action.report import Report

TOKEN = "ghp_0123456789abcdefghij"  # noqa: S105 - a made-up one, to be found


def test_secret_names_their_values_and_their_words() -> None:
    text = (
        f"access-tokens = github.com={TOKEN} gitlab.com=glpat-secretvalue\n"
        "netrc-file = /home/runner/.netrc\n"
        "extra-cachix-auth-token = cachixtoken123\n"
        "secret-key-files = /keys/sign.sec\n"
        "substituters = https://cache.example.org\n"  # not secret
        "max-jobs = auto\n"
    )
    found = config_secrets(text)
    assert {TOKEN, "glpat-secretvalue", "/home/runner/.netrc", "cachixtoken123"} <= found
    assert "/keys/sign.sec" in found
    assert not any("cache.example.org" in s for s in found)
    assert "auto" not in found


def test_a_malformed_line_still_gives_its_value_up() -> None:
    # No `=`: Nix complains and quotes the line, token included.
    assert TOKEN in config_secrets(f"access-tokens github.com={TOKEN}")


def test_the_environment_gives_the_token_extra_conf_and_nix_config() -> None:
    environ = {
        "INPUT_GITHUB-TOKEN": " tok-abcdef ",
        "INPUT_EXTRA-CONF": f"access-tokens = github.com={TOKEN}",
        "NIX_CONFIG": "my-api-key = k3y-value",
        "OTHER": "not-a-secret",
    }
    found = environment_secrets(environ, "INPUT_GITHUB-TOKEN")
    assert {"tok-abcdef", TOKEN, "k3y-value"} <= found
    assert "not-a-secret" not in found


def test_a_report_loses_every_secret_wherever_nix_quoted_it() -> None:
    quoted = f"warning: unknown setting 'access-tokens github.com={TOKEN}'"
    report = Report(warnings=(quoted,), errors=(f"error: {TOKEN}",), notes=("fine",))
    clean = Redactor.of({TOKEN}).report(report)
    assert TOKEN not in str(clean.to_json())
    assert clean.warnings == (f"warning: unknown setting 'access-tokens github.com={REDACTED}'",)
    assert clean.notes == ("fine",)


def test_short_values_are_not_secrets() -> None:
    # Redacting "a" would rewrite every word with an a in it.
    assert Redactor.of({"a", "ab"}).text("a cab") == "a cab"
