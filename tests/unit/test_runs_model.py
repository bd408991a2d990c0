"""The run's status machine, ids and config (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mixtune.runs import (
    TERMINAL,
    RunConfig,
    RunStatus,
    can_transition,
    dataset_name,
    new_run_id,
    run_id_for_object,
)
from mixtune.settings import Settings


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (RunStatus.PENDING, RunStatus.PREPARED),
        (RunStatus.PENDING, RunStatus.REJECTED),
        (RunStatus.PREPARED, RunStatus.RUNNING),
        (RunStatus.RUNNING, RunStatus.RUNNING),
        (RunStatus.RUNNING, RunStatus.SUCCEEDED),
        (RunStatus.RUNNING, RunStatus.REJECTED_BY_GATE),
        (RunStatus.RUNNING, RunStatus.FAILED),
    ],
)
def test_allowed_transitions(current: RunStatus, new: RunStatus) -> None:
    assert can_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (RunStatus.SUCCEEDED, RunStatus.RUNNING),
        (RunStatus.FAILED, RunStatus.RUNNING),
        (RunStatus.REJECTED, RunStatus.PREPARED),
        (RunStatus.PENDING, RunStatus.SUCCEEDED),
        (RunStatus.PREPARED, RunStatus.SUCCEEDED),
    ],
)
def test_refused_transitions(current: RunStatus, new: RunStatus) -> None:
    assert not can_transition(current, new)


def test_terminal_statuses_lead_nowhere() -> None:
    for status in TERMINAL:
        assert not any(can_transition(status, new) for new in RunStatus)


def test_run_id_for_object_is_deterministic_and_version_sensitive() -> None:
    a = run_id_for_object("raw", "incoming/Support Tickets.v2.jsonl", "etag1")
    assert a == run_id_for_object("raw", "incoming/Support Tickets.v2.jsonl", "etag1")
    assert a != run_id_for_object("raw", "incoming/Support Tickets.v2.jsonl", "etag2")
    assert a.startswith("support-tickets-v2-")


def test_run_ids_are_valid_execution_names_and_short() -> None:
    for run_id in (new_run_id("x" * 200), run_id_for_object("b", "incoming/" + "y" * 300 + ".csv", "v")):
        assert len(run_id) <= 41
        assert all(ch.isalnum() or ch == "-" for ch in run_id)


def test_dataset_name_of_odd_names() -> None:
    assert dataset_name("s3://raw/incoming/My Data (final).csv") == "my-data-final"
    assert dataset_name("incoming/.jsonl") == "dataset"


def test_run_config_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        RunConfig.model_validate({"trian": {}})


def test_run_config_resolves_service_defaults() -> None:
    settings = Settings(
        poll_seconds=1, max_polls=9, max_runtime_s=9, base_model="tiny", default_backend="local"
    )
    resolved = RunConfig().resolved(settings)
    assert (resolved.poll_seconds, resolved.max_polls, resolved.base_model, resolved.backend) == (
        1,
        9,
        "tiny",
        "local",
    )
    explicit = RunConfig(poll_seconds=0, backend="sagemaker").resolved(settings)
    assert (explicit.poll_seconds, explicit.backend) == (0, "sagemaker")


def test_long_jobs_are_polled_less_often_so_the_poll_budget_covers_the_job_budget() -> None:
    """Issue 13, item 7: 720 polls x 60 s = 12 h could not cover a 24 h job."""
    resolved = RunConfig().resolved(Settings(poll_seconds=60, max_polls=500, max_runtime_s=24 * 3600))
    assert resolved.poll_seconds == 173  # ceil(86400 / 500)
    assert resolved.poll_seconds * resolved.max_polls >= resolved.max_runtime_s
    short = RunConfig(max_runtime_s=3600).resolved(Settings(poll_seconds=60, max_polls=500))
    assert short.poll_seconds == 60


def test_unconfigured_runs_take_the_service_default_run_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from mixtune.runs.validation import run_config_for

    monkeypatch.setenv("MIXTUNE_DEFAULT_RUN_CONFIG", '{"mix": {"domain_percent": 75}, "smoke_steps": 2}')
    monkeypatch.setenv("MIXTUNE_POLL_SECONDS", "1")
    config = run_config_for({}, Settings(platform="local", max_runtime_s=60))
    assert config.mix == {"domain_percent": 75}
    assert config.smoke_steps == 2
    assert config.poll_seconds == 1


def test_an_invalid_service_default_run_config_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from mixtune.errors import RunConfigError
    from mixtune.runs.validation import run_config_for

    monkeypatch.setenv("MIXTUNE_DEFAULT_RUN_CONFIG", '{"no_such_field": 1}')
    with pytest.raises(RunConfigError, match=r"config\.no_such_field: unknown field"):
        run_config_for({}, Settings(platform="local"))
