"""SNS run messages: JSON body, short human subject, status attribute."""

from __future__ import annotations

import json

from mixtune.notifications import SUBJECT_MAX, build_notification, publish
from mixtune.runs import Failure, Lineage, Run, RunStatus


def _run(**update: object) -> Run:
    base = Run(
        run_id="support-abc",
        dataset="support",
        status=RunStatus.SUCCEEDED,
        lineage=Lineage(
            source_uri="s3://raw/incoming/support.jsonl",
            manifest_uri="s3://work/runs/support-abc/mix/manifest.json",
            adapter_uri="s3://work/runs/support-abc/train/adapter",
            job_ids={"train": "j1"},
        ),
        metrics={
            "baseline": {"domain_f1": 0.2},
            "tuned": {"domain_f1": 0.6},
            "deltas": {"domain_f1_points": 40.0},
        },
        gate={"promote": True, "domain_gain": 40.0, "general_drop": 0.4, "reasons": ["ok"]},
    )
    return base.model_copy(update=update)


def test_success_message_carries_metrics_deltas_gate_and_uris() -> None:
    note = build_notification(_run())
    body = note.message.model_dump(mode="json")
    assert body["status"] == "SUCCEEDED"
    assert body["deltas"] == {"domain_f1_points": 40.0}
    assert body["gate"]["promote"] is True
    assert body["uris"]["adapter_uri"].endswith("/adapter")
    assert "job_ids" not in body["uris"]
    assert note.attributes["status"] == "SUCCEEDED"
    assert "promoted" in note.subject and "+40.0" in note.subject


def test_failure_subject_names_the_error() -> None:
    note = build_notification(
        _run(status=RunStatus.FAILED, gate=None, failure=Failure(error="JobFailedError", cause="OOM"))
    )
    assert note.subject == "mixtune support: failed (JobFailedError)"
    assert note.message.failure == {"error": "JobFailedError", "cause": "OOM"}


def test_subject_is_short_ascii_even_for_long_names() -> None:
    note = build_notification(_run(dataset="ü" * 300, status=RunStatus.REJECTED, gate=None))
    assert len(note.subject) <= SUBJECT_MAX
    assert note.subject.isascii() and "\n" not in note.subject


class _FakeSns:
    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def publish(self, **kwargs: object) -> dict[str, str]:
        self.calls.append(kwargs)
        return {"MessageId": "m-1"}


def test_publish_sends_json_body_subject_and_status_attribute() -> None:
    sns = _FakeSns()
    assert publish(build_notification(_run()), "arn:aws:sns:us-east-1:1:t", sns) == "m-1"
    (call,) = sns.calls
    assert json.loads(str(call["Message"]))["run_id"] == "support-abc"
    assert call["MessageAttributes"]["status"] == {"DataType": "String", "StringValue": "SUCCEEDED"}  # type: ignore[index]
