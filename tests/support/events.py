"""Lambda events as AWS sends them (full documented shapes, not the fields we happen to read)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus


def s3_object_created(
    bucket: str,
    key: str,
    etag: str = "0123456789abcdef0123456789abcdef",
    version: str | None = None,
    size: int = 1024,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """An S3 event notification (event structure version 2.1), as S3 invokes Lambda with it.

    The key is URL-encoded, as S3 sends it.
    """
    obj: dict[str, Any] = {
        "key": quote_plus(key),
        "size": size,
        "eTag": etag,
        "sequencer": "0055AED6DCD90281E5",
    }
    if version is not None:
        obj["versionId"] = version
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-29T12:00:00.000Z",
                "eventName": event_name,
                "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "incoming-to-prepare",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def eventbridge_object_created(
    bucket: str, key: str, etag: str = "0123456789abcdef0123456789abcdef", size: int = 1024
) -> dict[str, Any]:
    """S3's "Object Created" event on EventBridge (keys arrive plain, not URL-encoded)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-29T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }
