"""Function ``schedule``: an EventBridge schedule re-runs datasets or re-evaluates the promoted adapter.

The rule's input (or the event's ``detail``) chooses: ``{"action": "rerun", "datasets":
[...]}`` (default: the service's ``scheduled_datasets``) or ``{"action": "reevaluate"}``.
A re-delivered event (same event id) starts nothing new: run ids derive from it.
"""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.runs.schedules import ScheduleOutcome, on_schedule
from mixtune.runs.triggers import ScheduledEvent


@lambda_entry("schedule")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome: ScheduleOutcome = on_schedule(ScheduledEvent.model_validate(event))
    return outcome.model_dump(mode="json", exclude_none=True)
