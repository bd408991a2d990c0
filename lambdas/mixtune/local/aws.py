"""How anything on this machine talks to the local cloud: its account, region, fake
credentials and boto3 clients pointed at its endpoint."""

from __future__ import annotations

from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
# Credentials moto accepts; they can reach nothing else.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def local_client(service: str, endpoint: str, region: str = REGION) -> Any:
    """A boto3 client of ``service`` on the local cloud at ``endpoint``."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
    )
