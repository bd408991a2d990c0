"""The pipeline's states over time, from a Step Functions execution history.

The ``Launch``/``Wait``/``Poll``/``Done`` states of one long step show as one phase
(``TrainLaunch`` ... ``TrainDone`` is ``Train``); Choice, Pass, Succeed and Fail states take
no time and get no row. The demo's live view and the run report read the same phases.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel

_PHASE_SUFFIX = re.compile(r"(Launch|Wait|Poll|Done|Check)$")
_INSTANT_STATES = ("Choice", "Pass", "Succeed", "Fail")
_FAILURE_EVENTS = ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "LambdaFunctionTimedOut")
# A retried task that then succeeds did not fail its phase.
_SUCCESS_EVENTS = ("TaskSucceeded", "LambdaFunctionSucceeded")

# The phase of each job kind (mixtune.steps.state.JobKind): its loop's states are named
# after it in the ASL (a test checks that ``<phase>Launch`` exists for each).
JOB_PHASES = {
    "smoke": "SmokeTrain",
    "train": "Train",
    "evaluate_baseline": "EvaluateBaseline",
    "evaluate_tuned": "EvaluateTuned",
}


def phase_of(state_name: str) -> str:
    return _PHASE_SUFFIX.sub("", state_name) or state_name


class Phase(BaseModel):
    name: str
    started: datetime
    ended: datetime | None = None
    failed: bool = False
    error: str | None = None  # the error a failed phase ended with, where the history says

    def seconds(self, now: datetime) -> float:
        return ((self.ended or now) - self.started).total_seconds()

    @property
    def status(self) -> str:
        return "failed" if self.failed else ("done" if self.ended else "running")


def phases_from_history(events: list[dict[str, Any]]) -> list[Phase]:
    """Phases in order of first entry, from Step Functions execution history events."""
    phases: dict[str, Phase] = {}
    open_states: dict[str, str] = {}  # state -> phase, while entered and not exited
    for event in events:
        kind, stamp = event["type"], event["timestamp"]
        if kind.startswith(_INSTANT_STATES):
            continue
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            phase = phase_of(name)
            if phase not in phases:
                phases[phase] = Phase(name=phase, started=stamp)
            phases[phase].ended = None
            open_states[name] = phase
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            phase = open_states.pop(name, phase_of(name))
            if phase in phases:
                phases[phase].ended = stamp
        elif (kind in _FAILURE_EVENTS or kind == "ExecutionFailed") and open_states:
            last = phases[list(open_states.values())[-1]]
            last.failed = True
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), None) or {}
            last.error = details.get("error") or last.error
        elif kind in _SUCCESS_EVENTS and open_states:
            last = phases[list(open_states.values())[-1]]
            last.failed, last.error = False, None
    return list(phases.values())
