"""The Lambda path: domain, catalog, sources and output all on S3 (moto)."""

from __future__ import annotations

import boto3
import orjson
import pytest
from moto import mock_aws

from mixtune import storage
from mixtune.mixing import mix_datasets
from mixtune.records import ConversationRecord


def lines(tag: str, count: int) -> bytes:
    return b"".join(
        ConversationRecord.from_turns([("user", f"{tag} {i}"), ("assistant", "ok")]).to_json_line().encode()
        + b"\n"
        for i in range(count)
    )


@pytest.mark.usefixtures("aws_env")
def test_mix_from_and_to_s3() -> None:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="work")
        s3.put_object(Bucket="work", Key="datasets/d1/prepared.jsonl", Body=lines("domain", 90))
        s3.put_object(Bucket="work", Key="general/rehearsal.jsonl", Body=lines("general", 50))
        s3.put_object(
            Bucket="work",
            Key="general/qa.jsonl",
            Body=b"".join(orjson.dumps({"q": f"question {i}", "a": "answer"}) + b"\n" for i in range(40)),
        )
        s3.put_object(
            Bucket="work",
            Key="general/catalog.yaml",
            Body=b"sources:\n"
            b"  - {name: rehearsal, category: general, uri: rehearsal.jsonl, format: prepared}\n"
            b"  - {name: qa, category: general, uri: qa.jsonl, mapping: {question: q, answer: a}}\n",
        )
        spec = {"domain_percent": 75, "categories": {"general": 100}, "seed": 1}
        manifest = mix_datasets(
            "s3://work/datasets/d1/prepared.jsonl",
            "s3://work/general/catalog.yaml",
            spec,
            "s3://work/runs/r1/mix",
        )
        assert manifest.output.records == 120
        assert manifest.source("qa").uri == "s3://work/general/qa.jsonl"
        assert [s.selected_records for s in manifest.sources] == [90, 17, 13]  # 30 split 50:40
        body = storage.read_bytes("s3://work/runs/r1/mix/mixed.jsonl")
        assert body.count(b"\n") == 120
        assert storage.sha256_of("s3://work/runs/r1/mix/mixed.jsonl") == manifest.output.sha256
        stored = orjson.loads(storage.read_bytes("s3://work/runs/r1/mix/manifest.json"))
        assert stored["output"]["sha256"] == manifest.output.sha256
