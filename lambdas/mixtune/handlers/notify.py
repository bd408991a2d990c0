"""Steps `Notify*`: publish the run's outcome to the SNS topic."""

from __future__ import annotations

from typing import Any

from mixtune.handlers.common import as_transient, lambda_entry, logger, repository, traced
from mixtune.handlers.steps import RunStep


class NotifyInput(RunStep):
    event: str = "status"


@traced
def notify(step: NotifyInput) -> dict[str, Any]:
    from mixtune.notifications import build_notification, publish
    from mixtune.settings import get_settings

    run = repository().get(step.run_id)
    notification = build_notification(run)
    topic = get_settings().topic_arn
    message_id = None
    if topic:
        try:
            message_id = publish(notification, topic)
        except Exception as exc:
            raise as_transient(exc) from exc
    else:
        logger.warning("no topic configured; nothing published", extra={"run_id": step.run_id})
    logger.info("notified", extra={"run_id": step.run_id, "status": run.status.value, "event": step.event})
    return {"message_id": message_id, "subject": notification.subject, "status": run.status.value}


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return notify(NotifyInput.model_validate(event))
