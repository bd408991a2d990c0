"""The state machine definition module: placeholders and their substitution."""

from __future__ import annotations

import pytest

from mixtune.functions import FUNCTIONS
from mixtune.statemachine import expected_placeholders, load_definition, substitute, substitutions


def test_asl_placeholder_without_a_value_is_an_error() -> None:
    assert substitute('{"R": "${A}"}', {"A": "arn:x"}) == '{"R": "arn:x"}'
    with pytest.raises(ValueError, match="B"):
        substitute('{"R": "${A}", "S": "${B}"}', {"A": "arn:x"})


def test_substitutions_fill_every_placeholder_of_the_definition() -> None:
    values = substitutions(lambda fn: f"arn:fn:{fn.name}", "arn:topic")
    assert set(values) == expected_placeholders()
    text = substitute(load_definition(), values)
    assert "${" not in text
    assert all(f"arn:fn:{fn.name}" in text for fn in FUNCTIONS if fn.in_state_machine)


def test_idempotent_tasks_retry_timeouts_and_dead_functions() -> None:
    """Issue 15, defect 4: States.Timeout and a dead or out-of-memory function (Lambda.Unknown,
    Runtime.ExitError) failed the run at a slow poll; launches, polls, the data jobs'
    conclusions and the baseline lookup are idempotent and retry them, and a function that ran
    past its own timeout (Sandbox.Timedout, which the local cloud now raises too; issue 14)."""
    import json

    from mixtune.statemachine import load_definition

    def tasks(states: dict) -> dict:
        found = {}
        for name, state in states.items():
            if state["Type"] == "Task":
                found[name] = state
            for branch in [
                *state.get("Branches", []),
                *([state["ItemProcessor"]] if "ItemProcessor" in state else []),
            ]:
                found.update(tasks(branch["States"]))
        return found

    every = tasks(json.loads(load_definition())["States"])
    idempotent = {
        n: s
        for n, s in every.items()
        if n.endswith(("Launch", "Poll", "Conclude")) or n.endswith("BaselineLookup")
    }
    # a single run's 15 (six loops, two conclusions, the lookup), a sweep's 9 (smoke, baseline
    # and two per arm)
    assert len(idempotent) == 24
    for name, state in idempotent.items():
        retried = {error for rule in state["Retry"] for error in rule["ErrorEquals"]}
        assert {"States.Timeout", "Lambda.Unknown", "Runtime.ExitError", "Sandbox.Timedout"} <= retried, name
