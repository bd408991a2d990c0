"""Function `schedule`: an EventBridge schedule re-runs datasets or re-evaluates the promoted adapter.

The rule's input (or the event's ``detail``) chooses: ``{"action": "rerun", "datasets":
[...]}`` (default: the service's ``scheduled_datasets``) or ``{"action": "reevaluate"}``.
A re-delivered event (same event id) starts nothing new: run ids derive from it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mixtune.handlers.common import lambda_entry, logger, metrics, repository, traced


class ScheduleDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["rerun", "reevaluate"] = "rerun"
    datasets: list[str] | None = None


class ScheduledEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(default="manual")
    detail_type: str = Field(default="Scheduled Event", alias="detail-type")
    time: str = ""
    detail: ScheduleDetail = Field(default_factory=ScheduleDetail)
    # A rule target with a constant input may send the detail's fields at the top level.
    action: Literal["rerun", "reevaluate"] | None = None
    datasets: list[str] | None = None

    def wanted(self) -> ScheduleDetail:
        if self.action is None and self.datasets is None:
            return self.detail
        return ScheduleDetail(action=self.action or "rerun", datasets=self.datasets)


def rerun(event: ScheduledEvent, datasets: list[str]) -> list[dict[str, Any]]:
    from mixtune.errors import RunAlreadyExists
    from mixtune.handlers.execution import invoke_prepare
    from mixtune.runs.model import Lineage, Run, RunConfig, dataset_name, run_id_for_object
    from mixtune.settings import get_settings

    settings = get_settings()
    repo = repository()
    started = []
    for uri in datasets:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        run = Run(
            run_id=run_id_for_object(bucket, key, f"schedule:{event.id}"),
            dataset=dataset_name(key),
            trigger="schedule",
            config=RunConfig.service_default(settings),
            lineage=Lineage(source_uri=uri),
        )
        try:
            repo.create(run)
        except RunAlreadyExists:
            logger.info("scheduled run exists already", extra={"run_id": run.run_id})
            continue
        invoke_prepare(settings.prepare_function_name, run.run_id)
        started.append({"run_id": run.run_id, "dataset_uri": uri})
    return started


def reevaluate(event: ScheduledEvent) -> list[dict[str, Any]]:
    """Score the promoted adapter again (new eval config, new MMLU data...): a run that skips
    mixing and training (the state machine's `Route` state)."""
    from mixtune.errors import RunAlreadyExists
    from mixtune.handlers.execution import start_execution
    from mixtune.handlers.steps import JobSlot
    from mixtune.runs.model import Lineage, Run, RunStatus, run_id_for_object
    from mixtune.settings import get_settings

    settings = get_settings()
    repo = repository()
    promoted = repo.get_promoted(settings.base_model)
    if promoted is None:
        logger.info("no promoted adapter to re-evaluate", extra={"base_model": settings.base_model})
        return []
    source = repo.get(promoted.run_id)
    run = Run(
        run_id=run_id_for_object("reevaluate", promoted.run_id, event.id),
        dataset=promoted.source_dataset,
        trigger="schedule",
        stage="reevaluate",
        config=source.config,
        lineage=Lineage(
            source_uri=source.lineage.source_uri,
            input_sha256=source.lineage.input_sha256,
            prepared_uri=source.lineage.prepared_uri,
            train_uri=promoted.train_uri,
            adapter_uri=promoted.adapter_uri,
        ),
    )
    try:
        repo.create(run)
    except RunAlreadyExists:
        return []
    repo.transition(run.run_id, RunStatus.PREPARED, summary=f"re-evaluation of run {promoted.run_id}")
    train = JobSlot(kind="train", job={}, output_uri=promoted.train_uri, state="SUCCEEDED")
    arn = start_execution(
        settings.state_machine_arn, run, mode="reevaluate", train=train.model_dump(mode="json")
    )
    repo.update(run.run_id, lineage={"execution_arn": arn})
    return [{"run_id": run.run_id, "reevaluates": promoted.run_id}]


@traced
def on_schedule(event: ScheduledEvent) -> dict[str, Any]:
    from mixtune.settings import get_settings

    wanted = event.wanted()
    if wanted.action == "reevaluate":
        started = reevaluate(event)
    else:
        configured = [u.strip() for u in get_settings().scheduled_datasets.split(",") if u.strip()]
        started = rerun(event, wanted.datasets or configured)
    metrics.add_metric(name="ScheduledRuns", unit="Count", value=len(started))
    logger.info("schedule handled", extra={"action": wanted.action, "started": len(started)})
    return {"action": wanted.action, "started": started}


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return on_schedule(ScheduledEvent.model_validate(event))
