"""EventBridge schedule expressions as the local scheduler reads them."""

from __future__ import annotations

from datetime import datetime

import pytest

from mixtune.local.apigw import proxy_event
from mixtune.local.eventbridge import cron_matches, rate_seconds


def test_rate_expressions_in_seconds() -> None:
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(2 days)") == 172800
    assert rate_seconds("cron(0 12 * * ? *)") is None


@pytest.mark.parametrize(
    ("expression", "moment", "fires"),
    [
        ("cron(0 12 * * ? *)", datetime(2026, 3, 4, 12, 0), True),
        ("cron(0 12 * * ? *)", datetime(2026, 3, 4, 12, 1), False),
        ("cron(0/15 * * * ? *)", datetime(2026, 3, 4, 7, 45), True),
        ("cron(0/15 * * * ? *)", datetime(2026, 3, 4, 7, 50), False),
        ("cron(0 8 ? * MON-FRI *)", datetime(2026, 3, 2, 8, 0), True),  # a Monday
        ("cron(0 8 ? * MON-FRI *)", datetime(2026, 3, 1, 8, 0), False),  # a Sunday
        ("cron(30 2 1 1,7 ? 2026)", datetime(2026, 7, 1, 2, 30), True),
        ("cron(30 2 1 1,7 ? 2026)", datetime(2027, 7, 1, 2, 30), False),
    ],
)
def test_cron_expressions_match_their_minutes(expression: str, moment: datetime, fires: bool) -> None:
    assert cron_matches(expression, moment) is fires


def test_cron_with_five_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="6 fields"):
        cron_matches("cron(0 12 * * ?)", datetime(2026, 1, 1))


def test_proxy_event_has_the_rest_api_shape() -> None:
    event = proxy_event(
        "GET", "/runs/r1?status=FAILED&status=SUCCEEDED", {"Accept": "*/*"}, b"", "127.0.0.1", "1"
    )
    assert event["httpMethod"] == "GET" and event["path"] == "/runs/r1"
    assert event["queryStringParameters"] == {"status": "SUCCEEDED"}
    assert event["multiValueQueryStringParameters"] == {"status": ["FAILED", "SUCCEEDED"]}
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == "local"
