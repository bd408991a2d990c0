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
    waits = [s for _, s, _ in walk(asl["States"]) if s["Type"] == "Wait"]
    # a single run: smoke, train, baseline, tuned; a sweep: smoke, baseline, and each arm's train, tuned
    assert len(waits) == 8
    assert all(s["SecondsPath"] == "$.config.poll_seconds" for s in waits)
    polls = [s for n, s, _ in walk(asl["States"]) if n.endswith("Poll")]
    assert len(polls) == 8
    assert all(s["Parameters"]["max_polls.$"] == "$.config.max_polls" for s in polls)


def test_the_smoke_run_comes_before_training(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Mix"]["Next"] == "SmokeTrainLaunch"
    assert states["SmokeTrainLaunch"]["Parameters"]["kind"] == "smoke"
    assert states["SmokeTrainDone"]["Choices"][0]["Next"] == "TrainLaunch"
    assert states["TrainDone"]["Choices"][0]["Next"] == "BaselineLookup"
    assert states["Record"]["Next"] == "Gate"


def test_placeholders_are_exactly_the_state_machine_functions() -> None:
    # The asl-validator check is in tests/infrastructure/test_infra_compliance.py.
    used = placeholders_in(load_definition())
    assert {fn.asl_placeholder for fn in FUNCTIONS if fn.in_state_machine} <= used <= expected_placeholders()
