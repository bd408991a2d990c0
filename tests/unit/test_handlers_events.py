"""Event parsing of the prepare and schedule handlers, and the job specs of the pipeline steps."""

from __future__ import annotations

import pytest

from mixtune.backends.jobs import job_spec
from mixtune.runs import RunConfig
from mixtune.runs.triggers import ScheduledEvent, requests_from_event
from mixtune.settings import Settings
from mixtune.steps.state import JobSlot, MixOutput
from tests.support.events import eventbridge_object_created, s3_object_created


def s3_notification(key: str, etag: str = "e1", version: str | None = None) -> dict:
    return s3_object_created("raw", key, etag, version)


def test_direct_notification_and_eventbridge_shapes_give_the_same_request() -> None:
    (direct,) = requests_from_event(s3_notification("incoming/my data.jsonl"))
    (bridge,) = requests_from_event(eventbridge_object_created("raw", "incoming/my data.jsonl", "e1"))
    assert direct == bridge
    assert direct.source_uri == "s3://raw/incoming/my data.jsonl"
    assert direct.dataset == "my-data"


def test_version_id_wins_over_etag_and_changes_the_run() -> None:
    (a,) = requests_from_event(s3_notification("incoming/d.jsonl", version="v1"))
    (b,) = requests_from_event(s3_notification("incoming/d.jsonl", version="v2"))
    assert a.run_id != b.run_id


def test_folder_markers_and_removals_are_ignored() -> None:
    assert requests_from_event(s3_notification("incoming/")) == []
    removed = s3_notification("incoming/d.jsonl")
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert requests_from_event(removed) == []


def test_run_request_event() -> None:
    (request,) = requests_from_event({"run_request": {"run_id": "r-1"}})
    assert request.run_id == "r-1" and not request.source_uri  # names a run, opens none


def test_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError):
        requests_from_event({"hello": "world"})


def test_schedule_event_action_from_detail_or_top_level() -> None:
    assert (
        ScheduledEvent.model_validate({"detail-type": "Scheduled Event", "detail": {}}).wanted().action
        == "rerun"
    )
    assert ScheduledEvent.model_validate({"action": "reevaluate"}).wanted().action == "reevaluate"
    wanted = ScheduledEvent.model_validate({"detail": {"datasets": ["s3://raw/incoming/a.csv"]}}).wanted()
    assert wanted.datasets == ["s3://raw/incoming/a.csv"]


def test_job_specs_of_the_steps() -> None:
    settings = Settings(work_bucket="work", base_model="tiny")
    config = RunConfig(node_count=4, instance_type="ml.p5.48xlarge").resolved(settings)
    mix = MixOutput(
        mixed_uri="s3://work/runs/r/mix/mixed.jsonl", manifest_uri="s3://work/runs/r/mix/manifest.json"
    )
    smoke = job_spec("r", "smoke", config, settings, "s3://work/datasets/r/", mix=mix)
    assert smoke.entry_point == "train" and smoke.node_count == 1
    assert (
        "--max-steps" in smoke.arguments and smoke.arguments[smoke.arguments.index("--max-steps") + 1] == "5"
    )
    assert "--eval-data" not in smoke.arguments  # a smoke run skips the eval-loss pass
    train = job_spec("r", "train", config, settings, "s3://work/datasets/r/", mix=mix)
    assert train.node_count == 4 and "--max-steps" not in train.arguments
    assert train.arguments[train.arguments.index("--eval-data") + 1] == "s3://work/datasets/r/eval.jsonl"
    assert train.output_uri == "s3://work/runs/r/train/"
    slot = JobSlot(kind="train", job={}, output_uri=train.output_uri)
    tuned = job_spec("r", "evaluate_tuned", config, settings, "s3://work/datasets/r/", train=slot)
    assert tuned.entry_point == "evaluate"
    assert tuned.arguments[tuned.arguments.index("--adapter") + 1] == "s3://work/runs/r/train/adapter"
    baseline = job_spec("r", "evaluate_baseline", config, settings, "s3://work/datasets/r/")
    assert "--adapter" not in baseline.arguments
    assert (
        baseline.arguments[baseline.arguments.index("--domain-data") + 1] == "s3://work/datasets/r/eval.jsonl"
    )
    assert len({smoke.job_name, train.job_name, tuned.job_name, baseline.job_name}) == 4
