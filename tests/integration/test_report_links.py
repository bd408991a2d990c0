"""Links to a run's report: presigned for the SNS message and ``GET /runs/{id}``, with the
expiry of the settings, signed by the report signer's key when one is configured."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from mixtune.runs import Lineage, Run, RunsRepository, RunStatus
from tests.integration.test_pipeline_api import api, call  # noqa: F401  (the fixture)

REPORT = "s3://mixtune-work/reports/support-1/report.html"


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


def _store(run_report_uri: str | None) -> Run:
    run = Run(
        run_id="support-1",
        dataset="support",
        status=RunStatus.PENDING,
        lineage=Lineage(source_uri="s3://mixtune-raw/incoming/support.jsonl", run_report_uri=run_report_uri),
    )
    return RunsRepository("runs").create(run)


def test_get_run_returns_a_presigned_link_to_its_report(api: dict[str, Any]) -> None:  # noqa: F811
    _store(REPORT)

    status, body = call("GET", "/runs/support-1")

    assert status == 200
    report = body["report"]
    assert report["uri"] == REPORT == body["lineage"]["run_report_uri"]
    url = urlparse(report["url"])
    assert url.scheme == "https" and url.path.endswith("/reports/support-1/report.html")
    query = _query(report["url"])
    assert query["X-Amz-Expires"] == ["604800"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["response-content-type"] == ["text/html; charset=utf-8"]
    expires = datetime.fromisoformat(report["expires_at"])
    assert 6.9 < (expires - datetime.now(UTC)).total_seconds() / 86400 <= 7.0


def test_a_run_without_a_report_has_no_link(api: dict[str, Any]) -> None:  # noqa: F811
    _store(None)
    status, body = call("GET", "/runs/support-1")
    assert status == 200 and body["report"] is None


def test_the_link_expiry_is_a_setting(api: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from mixtune.settings import get_settings

    monkeypatch.setenv("MIXTUNE_REPORT_LINK_EXPIRY_S", "3600")
    get_settings.cache_clear()
    _store(REPORT)

    _, body = call("GET", "/runs/support-1")

    assert _query(body["report"]["url"])["X-Amz-Expires"] == ["3600"]


def test_an_expiry_beyond_what_sigv4_allows_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from mixtune.settings import Settings

    monkeypatch.setenv("MIXTUNE_REPORT_LINK_EXPIRY_S", str(8 * 24 * 3600))
    with pytest.raises(ValidationError, match="report_link_expiry_s"):
        Settings()


def test_links_are_signed_by_the_report_signer_key_when_one_is_configured(
    api: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    from mixtune.settings import get_settings

    boto3.client("secretsmanager").create_secret(
        Name="mixtune-report-link-signer-a",
        SecretString=json.dumps({"access_key_id": "AKIAREPORTSIGNER", "secret_access_key": "s" * 40}),
    )
    monkeypatch.setenv("MIXTUNE_REPORT_SIGNER_SECRET", "mixtune-report-link-signer-a")
    get_settings.cache_clear()
    _store(REPORT)

    _, body = call("GET", "/runs/support-1")

    credential = _query(body["report"]["url"])["X-Amz-Credential"][0]
    assert credential.startswith("AKIAREPORTSIGNER/")
    assert "X-Amz-Security-Token" not in _query(body["report"]["url"])  # a user's key: no session


def test_a_link_that_cannot_be_signed_still_gives_the_report_uri(
    api: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mixtune.settings import get_settings

    monkeypatch.setenv("MIXTUNE_REPORT_SIGNER_SECRET", "mixtune-no-such-secret")
    get_settings.cache_clear()
    _store(REPORT)

    status, body = call("GET", "/runs/support-1")

    assert status == 200
    assert body["report"] == {"uri": REPORT, "url": None, "expires_at": None}


def test_a_report_that_cannot_be_written_does_not_stop_the_announcement(
    api: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mixtune.report.publish import publish_run_report
    from mixtune.settings import get_settings

    monkeypatch.setenv("MIXTUNE_WORK_BUCKET", "no-such-bucket")
    get_settings.cache_clear()
    run = _store(None)

    after, link = publish_run_report(run)

    assert link is None and after.lineage.run_report_uri is None


def test_the_sns_message_carries_the_report_link() -> None:
    from mixtune.notifications import build_notification
    from mixtune.report.links import ReportLink

    link = ReportLink(
        uri=REPORT, url="https://example/report.html?X-Amz-Signature=1", expires_at="2026-01-08"
    )
    run = Run(run_id="support-1", dataset="support", status=RunStatus.FAILED)

    body = build_notification(run, link).message.model_dump(mode="json")

    assert body["report"] == link.model_dump()
