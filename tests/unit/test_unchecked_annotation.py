"""A check that could not run is said on the run page, not only in the summary: a warning
annotation naming the output and the cause. Not checked by choice (reproducibility off) or
because the build failed (which has its own error) is no warning."""

from __future__ import annotations

from nix_cache_action.github.workflow_commands import AnnotationLevel
from nix_cache_action.render.annotations import annotations_for
from nix_cache_action.report import Check, Installable, Report
from nix_cache_action.reproducibility import BUILD_FAILED, REPRODUCIBILITY_OFF

DRV = "/nix/store/" + "d" * 32 + "-hello.drv"
OUT = "/nix/store/" + "o" * 32 + "-hello"
KILLED = "the rebuild's builder was killed by SIGKILL (out of memory?)"


def report_with(reason: str) -> Report:
    return Report(
        installables=(Installable(name=".#hello", drv=DRV, outputs={"out": OUT}),),
        checks=(
            Check(
                drv=DRV,
                output="out",
                path=OUT,
                verdict="not-checked",
                reason=reason,
                installable=".#hello",
            ),
        ),
    )


def test_a_check_that_could_not_run_is_a_warning_naming_the_output_and_the_cause() -> None:
    found = annotations_for(report_with(KILLED))
    warnings = [a for a in found if a.level is AnnotationLevel.WARNING]
    assert len(warnings) == 1
    (warning,) = warnings
    assert OUT in warning.message
    assert KILLED in warning.message
    assert warning.title is not None
    assert ".#hello" in warning.title
    # The run passes all the same: nothing is an error.
    assert not [a for a in found if a.level is AnnotationLevel.ERROR]


def test_not_checked_by_choice_or_after_a_failed_build_is_no_warning() -> None:
    for reason in (REPRODUCIBILITY_OFF, BUILD_FAILED):
        found = annotations_for(report_with(reason))
        assert not [a for a in found if a.level is AnnotationLevel.WARNING], reason
