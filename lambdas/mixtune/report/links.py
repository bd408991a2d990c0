"""Links to a run's report: its S3 URI and a presigned HTTPS GET of the page.

With ``MIXTUNE_REPORT_SIGNER_SECRET`` set (the CDK app sets it), links are signed with the
access key in that Secrets Manager secret, which belongs to an IAM user that may read
``reports/`` and nothing else: a link can reach nothing but a report, and it lives its full
expiry (a link signed with a role's temporary credentials dies with them, within hours).
Without it (the local cloud, tests) the function's own credentials sign.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from mixtune import storage

HTML_TYPE = "text/html; charset=utf-8"
# Secrets Manager is read at most this often per warm function (Powertools' cache).
SIGNER_CACHE_S = 300


class ReportLink(BaseModel):
    """Where a run's report is: its S3 URI and a presigned HTTPS link until ``expires_at``."""

    uri: str
    url: str | None = None
    expires_at: str | None = None


def _signing_client() -> Any:
    import boto3
    from botocore.config import Config

    from mixtune.settings import get_settings

    config = Config(signature_version="s3v4")
    secret = get_settings().report_signer_secret
    if not secret:
        return boto3.client("s3", config=config)
    from aws_lambda_powertools.utilities import parameters

    keys = parameters.get_secret(secret, transform="json", max_age=SIGNER_CACHE_S)
    return boto3.client(
        "s3",
        config=config,
        aws_access_key_id=keys["access_key_id"],
        aws_secret_access_key=keys["secret_access_key"],
    )


def report_link(uri: str | None, now: datetime | None = None) -> ReportLink | None:
    """A presigned GET of the report page at ``uri`` (None when the run has no report)."""
    from mixtune.settings import get_settings

    if not uri:
        return None
    if not storage.is_s3(uri):
        return ReportLink(uri=uri)
    expiry = get_settings().report_link_expiry_s
    bucket, key = storage.split_s3(uri)
    url = _signing_client().generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": key, "ResponseContentType": HTML_TYPE},
        ExpiresIn=expiry,
    )
    expires = (now or datetime.now(UTC)) + timedelta(seconds=expiry)
    return ReportLink(uri=uri, url=url, expires_at=expires.isoformat(timespec="seconds"))


def link_to(uri: str | None) -> ReportLink | None:
    """:func:`report_link`, or the bare URI when signing fails (logged): a link that cannot be
    signed must not fail the announcement or the API call that carries it."""
    try:
        return report_link(uri)
    except Exception:
        from mixtune.observability import logger

        logger.exception("report link not signed", extra={"uri": uri})
        return ReportLink(uri=uri) if uri else None
