"""The bearer token EKS accepts for IAM principals, built with botocore alone.

It is what ``aws eks get-token`` and aws-iam-authenticator produce: a presigned STS
``GetCallerIdentity`` URL whose signature covers the header ``x-k8s-aws-id: <cluster name>``,
base64url-encoded without padding and prefixed ``k8s-aws-v1.``. The API server replays the URL
to STS to learn who we are; the signed header binds the token to one cluster.
"""

from __future__ import annotations

import base64
from typing import Any

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest

from mixtune.backends.base import BackendPermissionError

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# The presigned URL lives 60 s (EKS itself accepts a token for up to 15 minutes after signing).
URL_EXPIRY_S = 60


def presigned_identity_url(cluster_name: str, session: Any = None) -> str:
    """The presigned STS GetCallerIdentity URL that the token wraps."""
    import boto3

    session = session or boto3.session.Session()
    sts = session.client("sts")  # regional endpoint, or AWS_ENDPOINT_URL where set
    credentials = session.get_credentials()
    if credentials is None:
        raise BackendPermissionError("no AWS credentials to sign an EKS token with")
    url = f"{sts.meta.endpoint_url.rstrip('/')}/?Action=GetCallerIdentity&Version=2011-06-15"
    request = AWSRequest(method="GET", url=url, headers={CLUSTER_ID_HEADER: cluster_name})
    signer = SigV4QueryAuth(
        credentials.get_frozen_credentials(), "sts", sts.meta.region_name, expires=URL_EXPIRY_S
    )
    signer.add_auth(request)
    return request.url


def eks_token(cluster_name: str, session: Any = None) -> str:
    """A Kubernetes bearer token for EKS cluster ``cluster_name`` (the EKS name, not an ARN)."""
    url = presigned_identity_url(cluster_name, session)
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return TOKEN_PREFIX + encoded


def decode_token(token: str) -> str:
    """The presigned URL inside a token (for diagnostics and tests)."""
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError(f"not an EKS token: it does not start with {TOKEN_PREFIX!r}")
    body = token[len(TOKEN_PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
