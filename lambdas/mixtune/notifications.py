"""Run events on SNS: one JSON message per outcome, a short human Subject, a `status` attribute.

Subscribers filter on the ``status`` message attribute (SUCCEEDED, REJECTED_BY_GATE,
INCONCLUSIVE, FAILED, REJECTED); the body carries everything needed to act without reading the
table (an INCONCLUSIVE run's ``items_needed``: eval items per set that would decide it).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from mixtune.errors import retryable_aws_errors
from mixtune.report.links import ReportLink
from mixtune.runs.model import Run, RunStatus
from mixtune.sweeps.summary import sweep_message

SUBJECT_MAX = 100  # SNS limit on email subjects

_VERBS = {
    RunStatus.SUCCEEDED: "promoted",
    RunStatus.REJECTED_BY_GATE: "rejected by the gate",
    RunStatus.INCONCLUSIVE: "inconclusive, eval sets too small",
    RunStatus.FAILED: "failed",
    RunStatus.REJECTED: "data rejected",
    RunStatus.PREPARED: "data prepared",
    RunStatus.RUNNING: "running",
    RunStatus.PENDING: "pending",
}
_SET_NAMES = {"mmlu": "MMLU"}  # eval sets as the gate names them (GateDecision.items_needed)


def items_needed_text(needed: dict[str, int]) -> str:
    """``{"mmlu": 840}`` -> ``MMLU: ~840 items``: what would decide an INCONCLUSIVE gate."""
    return ", ".join(f"{_SET_NAMES.get(name, name)}: ~{count:,} items" for name, count in needed.items())


class RunMessage(BaseModel):
    """The JSON body of a run event."""

    run_id: str
    status: RunStatus
    dataset: str
    stage: str | None = None
    summary: str | None = None
    metrics: dict[str, Any] | None = None
    deltas: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    verdict: str | None = None  # the gate's: PROMOTE, REJECT, INCONCLUSIVE
    items_needed: dict[str, int] | None = None  # INCONCLUSIVE: eval items per set that would decide
    failure: dict[str, str] | None = None
    uris: dict[str, Any] = Field(default_factory=dict)
    report: ReportLink | None = None  # the run's report page: S3 URI and presigned link
    sweep: dict[str, Any] | None = None  # a sweep: the chosen mix, each arm's figures, the cost


class Notification(BaseModel):
    subject: str = Field(max_length=SUBJECT_MAX)
    message: RunMessage
    attributes: dict[str, str]


def _subject(run: Run) -> str:
    verb = _VERBS.get(run.status, run.status.value.lower())
    detail = ""
    if run.status in (RunStatus.SUCCEEDED, RunStatus.REJECTED_BY_GATE) and run.gate:
        gain, drop = run.gate.get("domain_gain"), run.gate.get("general_drop")
        if gain is not None and drop is not None:
            detail = f" (domain {gain:+.1f} pts, MMLU drop {drop:.1f} pts)"
    elif run.status == RunStatus.INCONCLUSIVE and run.gate:
        needed = run.gate.get("items_needed") or {}
        if needed:
            detail = (
                " ("
                + ", ".join(f"{_SET_NAMES.get(k, k)}: ~{n:,} items needed" for k, n in needed.items())
                + ")"
            )
    elif run.status == RunStatus.FAILED and run.failure:
        detail = f" ({run.failure.error})"
    chosen = (sweep_message(run.metrics) or {}).get("chosen_mix")
    if chosen and run.status == RunStatus.SUCCEEDED:
        verb = f"{verb} {chosen}"
    subject = f"mixtune {run.dataset}: {verb}{detail}"
    # SNS subjects: printable ASCII, no newlines, at most 100 characters.
    subject = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in subject)
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 3] + "..."


def build_notification(run: Run, report: ReportLink | None = None) -> Notification:
    lineage = run.lineage.model_dump(exclude_none=True, exclude={"job_ids", "output_sha256"})
    uris = {k: v for k, v in lineage.items() if v}
    metrics = run.metrics or None
    message = RunMessage(
        run_id=run.run_id,
        status=run.status,
        dataset=run.dataset,
        stage=run.stage,
        summary=run.summary,
        metrics=metrics,
        deltas=(metrics or {}).get("deltas"),
        gate=run.gate,
        verdict=(run.gate or {}).get("verdict"),
        items_needed=(run.gate or {}).get("items_needed") or None,
        failure=run.failure.model_dump() if run.failure else None,
        uris=uris,
        report=report,
        sweep=sweep_message(metrics),
    )
    return Notification(
        subject=_subject(run),
        message=message,
        attributes={"status": run.status.value, "dataset": run.dataset},
    )


def publish(notification: Notification, topic_arn: str, client: Any | None = None) -> str:
    """Publish to SNS; returns the message id. Throttling and 5xx raise TransientError."""
    if client is None:
        import boto3

        client = boto3.client("sns")
    with retryable_aws_errors():
        reply = client.publish(
            TopicArn=topic_arn,
            Subject=notification.subject,
            Message=json.dumps(notification.message.model_dump(mode="json")),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in notification.attributes.items()
            },
        )
    return str(reply["MessageId"])


class Announcement(BaseModel):
    """What was published: the subject, the run's status and SNS's message id."""

    subject: str
    status: RunStatus
    message_id: str | None = None


def announce(run: Run) -> Announcement:
    """Publish the run's event to the service's topic: the one place the service publishes.

    Inside Lambda the topic is a required setting (see :func:`mixtune.settings.require_settings`);
    only a caller outside Lambda with no topic configured publishes nothing.
    """
    from mixtune.observability import logger
    from mixtune.report.publish import publish_run_report
    from mixtune.settings import get_settings

    run, report = publish_run_report(run)  # every outcome announced gets its report
    notification = build_notification(run, report)
    topic = get_settings().topic_arn
    message_id = None
    if topic:
        message_id = publish(notification, topic)
    else:
        logger.warning("no topic configured; nothing published", extra={"run_id": run.run_id})
    logger.info("notified", extra={"run_id": run.run_id, "status": run.status.value})
    return Announcement(subject=notification.subject, status=run.status, message_id=message_id)
