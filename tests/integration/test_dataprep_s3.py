"""prepare_dataset reading and writing S3 (moto): streamed input, outputs under a prefix."""

from __future__ import annotations

import hashlib
import json

import pytest

from mixtune.dataprep import DatasetError, PrepareOptions, PrepareReport, iter_records, prepare_dataset


def test_prepare_streams_from_s3_and_writes_outputs_under_the_prefix(bucket) -> None:
    body = "".join(
        json.dumps({"text": f"message {i}", "intent": ["a", "b"][i % 2]}) + "\n" for i in range(3000)
    )
    body += "not json\n"
    bucket.put_object(Bucket="raw", Key="incoming/support.jsonl", Body=body.encode())
    report = prepare_dataset("s3://raw/incoming/support.jsonl", "s3://raw/datasets/x1", PrepareOptions())
    assert report.counts.input == 3001 and report.counts.rejected == 1 and report.accepted
    assert report.input_sha256 == hashlib.sha256(body.encode()).hexdigest()
    keys = {item["Key"] for item in bucket.list_objects_v2(Bucket="raw", Prefix="datasets/x1/")["Contents"]}
    assert keys == {
        f"datasets/x1/{name}" for name in ("prepared.jsonl", "eval.jsonl", "rejected.jsonl", "report.json")
    }
    stored = PrepareReport.model_validate_json(
        bucket.get_object(Bucket="raw", Key="datasets/x1/report.json")["Body"].read()
    )
    assert stored.counts == report.counts
    prepared = bucket.get_object(Bucket="raw", Key="datasets/x1/prepared.jsonl")["Body"].read()
    assert hashlib.sha256(prepared).hexdigest() == report.output_sha256["prepared.jsonl"]
    assert len(prepared.splitlines()) == report.counts.train


def test_parquet_is_read_from_s3_by_ranged_requests(bucket, tmp_path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"question": [f"q{i}" for i in range(500)], "answer": ["a"] * 500}), path)
    bucket.put_object(Bucket="raw", Key="incoming/d.parquet", Body=path.read_bytes())
    items = list(iter_records("s3://raw/incoming/d.parquet"))
    assert len(items) == 500 and items[-1][0] == 500
    report = prepare_dataset("s3://raw/incoming/d.parquet", "s3://raw/datasets/p")
    assert report.counts.kept == 500 and report.input_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_s3_object_is_a_dataset_error(bucket) -> None:
    with pytest.raises(DatasetError, match=r"s3://raw/incoming/absent\.jsonl: cannot read"):
        prepare_dataset("s3://raw/incoming/absent.jsonl", "s3://raw/datasets/none")


def test_spilled_dedupe_rewrites_outputs_on_s3_like_the_in_memory_run(bucket) -> None:
    rows = [{"question": f"q{i % 40}", "answer": "a"} for i in range(120)]
    body = "".join(json.dumps(row) + "\n" for row in rows)
    bucket.put_object(Bucket="raw", Key="in/dups.jsonl", Body=body.encode())
    memory = prepare_dataset("s3://raw/in/dups.jsonl", "s3://raw/out/m", PrepareOptions())
    spilled = prepare_dataset(
        "s3://raw/in/dups.jsonl", "s3://raw/out/s", PrepareOptions(dedupe_memory_digests=4)
    )
    assert spilled.counts == memory.counts and spilled.counts.rejected == 80
    for name in ("prepared.jsonl", "eval.jsonl"):
        assert spilled.output_sha256[name] == memory.output_sha256[name]
    for name in ("prepared.jsonl", "eval.jsonl", "rejected.jsonl"):
        body_out = bucket.get_object(Bucket="raw", Key=f"out/s/{name}")["Body"].read()
        assert hashlib.sha256(body_out).hexdigest() == spilled.output_sha256[name]
    rejected = bucket.get_object(Bucket="raw", Key="out/s/rejected.jsonl")["Body"].read().splitlines()
    assert sorted(json.loads(line)["line"] for line in rejected) == list(range(41, 121))
