"""The state machine definition's rules, checked on the file itself (no AWS)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mixtune.functions import FUNCTIONS
from mixtune.statemachine import expected_placeholders, load_definition, placeholders_in

TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.TooManyRequestsException",
    "Lambda.SdkClientException",
    "TransientError",
}


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(load_definition())


def walk(
    states: dict[str, Any], in_branch: bool | str = False
) -> Iterator[tuple[str, dict[str, Any], bool | str]]:
    """Every state, with where it is: False (top level), True (a Parallel branch) or "map" (an
    iteration of a sweep's Map, whose failures are caught inside it)."""
    for name, state in states.items():
        yield name, state, in_branch
        for branch in state.get("Branches", []):
            yield from walk(branch["States"], in_branch=True)
        if "ItemProcessor" in state:
            yield from walk(state["ItemProcessor"]["States"], in_branch="map")


def test_every_task_has_a_timeout_and_retries_transient_errors_with_backoff(asl: dict[str, Any]) -> None:
    tasks = [(n, s) for n, s, _ in walk(asl["States"]) if s["Type"] == "Task"]
    assert len(tasks) >= 15
    for name, state in tasks:
        assert state.get("TimeoutSeconds", 0) > 0, name
        retried = {
            e
            for rule in state.get("Retry", [])
            for e in rule["ErrorEquals"]
            if rule.get("BackoffRate", 1) > 1
        }
        assert retried >= TRANSIENT, name


def test_every_failure_path_reaches_mark_failed_then_a_failure_notice(asl: dict[str, Any]) -> None:
    for name, state, in_branch in walk(asl["States"]):
        if state["Type"] not in ("Task", "Parallel"):
            continue
        if in_branch == "map":
            # An arm's failure ends its iteration with the error; RecordSweep judges the sweep.
            assert {c["Next"] for c in state.get("Catch", [])} == {"ArmFailed"}, name
            continue
        if in_branch:
            assert "Catch" not in state, f"{name}: a branch error must reach the Parallel state's Catch"
            continue
        targets = {c["Next"] for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]}
        expected = {"MarkFailed": {"NotifyFailure"}, "NotifyFailure": {"PipelineFailed"}}.get(
            name, {"MarkFailed"}
        )
        assert targets == expected, name
    assert asl["States"]["MarkFailed"]["Next"] == "NotifyFailure"
    assert asl["States"]["PipelineFailed"]["Type"] == "Fail"


def test_poll_loops_wait_from_the_input_and_are_bounded(asl: dict[str, Any]) -> None:
    """Training and evaluation loops poll as the run's config says; the data jobs' loops (a
    prepare or mix too large for Lambda) as the execution input's data_jobs says, which fits
    them into what the history budget leaves (mixtune.runs.validation.data_job_polling)."""
    data_loops = ("Prepare", "Mix")
    waits = {n: s for n, s, _ in walk(asl["States"]) if s["Type"] == "Wait"}
    # prepare job, mix job, smoke, train, baseline, tuned; a sweep: smoke, baseline, each arm's train, tuned
    assert len(waits) == 10
    for name, state in waits.items():
        source = "data_jobs" if name.startswith(data_loops) else "config"
        assert state["SecondsPath"] == f"$.{source}.poll_seconds", name
    polls = {n: s for n, s, _ in walk(asl["States"]) if n.endswith("Poll")}
    assert len(polls) == 10
    for name, state in polls.items():
        source = "data_jobs" if name.startswith(data_loops) else "config"
        assert state["Parameters"]["max_polls.$"] == f"$.{source}.max_polls", name


def test_the_smoke_run_comes_before_training(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Mix"]["Next"] == "MixPlaced"
    assert states["MixPlaced"]["Default"] == "SmokeTrainLaunch"
    assert states["MixConclude"]["Next"] == "SmokeTrainLaunch"
    assert states["SmokeTrainLaunch"]["Parameters"]["kind"] == "smoke"
    assert states["SmokeTrainDone"]["Choices"][0]["Next"] == "TrainLaunch"
    assert states["TrainDone"]["Choices"][0]["Next"] == "BaselineLookup"
    assert states["Record"]["Next"] == "Gate"


def test_placeholders_are_exactly_the_state_machine_functions() -> None:
    # The asl-validator check is in tests/infrastructure/test_infra_compliance.py.
    used = placeholders_in(load_definition())
    assert {fn.asl_placeholder for fn in FUNCTIONS if fn.in_state_machine} <= used <= expected_placeholders()


def test_a_dataset_handed_to_a_prepare_job_starts_there_and_goes_on_to_mix_once_prepared(
    asl: dict[str, Any],
) -> None:
    states = asl["States"]
    (to_job,) = [c for c in states["Route"]["Choices"] if c.get("Next") == "PrepareLaunch"]
    assert {"Variable": "$.prepare.runs_on", "StringEquals": "job"} in to_job["And"]
    assert states["PrepareLaunch"]["Parameters"]["kind"] == "prepare"
    assert states["PrepareDone"]["Choices"][0]["Next"] == "PrepareConclude"
    sweep, *verdicts = states["PrepareVerdict"]["Choices"]
    assert {"Variable": "$.prepared.status", "StringEquals": "PREPARED"} in sweep["And"]
    assert sweep["Next"] == "SweepSmokeMix"  # a sweep goes on to its own path
    assert {c["StringEquals"]: c["Next"] for c in verdicts} == {"PREPARED": "Mix", "REJECTED": "DataRejected"}
    assert states["DataRejected"]["Type"] == "Succeed"
    assert states["MixPlaced"]["Choices"] == [
        {"Variable": "$.mix.runs_on", "StringEquals": "job", "Next": "MixLaunch"}
    ]
    assert states["MixLaunch"]["Parameters"]["kind"] == "mix"
    assert states["MixConclude"]["ResultPath"] == "$.mix"
