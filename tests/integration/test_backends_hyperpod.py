"""The hyperpod backend against a Kubernetes API stand-in served over TLS on 127.0.0.1.

The stand-in keeps HyperPodPyTorchJob objects, records every request, and answers with the
API server's shapes (job objects with ``status.conditions``; ``Status`` objects for errors).
The two AWS look-ups (``sagemaker:DescribeCluster``, ``eks:DescribeCluster``) are stubbed with
botocore's Stubber: moto's DescribeCluster has no EKS orchestrator.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mixtune.backends import (
    BackendError,
    BackendPermissionError,
    JobNotFoundError,
    JobRef,
    JobState,
    TransientError,
)
from mixtune.backends import hyperpod as hyperpod_module
from mixtune.backends.eks_token import decode_token
from mixtune.backends.hyperpod import HyperPodBackend
from tests.support.jobs import job_spec

HYPERPOD_CLUSTER = "ml-cluster"
EKS_CLUSTER = "ml-cluster-eks"
NAMESPACE = "team-a"
JOBS_PATH = f"/apis/sagemaker.amazonaws.com/v1/namespaces/{NAMESPACE}/hyperpodpytorchjobs"


def self_signed_cert(folder: Path) -> tuple[Path, Path, str]:
    """A certificate for 127.0.0.1 signed by itself: (cert file, key file, PEM text)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = folder / "server.crt", folder / "server.key"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file, pem


@dataclass
class KubeStandIn:
    """State of the fake API server: stored jobs, recorded requests, forced error answers."""

    endpoint: str = ""
    ca_pem: str = ""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    forced: dict[str, tuple[int, str]] = field(default_factory=dict)  # method -> (code, reason)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_conditions(self, name: str, *conditions: tuple[str, str | None, str | None]) -> None:
        stamps = [f"2026-11-28T10:0{i}:00Z" for i in range(len(conditions))]
        self.jobs[name]["status"] = {
            "conditions": [
                {
                    "type": kind,
                    "status": "True",
                    "lastTransitionTime": stamp,
                    "reason": reason,
                    "message": message,
                }
                for (kind, reason, message), stamp in zip(conditions, stamps, strict=True)
            ],
            "startTime": stamps[0],
        }


def status_object(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


def make_handler(state: KubeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with state.lock:
                state.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.command in state.forced:
                    code, reason = state.forced[self.command]
                    self._answer(code, status_object(code, reason, f"forced {reason}"))
                    return
                if self.command == "POST" and self.path == JOBS_PATH:
                    name = body["metadata"]["name"]
                    if name in state.jobs:
                        message = f'hyperpodpytorchjobs.sagemaker.amazonaws.com "{name}" already exists'
                        self._answer(409, status_object(409, "AlreadyExists", message))
                        return
                    job = {**body, "metadata": {**body["metadata"], "uid": "u-1", "resourceVersion": "1"}}
                    state.jobs[name] = job
                    self._answer(201, job)
                    return
                prefix = JOBS_PATH + "/"
                name = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
                if name not in state.jobs:
                    message = f'hyperpodpytorchjobs.sagemaker.amazonaws.com "{name}" not found'
                    self._answer(404, status_object(404, "NotFound", message))
                elif self.command == "GET":
                    self._answer(200, state.jobs[name])
                else:
                    self._answer(200, state.jobs.pop(name))

        do_GET = do_POST = do_DELETE = _handle

    return Handler


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeStandIn]:
    cert_file, key_file, pem = self_signed_cert(tmp_path)
    state = KubeStandIn(ca_pem=pem)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.endpoint = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class StubbedSession:
    """A boto3 session whose sagemaker and eks clients answer DescribeCluster from stubs."""

    def __init__(self, endpoint: str, ca_pem: str) -> None:
        self._session = boto3.session.Session(region_name="us-east-1")
        self._clients: dict[str, Any] = {}
        sagemaker = self._stub("sagemaker")
        sagemaker.add_response(
            "describe_cluster",
            {
                "ClusterArn": f"arn:aws:sagemaker:us-east-1:123456789012:cluster/{HYPERPOD_CLUSTER}",
                "ClusterName": HYPERPOD_CLUSTER,
                "ClusterStatus": "InService",
                "InstanceGroups": [],
                "Orchestrator": {
                    "Eks": {"ClusterArn": f"arn:aws:eks:us-east-1:123456789012:cluster/{EKS_CLUSTER}"}
                },
            },
            {"ClusterName": HYPERPOD_CLUSTER},
        )
        eks = self._stub("eks")
        eks.add_response(
            "describe_cluster",
            {
                "cluster": {
                    "name": EKS_CLUSTER,
                    "endpoint": endpoint,
                    "certificateAuthority": {"data": base64.b64encode(ca_pem.encode()).decode()},
                }
            },
            {"name": EKS_CLUSTER},
        )

    def _stub(self, service: str) -> Stubber:
        client = self._session.client(service)
        stubber = Stubber(client)
        stubber.activate()
        self._clients[service] = client
        return stubber

    def client(self, service: str) -> Any:
        return self._clients.get(service) or self._session.client(service)

    def get_credentials(self) -> Any:
        return self._session.get_credentials()


@pytest.fixture
def backend(kube: KubeStandIn, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> HyperPodBackend:
    monkeypatch.setattr(hyperpod_module, "_cluster_cache", {})
    session = StubbedSession(kube.endpoint, kube.ca_pem)
    return HyperPodBackend(HYPERPOD_CLUSTER, NAMESPACE, image_uri="img:1", session=session)


HYPERPOD_JOB: dict[str, Any] = {
    "job_name": "run-5-train",
    "entry_point": "train",
    "arguments": ["--output", "s3://work/runs/5/train"],
    "instance_type": "ml.g5.12xlarge",
    "node_count": 2,
    "gpus_per_node": 4,
    "output_uri": "s3://work/runs/5/train",
    "queue": "team-a-queue",
    "priority": "high",
}
spec = functools.partial(job_spec, HYPERPOD_JOB)


def signature_matches(url: str, cluster: str, secret: str = "testing") -> bool:
    """Recompute the SigV4 query signature of ``url`` with header x-k8s-aws-id = ``cluster``."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query.pop("X-Amz-Signature")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    signed = query["X-Amz-SignedHeaders"].split(";")
    values = {"host": parts.netloc, "x-k8s-aws-id": cluster}
    canonical_headers = "".join(f"{h}:{values[h]}\n" for h in signed)
    payload_hash = hashlib.sha256(b"").hexdigest()
    canonical = "\n".join(
        ["GET", parts.path or "/", canonical_query, canonical_headers, ";".join(signed), payload_hash]
    )
    _, date, region, service, _ = query["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", query["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature)


def test_submit_posts_the_job_with_a_bearer_token_for_the_eks_cluster(
    backend: HyperPodBackend, kube: KubeStandIn
) -> None:
    ref = backend.submit(spec())

    assert ref == JobRef.from_json(json.dumps(ref.to_json()))
    assert ref.data["namespace"] == NAMESPACE and ref.data["eks_cluster"] == EKS_CLUSTER
    (request,) = kube.requests
    assert (request["method"], request["path"]) == ("POST", JOBS_PATH)
    assert request["body"]["kind"] == "HyperPodPyTorchJob"
    assert request["body"]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-queue"
    token = request["headers"]["Authorization"].removeprefix("Bearer ")
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    url = decode_token(token)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert parts.netloc == "sts.us-east-1.amazonaws.com"
    assert query["Action"] == "GetCallerIdentity"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Credential"].endswith("/us-east-1/sts/aws4_request")
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert signature_matches(url, EKS_CLUSTER)
    assert not signature_matches(url, HYPERPOD_CLUSTER)


def test_status_follows_the_job_conditions(backend: HyperPodBackend, kube: KubeStandIn) -> None:
    ref = backend.submit(spec())
    assert backend.status(ref).state == JobState.PENDING  # no status yet

    kube.set_conditions(ref.id, ("Created", "JobCreated", None))
    assert backend.status(ref).state == JobState.PENDING
    kube.set_conditions(ref.id, ("Created", None, None), ("Running", "PodsRunning", None))
    assert backend.status(ref).state == JobState.RUNNING
    kube.set_conditions(ref.id, ("Created", None, None), ("Running", None, None), ("Completed", None, None))
    assert backend.status(ref).state == JobState.SUCCEEDED
    kube.set_conditions(
        ref.id, ("Created", None, None), ("Failed", "BackoffLimitExceeded", "pod rank-1 OOMKilled")
    )
    failed = backend.status(ref)
    assert (failed.state, failed.reason) == (JobState.FAILED, "BackoffLimitExceeded: pod rank-1 OOMKilled")
    assert all(r["method"] == "GET" and r["path"] == f"{JOBS_PATH}/{ref.id}" for r in kube.requests[1:])


def test_cancel_deletes_the_job(backend: HyperPodBackend, kube: KubeStandIn) -> None:
    ref = backend.submit(spec())
    backend.cancel(ref)
    assert (kube.requests[-1]["method"], kube.requests[-1]["path"]) == ("DELETE", f"{JOBS_PATH}/{ref.id}")
    assert ref.id not in kube.jobs
    backend.cancel(ref)  # already gone: fine
    with pytest.raises(JobNotFoundError, match=f"run-5-train.*namespace '{NAMESPACE}'"):
        backend.status(ref)


def test_repeated_submit_answers_409_and_returns_the_existing_job(
    backend: HyperPodBackend, kube: KubeStandIn
) -> None:
    first = backend.submit(spec())
    second = backend.submit(spec())
    assert second == first
    assert [r["method"] for r in kube.requests] == ["POST", "POST"]
    assert list(kube.jobs) == ["run-5-train"]


@pytest.mark.parametrize(
    ("method", "code", "reason", "error", "words"),
    [
        ("POST", 401, "Unauthorized", BackendPermissionError, "access entry"),
        ("POST", 403, "Forbidden", BackendPermissionError, "hyperpodpytorchjobs"),
        ("GET", 404, "NotFound", JobNotFoundError, "not found"),
        ("POST", 404, "NotFound", BackendError, "training operator installed"),
        ("POST", 500, "InternalError", TransientError, "HTTP 500"),
        ("GET", 503, "ServiceUnavailable", TransientError, "HTTP 503"),
        ("POST", 422, "Invalid", BackendError, "HTTP 422"),
    ],
)
def test_api_errors_become_clear_errors_or_retries(
    backend: HyperPodBackend, kube: KubeStandIn, method: str, code: int, reason: str, error: type, words: str
) -> None:
    kube.forced[method] = (code, reason)
    with pytest.raises(error) as raised:
        if method == "POST":
            backend.submit(spec())
        else:
            backend.status(JobRef(backend="hyperpod", id="run-5-train", data={"namespace": NAMESPACE}))
    message = str(raised.value)
    assert words in message
    assert HYPERPOD_CLUSTER in message and NAMESPACE in message
    assert type(raised.value) is error


def test_a_server_the_cluster_ca_does_not_vouch_for_is_refused(
    kube: KubeStandIn, aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hyperpod_module, "_cluster_cache", {})
    (tmp_path / "other").mkdir()
    _, _, other_ca = self_signed_cert(tmp_path / "other")
    backend = HyperPodBackend(
        HYPERPOD_CLUSTER, NAMESPACE, "img:1", session=StubbedSession(kube.endpoint, other_ca)
    )
    with pytest.raises(BackendError, match="TLS verification failed") as raised:
        backend.submit(spec())
    assert not isinstance(raised.value, TransientError)
    assert kube.requests == []
