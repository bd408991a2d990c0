"""What a schedule does: re-run datasets, or re-evaluate the promoted adapter."""

from __future__ import annotations

from pydantic import BaseModel

from mixtune.observability import logger, metrics, traced
from mixtune.runs.lifecycle import reevaluate_promoted, rerun_datasets
from mixtune.runs.triggers import ScheduledEvent
from mixtune.settings import get_settings


class StartedRun(BaseModel):
    run_id: str
    dataset_uri: str | None = None  # a re-run's dataset
    reevaluates: str | None = None  # a re-evaluation's source run


class ScheduleOutcome(BaseModel):
    action: str
    started: list[StartedRun]


def datasets_to_rerun(event: ScheduledEvent) -> list[str]:
    """The event's datasets, else the service's ``scheduled_datasets``."""
    configured = [uri.strip() for uri in get_settings().scheduled_datasets.split(",") if uri.strip()]
    return event.wanted().datasets or configured


@traced
def on_schedule(event: ScheduledEvent) -> ScheduleOutcome:
    wanted = event.wanted()
    started: list[StartedRun] = []
    if wanted.action == "reevaluate":
        reevaluation = reevaluate_promoted(event.id)
        if reevaluation is not None:
            run, source_run_id = reevaluation
            started.append(StartedRun(run_id=run.run_id, reevaluates=source_run_id))
    else:
        for run in rerun_datasets(event.id, datasets_to_rerun(event)):
            started.append(StartedRun(run_id=run.run_id, dataset_uri=run.lineage.source_uri))
    metrics.add_metric(name="ScheduledRuns", unit="Count", value=len(started))
    logger.info("schedule handled", extra={"action": wanted.action, "started": len(started)})
    return ScheduleOutcome(action=wanted.action, started=started)
