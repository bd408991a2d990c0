"""Data steps against Lambda's limits, and the job path's throughput (issue 14).

For each input size: a moto S3 server on 127.0.0.1 (the local cloud's S3; a child process
with a temp folder of its own, so what moto keeps is not counted), a generated JSONL input
uploaded to it (Banking77 rows padded to ``--record-bytes``, as ``bench_prepare_s3.py``
builds them), then, each in a fresh child whose ``TMPDIR`` is an empty folder (Lambda's
``/tmp``):

- ``prepare``: ``mixtune prepare s3://raw/... --out s3://work/...`` (the code the prepare
  function runs);
- ``mix``: ``mixtune mix --domain s3://work/.../prepared.jsonl --spec ... --out s3://...``
  with the eval split as the decontamination set (the code the mix function runs). The spec
  is 100 % domain, so the figures are the mixer's own: reading, decontaminating and
  shuffling every prepared record through its buckets (a catalog adds its sources' bytes).

Each row gives the peak bytes in that folder (files, and files held open without a name,
sampled every 20 ms), the child's peak RSS (``VmHWM``), the seconds, and the prepare and mix
functions' sizes from ``mixtune.functions`` (memory, ephemeral storage, timeout) to compare.

``--throughput-mb N`` then prepares the same N MB file (already in S3) two more ways and
prints MB/s for each: as the pipeline's prepare job (``mixtune.backends.jobs.job_spec``'s
``prepare`` spec submitted to the ``local`` backend, which runs ``python -m
mixtune.commands.prepare`` as a detached process, polled every second as the local cloud
polls; from submit to SUCCEEDED) and as the CLI on a local copy of the file (``mixtune
prepare in.jsonl --out DIR``). The ``prepare`` row of the same size is the CLI through S3.

Usage::

    .venv/bin/python benchmarks/bench_data_limits.py --sizes-mb 100,1000 --throughput-mb 1000 --workdir /var/tmp
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prepare import DEFAULT_SOURCE
from bench_prepare_s3 import (
    CHILD,
    CREDENTIALS,
    PeakWatcher,
    _client_credentials,
    build_padded_jsonl,
    start_moto,
)

from mixtune.functions import function

MIX_SPEC = {"domain_percent": 100, "seed": 0}


def child_env(endpoint: str, tmp: Path) -> dict[str, str]:
    env = dict(os.environ, **CREDENTIALS, AWS_ENDPOINT_URL=endpoint, TMPDIR=str(tmp))
    env.pop("AWS_PROFILE", None)
    return env


def children_cpu_s() -> float:
    """CPU seconds of this process's ended, waited-for children (the one just measured, a job's
    runner and the job it waited for): on a shared machine the wall clock says little alone."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(args: list[str], env: dict[str, str], tmp: Path) -> dict:
    """``mixtune ARGS`` in a fresh child: seconds, CPU seconds, peak RSS, peak bytes under ``tmp``."""
    cpu_before = children_cpu_s()
    watcher = PeakWatcher(tmp)
    watcher.start()
    hwm_file = tmp.parent / f"{tmp.name}.hwm"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(hwm_file), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watcher.pid = proc.pid
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    peak_tmp = watcher.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"mixtune {args[0]} failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    return {
        "seconds": round(seconds, 1),
        "cpu_s": round(children_cpu_s() - cpu_before, 1),
        "peak_rss_mb": round(int(hwm_file.read_text()) / 1024, 1),
        "peak_tmp_mb": round(peak_tmp / 1e6, 1),
        "stdout": stdout.decode(),
    }


def limits_of(name: str) -> dict[str, int]:
    fn = function(name)
    return {
        "lambda_memory_mb": fn.memory_mb,
        "lambda_ephemeral_mb": fn.ephemeral_mb,
        "lambda_timeout_s": fn.timeout_s,
    }


def measure_size(s3, endpoint: str, root: Path, size_mb: int, record_bytes: int) -> tuple[str, int]:
    path = root / f"in_{size_mb}.jsonl"
    input_bytes = build_padded_jsonl(DEFAULT_SOURCE, size_mb * 10**6, path, record_bytes)
    key = f"incoming/in_{size_mb}.jsonl"
    s3.upload_file(str(path), "raw", key)
    source, prepared = f"s3://raw/{key}", f"s3://work/prepared/{size_mb}"
    base = {"input_mb": round(input_bytes / 1e6, 1)}

    tmp = root / f"tmp_prepare_{size_mb}"
    tmp.mkdir()
    result = run_measured(["prepare", source, "--out", prepared, "--json"], child_env(endpoint, tmp), tmp)
    report = json.loads(result.pop("stdout"))
    row = {"step": "prepare", **base, "records": report["counts"]["input"], **result, **limits_of("prepare")}
    print(json.dumps(row), flush=True)

    spec = root / "spec.json"
    spec.write_text(json.dumps(MIX_SPEC))
    tmp = root / f"tmp_mix_{size_mb}"
    tmp.mkdir()
    mix_args = ["mix", "--domain", f"{prepared}/prepared.jsonl", "--spec", str(spec)]
    mix_args += ["--out", f"s3://work/mix/{size_mb}", "--decontaminate", f"{prepared}/eval.jsonl"]
    result = run_measured(mix_args, child_env(endpoint, tmp), tmp)
    result.pop("stdout")
    domain = s3.head_object(Bucket="work", Key=f"prepared/{size_mb}/prepared.jsonl")["ContentLength"]
    row = {"step": "mix", **base, "domain_mb": round(domain / 1e6, 1), **result, **limits_of("mix")}
    print(json.dumps(row), flush=True)
    for prefix in (f"prepared/{size_mb}/", f"mix/{size_mb}/"):
        for item in s3.list_objects_v2(Bucket="work", Prefix=prefix).get("Contents", []):
            s3.delete_object(Bucket="work", Key=item["Key"])
    return key, input_bytes


def job_throughput(endpoint: str, root: Path, key: str, input_bytes: int) -> dict:
    """The pipeline's prepare job on the local backend, submit to SUCCEEDED, polled every second."""
    from mixtune.backends.jobs import job_spec
    from mixtune.backends.local import LocalBackend
    from mixtune.runs.model import RunConfig
    from mixtune.settings import Settings

    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
    settings = Settings(work_bucket="work", default_backend="local")
    spec = job_spec(
        "bench-0123456789abcdef",
        "prepare",
        RunConfig(),
        settings,
        "s3://work/job-prepared",
        source_uri=f"s3://raw/{key}",
    )
    backend = LocalBackend(root / "jobs")
    cpu_before = children_cpu_s()
    started = time.perf_counter()
    ref = backend.submit(spec)
    while not (status := backend.status(ref)).state.terminal:
        time.sleep(1)
    seconds = time.perf_counter() - started
    time.sleep(2)  # the runner writes the exit code and is reaped by the next status call
    backend.status(ref)
    cpu_s = round(children_cpu_s() - cpu_before, 1)
    if status.state != "SUCCEEDED":
        raise RuntimeError(f"the prepare job ended {status.state}: {status.reason}")
    return {
        "path": "job (local backend, S3 in and out)",
        "seconds": round(seconds, 1),
        "cpu_s": cpu_s,
        "mb_per_s": round(input_bytes / 1e6 / seconds, 2),
    }


def cli_throughput(s3, root: Path, key: str, input_bytes: int) -> dict:
    path = root / "cli_in.jsonl"
    s3.download_file("raw", key, str(path))
    tmp = root / "tmp_cli"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    env.pop("AWS_ENDPOINT_URL", None)
    result = run_measured(["prepare", str(path), "--out", str(root / "cli_out"), "--json"], env, tmp)
    seconds = result["seconds"]
    return {
        "path": "CLI (local file in and out)",
        "seconds": seconds,
        "cpu_s": result["cpu_s"],
        "mb_per_s": round(input_bytes / 1e6 / seconds, 2),
        "peak_rss_mb": result["peak_rss_mb"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="100,1000", help="input sizes in MB (comma-separated)")
    parser.add_argument("--record-bytes", type=int, default=1000, help="about N bytes a record")
    parser.add_argument(
        "--throughput-mb", type=int, default=0, help="job path vs CLI on this size (one of --sizes-mb)"
    )
    parser.add_argument("--workdir", type=Path, help="where inputs and the servers' folders go")
    args = parser.parse_args()
    if not DEFAULT_SOURCE.is_file():
        print(f"no {DEFAULT_SOURCE}: the benchmark needs ../shared/data/banking77", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mixtune-bench-limits-", dir=args.workdir) as work:
        root = Path(work)
        (root / "moto").mkdir()
        moto, endpoint = start_moto(root / "moto")
        try:
            s3 = boto3.client("s3", endpoint_url=endpoint, **_client_credentials())
            s3.create_bucket(Bucket="raw")
            s3.create_bucket(Bucket="work")
            for size_mb in (int(s) for s in args.sizes_mb.split(",")):
                key, input_bytes = measure_size(s3, endpoint, root, size_mb, args.record_bytes)
                if size_mb == args.throughput_mb:
                    for row in (
                        job_throughput(endpoint, root, key, input_bytes),
                        cli_throughput(s3, root, key, input_bytes),
                    ):
                        print(
                            json.dumps({"throughput_input_mb": round(input_bytes / 1e6, 1), **row}),
                            flush=True,
                        )
                s3.delete_object(Bucket="raw", Key=key)
                (root / f"in_{size_mb}.jsonl").unlink()
        finally:
            moto.terminate()
            moto.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
