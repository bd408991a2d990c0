"""A sweep through the API and the CLI: POST /runs takes ``config.sweep``, checks it at the
door, and ``mixtune runs start --sweep`` builds that request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mixtune.cli import UsageError
from mixtune.commands.runs import start_request
from tests.integration.test_pipeline_api import RAW, api, call

__all__ = ["api"]  # the fixture, shared with the pipeline API's tests
DATASET = f"s3://{RAW}/incoming/support.jsonl"


def test_post_runs_takes_a_sweep_and_records_its_normalised_arms(api: dict[str, Any]) -> None:
    status, body = call("POST", "/runs", {"dataset_uri": DATASET, "config": {"sweep": [100, 75, 50]}})
    assert status == 202, body
    _, run = call("GET", f"/runs/{body['run_id']}")
    sweep = run["config"]["sweep"]
    assert [arm["arm"] for arm in sweep["arms"]] == ["a1", "a2", "a3"]
    assert sweep["arms"][1] == {"arm": "a2", "label": "75% domain", "mix": {"domain_percent": 75}}
    assert sweep["smoke_arm"] == "a3" and sweep["max_concurrency"] == 2


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        ([100, 100, 50], "same mix"),
        ([100, 0], "config.sweep.arms[1].mix.domain_percent"),
        ([100, 90, 80, 70, 60, 50, 40, 30, 20], "at most 8"),
    ],
)
def test_a_bad_sweep_gets_400_and_starts_nothing(api: dict[str, Any], sweep: Any, expected: str) -> None:
    status, reply = call("POST", "/runs", {"dataset_uri": DATASET, "config": {"sweep": sweep}})
    assert status == 400
    assert expected in reply["message"]
    assert api["invoked"] == []


def test_runs_start_builds_a_sweep_request_from_a_file_or_a_uri(tmp_path: Path) -> None:
    request = tmp_path / "run.json"
    request.write_text(json.dumps({"dataset_uri": DATASET, "config": {"train": {"lora_r": 8}}}))
    body = start_request(str(request), "100,75,50", 3)
    assert body["config"] == {"train": {"lora_r": 8}, "sweep": {"arms": [100, 75, 50], "max_concurrency": 3}}
    assert start_request(DATASET, "90,62.5", None)["config"] == {"sweep": {"arms": [90, 62.5]}}
    assert start_request(DATASET, None, None) == {"dataset_uri": DATASET}
    with pytest.raises(UsageError, match="comma-separated"):
        start_request(DATASET, "100,lots", None)
    with pytest.raises(UsageError, match="cannot read"):
        start_request(str(tmp_path / "absent.json"), None, None)
