"""Peak temporary-folder bytes and peak RSS of `mixtune prepare` through the S3 code path.

Starts a moto S3 server on 127.0.0.1 (a child process with a temp folder of its own, so that
what moto keeps is not counted), uploads a generated JSONL input of each requested size
(Banking77 rows repeated, as in ``bench_prepare.py``), then runs ``python -m mixtune prepare
s3://raw/... --out s3://work/...`` as a child with ``TMPDIR`` set to an empty folder. That
folder plays Lambda's ``/tmp``: a thread sums the sizes of the files in it, and of the files
the child holds open there without a name, every 20 ms and keeps the peak; the child writes
its own peak RSS (VmHWM) when it exits. One JSON line per run,
with the Lambda limits to compare with (``/tmp``: 512 MB by default, configurable up to
10,240 MB; memory: as configured for the function).

``--baseline DIR`` also runs the ``mixtune`` package found in ``DIR`` (e.g. an older commit's
``lambdas/``) on the same input, for a before/after comparison. Usage::

    .venv/bin/python benchmarks/bench_prepare_s3.py --sizes-mb 100,1000 --workdir /var/tmp
    .venv/bin/python benchmarks/bench_prepare_s3.py --sizes-mb 1000 --record-bytes 1000   # fewer, longer records
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
import orjson

from mixtune.local.limits import temp_bytes  # what the strict local Lambda runner measures

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prepare import DEFAULT_SOURCE, build_jsonl

BYTES_PER_RECORD = 110.5  # Banking77 rows as bench_prepare builds them
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def build_padded_jsonl(source: Path, size_bytes: int, path: Path, record_bytes: int) -> int:
    """Banking77 rows, each text padded with filler words to about ``record_bytes`` a line."""
    with open(source, newline="", encoding="utf-8") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    filler = "lorem ipsum dolor sit amet " * (record_bytes // 27 + 1)
    written = index = 0
    with open(path, "wb") as out:
        while written < size_bytes:
            text, label = rows[index % len(rows)]
            text = f"{text} #{index} {filler}"[: max(len(text), record_bytes - 40)]
            line = orjson.dumps({"text": text, "category": label}) + b"\n"
            out.write(line)
            written += len(line)
            index += 1
    return written


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the moto server did not start") from None
            time.sleep(0.2)


class PeakWatcher(threading.Thread):
    """Samples the temporary bytes of a process's folder until stopped; keeps the peak."""

    def __init__(self, folder: Path, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.folder, self.every, self.peak = folder, every, 0
        self.pid: int | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, temp_bytes(self.folder, self.pid))
            self._halt.wait(self.every)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        self.peak = max(self.peak, temp_bytes(self.folder, None))
        return self.peak


# The CLI run in a fresh interpreter that writes its own peak RSS (VmHWM: exec resets it, unlike
# wait4's ru_maxrss, which keeps the forking parent's size) to the file named in argv[1].
CHILD = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(out, "w").write(line.split()[1])
atexit.register(hwm)
# moto assembles a completed multipart object in memory; on a loaded machine that can take
# longer than botocore's 60 s read timeout (S3 itself keeps the connection alive meanwhile)
import boto3, botocore.config, mixtune.storage
mixtune.storage.s3_client = lambda: boto3.client("s3", config=botocore.config.Config(read_timeout=900))
sys.argv[0] = "mixtune"
runpy.run_module("mixtune", run_name="__main__")
"""


def run_prepare(endpoint: str, source: str, out: str, tmp: Path, package_dir: Path | None) -> dict:
    env = dict(os.environ, **CREDENTIALS, AWS_ENDPOINT_URL=endpoint, TMPDIR=str(tmp))
    env.pop("AWS_PROFILE", None)
    if package_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_dir), env.get("PYTHONPATH")]))
    watcher = PeakWatcher(tmp)
    watcher.start()
    hwm_file = tmp.parent / f"{tmp.name}.hwm"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(hwm_file), "prepare", source, "--out", out, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watcher.pid = proc.pid
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    peak_tmp = watcher.stop()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"prepare failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    report = json.loads(stdout)
    return {
        "seconds": round(seconds, 1),
        "records": report["counts"]["input"],
        "accepted": report["accepted"],
        "peak_rss_mb": round(int(hwm_file.read_text()) / 1024, 1),
        "peak_tmp_mb": round(peak_tmp / 1e6, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="100,1000", help="input sizes in MB (comma-separated)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="Banking77 train.csv")
    parser.add_argument("--workdir", type=Path, help="where inputs and the servers' folders go")
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR", help="also measure the mixtune package in DIR"
    )
    parser.add_argument(
        "--record-bytes",
        type=int,
        metavar="N",
        help="pad each record to about N bytes (fewer, longer records)",
    )
    args = parser.parse_args()
    if not args.source.is_file():
        print(f"no {args.source}: the benchmark needs ../shared/data/banking77", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mixtune-bench-s3-", dir=args.workdir) as work:
        root = Path(work)
        (root / "moto").mkdir()
        moto, endpoint = start_moto(root / "moto")
        try:
            s3 = boto3.client("s3", endpoint_url=endpoint, **_client_credentials())
            s3.create_bucket(Bucket="raw")
            s3.create_bucket(Bucket="work")
            for size_mb in (int(s) for s in args.sizes_mb.split(",")):
                path = root / f"in_{size_mb}.jsonl"
                if args.record_bytes:
                    input_bytes = build_padded_jsonl(args.source, size_mb * 10**6, path, args.record_bytes)
                else:
                    input_bytes = build_jsonl(args.source, round(size_mb * 1e6 / BYTES_PER_RECORD), path)
                key = f"incoming/in_{size_mb}.jsonl"
                s3.upload_file(str(path), "raw", key)
                path.unlink()
                variants = {"ours": None} | ({"baseline": args.baseline} if args.baseline else {})
                for name, package in variants.items():
                    tmp = root / f"tmp_{size_mb}_{name}"
                    tmp.mkdir()
                    result = run_prepare(
                        endpoint, f"s3://raw/{key}", f"s3://work/{name}/{size_mb}", tmp, package
                    )
                    outputs = s3.list_objects_v2(Bucket="work", Prefix=f"{name}/{size_mb}/").get(
                        "Contents", []
                    )
                    line = {"code": name, "input_mb": round(input_bytes / 1e6, 1)} | result
                    line["output_mb"] = round(sum(item["Size"] for item in outputs) / 1e6, 1)
                    line["lambda_tmp_default_mb"] = 512
                    print(json.dumps(line), flush=True)
                    for item in outputs:
                        s3.delete_object(Bucket="work", Key=item["Key"])
                s3.delete_object(Bucket="raw", Key=key)
        finally:
            moto.terminate()
            moto.wait(timeout=30)
    return 0


def _client_credentials() -> dict:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


if __name__ == "__main__":
    sys.exit(main())
