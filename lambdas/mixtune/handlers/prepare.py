"""Function `prepare`: a dataset arrived (S3 event) or was requested (API, schedule).

Prepares the data, records the run, and starts the pipeline only when the data passed;
otherwise marks the run REJECTED and publishes the report's summary. Idempotent twice
over: Powertools idempotency on the request (bucket, key and version/etag), and a run id
derived from the same triple, used as the execution name.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field

from mixtune.handlers.common import lambda_entry, logger, metrics, repository, traced

# ---- events --------------------------------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class S3Object(_Lenient):
    bucket: str
    key: str
    version: str = Field(description="version id where the bucket is versioned, else the etag")
    size: int | None = None


class _NotificationBucket(_Lenient):
    name: str


class _NotificationObject(_Lenient):
    key: str
    etag: str = Field(default="", alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")
    size: int | None = None


class _NotificationS3(_Lenient):
    bucket: _NotificationBucket
    object: _NotificationObject


class _NotificationRecord(_Lenient):
    event_source: str = Field(default="aws:s3", alias="eventSource")
    event_name: str = Field(default="ObjectCreated:Put", alias="eventName")
    s3: _NotificationS3


class S3Notification(_Lenient):
    """The direct S3 -> Lambda notification (keys arrive URL-encoded)."""

    records: list[_NotificationRecord] = Field(alias="Records")

    def objects(self) -> list[S3Object]:
        return [
            S3Object(
                bucket=r.s3.bucket.name,
                key=unquote_plus(r.s3.object.key),
                version=r.s3.object.version_id or r.s3.object.etag,
                size=r.s3.object.size,
            )
            for r in self.records
            if r.event_source == "aws:s3" and r.event_name.startswith("ObjectCreated")
        ]


class _BridgeObject(_Lenient):
    key: str
    etag: str = ""
    version_id: str | None = Field(default=None, alias="version-id")
    size: int | None = None


class _BridgeDetail(_Lenient):
    bucket: _NotificationBucket
    object: _BridgeObject


class S3EventBridgeEvent(_Lenient):
    """The EventBridge "Object Created" event of S3 (keys arrive plain)."""

    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    detail: _BridgeDetail

    def objects(self) -> list[S3Object]:
        o = self.detail.object
        return [
            S3Object(bucket=self.detail.bucket.name, key=o.key, version=o.version_id or o.etag, size=o.size)
        ]


class RunRequestEvent(_Lenient):
    """Sent by the API and the schedule for a run they created PENDING."""

    run_request: _RunRef


class _RunRef(_Lenient):
    run_id: str


RunRequestEvent.model_rebuild()


class PrepareRequest(BaseModel):
    """One unit of work; its JSON is the idempotency key."""

    run_id: str
    source_uri: str
    dataset: str
    from_event: bool


def requests_from_event(event: dict[str, Any]) -> list[PrepareRequest]:
    from mixtune.runs.model import dataset_name, run_id_for_object

    if "run_request" in event:
        ref = RunRequestEvent.model_validate(event).run_request
        return [PrepareRequest(run_id=ref.run_id, source_uri="", dataset="", from_event=False)]
    parsed: S3Notification | S3EventBridgeEvent
    parsed = (
        S3Notification.model_validate(event)
        if "Records" in event
        else S3EventBridgeEvent.model_validate(event)
    )
    return [
        PrepareRequest(
            run_id=run_id_for_object(obj.bucket, obj.key, obj.version),
            source_uri=f"s3://{obj.bucket}/{obj.key}",
            dataset=dataset_name(obj.key),
            from_event=True,
        )
        for obj in parsed.objects()
        if not obj.key.endswith("/")  # folder markers
    ]


# ---- the work ------------------------------------------------------------------------------


class PrepareResult(BaseModel):
    run_id: str
    status: str
    execution_arn: str | None = None
    summary: str | None = None


def _ensure_run(request: PrepareRequest) -> Any:
    from mixtune.errors import RunAlreadyExists
    from mixtune.runs.model import Lineage, Run, RunConfig
    from mixtune.settings import get_settings

    repo = repository()
    if not request.from_event:
        return repo.get(request.run_id)
    run = Run(
        run_id=request.run_id,
        dataset=request.dataset,
        trigger="s3",
        config=RunConfig.service_default(get_settings()),
        lineage=Lineage(source_uri=request.source_uri),
    )
    try:
        return repo.create(run)
    except RunAlreadyExists:
        return repo.get(request.run_id)


def _prepare_data(run: Any) -> Any:
    """PENDING -> PREPARED or REJECTED, with the report's hashes and URIs in the lineage."""
    from mixtune import storage
    from mixtune.dataprep import DatasetError, PrepareOptions, prepare_dataset
    from mixtune.runs.model import RunStatus
    from mixtune.settings import get_settings

    repo = repository()
    out_uri = f"s3://{get_settings().work_bucket}/datasets/{run.run_id}/"
    try:
        report = prepare_dataset(
            run.lineage.source_uri, out_uri, PrepareOptions.model_validate(run.config.prepare)
        )
    except DatasetError as exc:
        return repo.transition(run.run_id, RunStatus.REJECTED, stage="prepare", summary=str(exc)[:1000])
    lineage = {
        "input_sha256": report.input_sha256,
        "output_sha256": dict(report.output_sha256),
        "prepared_uri": out_uri,
        "report_uri": storage.join(out_uri, "report.json"),
    }
    status = RunStatus.PREPARED if report.accepted else RunStatus.REJECTED
    metrics.add_metric(
        name="DatasetsAccepted" if report.accepted else "DatasetsRejected", unit="Count", value=1
    )
    return repo.transition(run.run_id, status, stage="prepare", summary=report.summary(), lineage=lineage)


def prepare_run(request: PrepareRequest) -> dict[str, Any]:
    from mixtune.handlers.execution import start_execution
    from mixtune.notifications import build_notification, publish
    from mixtune.runs.model import RunStatus
    from mixtune.settings import get_settings

    settings = get_settings()
    run = _ensure_run(request)
    if run.status == RunStatus.PENDING:
        run = _prepare_data(run)
        if run.status == RunStatus.REJECTED and settings.topic_arn:
            publish(build_notification(run), settings.topic_arn)
    if run.status == RunStatus.PREPARED and not run.lineage.execution_arn:
        # Also reached by a retry whose first attempt prepared the data but did not start.
        arn = start_execution(settings.state_machine_arn, run)
        run = repository().update(run.run_id, lineage={"execution_arn": arn})
    logger.info("prepare done", extra={"run_id": run.run_id, "status": run.status.value})
    return PrepareResult(
        run_id=run.run_id,
        status=run.status.value,
        execution_arn=run.lineage.execution_arn,
        summary=run.summary,
    ).model_dump(mode="json")


def _idempotent(context: Any) -> Any:
    """`prepare_run` behind Powertools idempotency (DynamoDB), built per call so the table
    name follows the current settings."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from mixtune.settings import get_settings

    config = IdempotencyConfig(expires_after_seconds=7 * 24 * 3600)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)
    persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table)
    return idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)(
        prepare_run
    )


@traced
def prepare_all(event: dict[str, Any], context: Any) -> list[dict[str, Any]]:
    run_once = _idempotent(context)
    return [run_once(request=request) for request in requests_from_event(event)]


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"results": prepare_all(event, context)}
