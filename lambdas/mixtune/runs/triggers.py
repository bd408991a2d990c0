"""The events that open runs, parsed: a dataset dropped in the raw bucket (the S3 notification,
or S3's "Object Created" event on EventBridge: Powertools' models of both), a run request
sent to the prepare function, an EventBridge schedule."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, S3Model
from pydantic import BaseModel, ConfigDict, Field

from mixtune.runs.lifecycle import PrepareRequest


class RunRef(BaseModel):
    run_id: str


class RunRequestEvent(BaseModel):
    """Sent to the prepare function by the API and the schedule for a run they opened PENDING."""

    model_config = ConfigDict(extra="forbid")

    run_request: RunRef


def requests_from_event(event: dict[str, Any]) -> list[PrepareRequest]:
    """The prepare function's event as units of work: one per created object (folder markers
    and removals are skipped), or the one run a request names."""
    if "run_request" in event:
        return [PrepareRequest(run_id=RunRequestEvent.model_validate(event).run_request.run_id)]
    objects: list[tuple[str, str, str]] = []  # (bucket, key, version id or etag)
    if "detail-type" in event:
        bridged = S3EventNotificationEventBridgeModel.model_validate(event)
        if bridged.detail_type == "Object Created":
            obj = bridged.detail.object
            objects.append((bridged.detail.bucket.name, obj.key, obj.version_id or obj.etag or ""))
    else:
        for record in S3Model.model_validate(event).Records:
            if record.eventName.startswith("ObjectCreated"):
                obj = record.s3.object
                # Notifications carry keys URL-encoded (`my+data.jsonl`); EventBridge does not.
                objects.append(
                    (record.s3.bucket.name, unquote_plus(obj.key), obj.versionId or obj.eTag or "")
                )
    return [PrepareRequest.for_object(*found) for found in objects if not found[1].endswith("/")]


class ScheduleDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["rerun", "reevaluate"] = "rerun"
    datasets: list[str] | None = None


class ScheduledEvent(BaseModel):
    """An EventBridge scheduled event, or a rule target's constant input (the detail's fields
    at the top level)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(default="manual")
    detail_type: str = Field(default="Scheduled Event", alias="detail-type")
    time: str = ""
    detail: ScheduleDetail = Field(default_factory=ScheduleDetail)
    action: Literal["rerun", "reevaluate"] | None = None
    datasets: list[str] | None = None

    def wanted(self) -> ScheduleDetail:
        if self.action is None and self.datasets is None:
            return self.detail
        return ScheduleDetail(action=self.action or "rerun", datasets=self.datasets)
