"""Load and faults on the local cloud: N concurrent drops, then N more with faults injected.

    .venv/bin/python benchmarks/bench_load_faults.py            # 8 drops per phase
    .venv/bin/python benchmarks/bench_load_faults.py --runs 4 --phases load

Phase ``load``: N datasets dropped into ``incoming/`` at once (tiny model, quick config:
1 smoke step, 3 training steps, small evaluations). Phase ``faults``: N more, and while they
run, one busy ``prepare`` worker, one ``poll_job`` worker and one training job are killed
(SIGKILL). For each phase it prints the runs created, their terminal statuses, the SNS
messages (per run), the stuck runs (not terminal once no execution of the phase is running
and nothing changed for a minute, or at the timeout: must be 0), duplicate executions (must
be 0) and the wall time. Exit code 1 when a
phase has a stuck run, a duplicate or a run without exactly one message.

A benchmark, not a test: it measures how the service holds under load on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mixtune.local.cloud import LocalCloud
from mixtune.records import ConversationRecord
from mixtune.runs.model import TERMINAL
from mixtune.sample_data import support_intents
from mixtune.settings import Settings

GENERAL = [("What is 2 + 3?", "2 + 3 = 5."), ("Name a primary colour.", "Red is a primary colour.")] * 4
QUICK = {
    "base_model": "tiny",
    "backend": "local",
    "prepare": {"eval_share": 0.2, "seed": 0},
    "mix": {"domain_percent": 80, "categories": {"general": 100}, "seed": 0},
    "train": {"max_steps": 3, "per_device_batch_size": 4, "max_length": 96, "learning_rate": 0.001},
    "evaluation": {
        "domain_limit": 8,
        "domain_task": "classification",
        "max_new_tokens": 4,
        "mmlu": False,
        "batch_size": 8,
        "max_length": 96,
    },
    "gate": {"min_domain_gain": -100.0, "require_mmlu": False},
    "smoke_steps": 1,
    "max_polls": 500,
    # Local jobs queue beyond what fits the machine, and a queued job's polls count: 1,500 s
    # of polls (3 s apart) leaves room for 8 runs' 32 jobs on 2 cores under load.
    "max_runtime_s": 1500,
}


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


class Bench:
    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.s3 = cloud.client("s3")
        self.ddb = cloud.client("dynamodb")
        self.sfn = cloud.client("stepfunctions")
        self.sqs = cloud.client("sqs")
        url = self.sqs.create_queue(QueueName="bench-events")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        cloud.client("sns").subscribe(TopicArn=cloud.resources.topic_arn, Protocol="sqs", Endpoint=arn)
        self.queue_url = url
        self.messages: list[dict[str, Any]] = []

    def seed(self) -> None:
        lines = "".join(
            ConversationRecord.from_turns([("user", q), ("assistant", a)]).to_json_line() + "\n"
            for q, a in GENERAL
        )
        work = self.cloud.resources.work_bucket
        self.s3.put_object(Bucket=work, Key="general/general.jsonl", Body=lines.encode())
        catalog = {
            "sources": [
                {"name": "general", "category": "general", "uri": "general.jsonl", "format": "prepared"}
            ]
        }
        self.s3.put_object(Bucket=work, Key="general/catalog.json", Body=json.dumps(catalog).encode())

    def drop(self, names: list[str]) -> None:
        def put(index: int, name: str) -> None:
            body = "".join(json.dumps(r) + "\n" for r in support_intents(40, seed=index)).encode()
            self.s3.put_object(
                Bucket=self.cloud.resources.raw_bucket, Key=f"incoming/{name}.jsonl", Body=body
            )

        threads = [threading.Thread(target=put, args=(i, n)) for i, n in enumerate(names)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def runs(self, prefix: str) -> list[dict[str, Any]]:
        items = self.ddb.scan(TableName=self.cloud.resources.runs_table)["Items"]
        return [
            {"run_id": i["run_id"]["S"], "status": i["status"]["S"], "failure": i.get("failure", {}).get("M")}
            for i in items
            if i.get("kind", {}).get("S") == "run" and i["dataset"]["S"].startswith(prefix)
        ]

    def drain_messages(self) -> None:
        while True:
            reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            batch = reply.get("Messages", [])
            if not batch:
                return
            for message in batch:
                envelope = json.loads(message["Body"])
                self.messages.append(json.loads(envelope["Message"]))
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )

    def executions(self) -> list[dict[str, Any]]:
        found, kwargs = [], {"stateMachineArn": self.cloud.resources.state_machine_arn}
        while True:
            reply = self.sfn.list_executions(**kwargs)
            found += reply["executions"]
            if "nextToken" not in reply:
                return found
            kwargs["nextToken"] = reply["nextToken"]

    def wait(
        self, prefix: str, expected: int, timeout_s: float, faults: Faults | None
    ) -> list[dict[str, Any]]:
        """Until every run ended, or nothing is left that could end one: no execution of the
        phase running and no run changed for a minute (then the rest are stuck), or the timeout."""
        deadline = time.monotonic() + timeout_s
        last, quiet_since = "", time.monotonic()
        while time.monotonic() < deadline:
            runs = self.runs(prefix)
            if faults is not None:
                faults.tick()
            statuses = Counter(r["status"] for r in runs)
            line = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
            if line != last:
                log(f"  {len(runs)} runs: {line}")
                last, quiet_since = line, time.monotonic()
            if len(runs) >= expected and all(r["status"] in TERMINAL for r in runs):
                break
            running = [
                e for e in self.executions() if e["name"].startswith(prefix) and e["status"] == "RUNNING"
            ]
            if not running and time.monotonic() - quiet_since > 60:
                log("  no execution running and no run changed for 60 s")
                break
            time.sleep(2)
        else:
            log(f"  timeout after {timeout_s:.0f} s")
        time.sleep(8)  # late messages: the execution-status rule, the on-failure destination
        self.drain_messages()
        return self.runs(prefix)

    def report(
        self, phase: str, prefix: str, expected: int, runs: list[dict[str, Any]], wall_s: float
    ) -> bool:
        ids = {r["run_id"] for r in runs}
        per_run = Counter(m["run_id"] for m in self.messages if m["run_id"] in ids)
        executions = Counter(e["name"] for e in self.executions() if e["name"] in ids)
        stuck = [r["run_id"] for r in runs if r["status"] not in TERMINAL]
        duplicates = sum(n - 1 for n in executions.values() if n > 1)
        statuses = Counter(r["status"] for r in runs)
        not_one = [run_id for run_id in ids if per_run.get(run_id, 0) != 1]
        print(f"\n== phase {phase}: {expected} drops ==")
        print(f"runs created           {len(runs)}")
        print("terminal statuses      " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
        print(
            f"SNS messages           {sum(per_run.values())} ({len(ids) - len(not_one)} runs with exactly one)"
        )
        print(f"stuck runs             {len(stuck)}")
        print(f"duplicate executions   {duplicates}")
        print(f"wall time              {wall_s:.0f} s")
        for run in runs:
            if run["status"] == "FAILED" and run["failure"]:
                cause = run["failure"]["cause"]["S"].replace("\n", " ")[:110]
                print(f"  failed {run['run_id']}: {run['failure']['error']['S']}: {cause}")
        ok = len(runs) == expected and not stuck and not duplicates and not not_one
        print("OK" if ok else "NOT OK")
        return ok


class Faults:
    """Kill, once each: a busy prepare worker, a poll_job worker, a running training job."""

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir
        self.done: dict[str, str] = {}

    def _worker(self, handler: str) -> Any:
        import psutil

        for child in psutil.Process().children(recursive=True):
            try:
                if handler in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        return None

    def tick(self) -> None:
        for name, handler in (
            ("prepare", "mixtune.handlers.prepare.handler"),
            ("poll", "mixtune.handlers.poll_job.handler"),
        ):
            if name not in self.done and (worker := self._worker(handler)) is not None:
                worker.kill()
                self.done[name] = f"worker {worker.pid}"
                log(f"  killed the {name} worker {worker.pid}")
        if "training job" not in self.done:
            for pid_file in sorted(self.jobs_dir.glob("*-train/pid")):
                if (pid_file.parent / "exit_code").exists():
                    continue
                pid = int(pid_file.read_text())
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                self.done["training job"] = pid_file.parent.name
                log(f"  killed the training job {pid_file.parent.name}")
                break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="concurrent drops per phase (default 8)")
    parser.add_argument("--phases", default="load,faults", help="load, faults or both (default)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds a phase may take (default 3600)")
    args = parser.parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="mixtune-bench-"))
    settings = Settings(
        base_model="tiny", catalog_uri="s3://mixtune-work/general/catalog.json", default_run_config=QUICK
    )
    ok = True
    with LocalCloud(state_dir=state_dir, settings=settings, schedule="", write_state_file=False) as cloud:
        bench = Bench(cloud)
        bench.seed()
        log(f"local cloud up at {cloud.endpoint}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        for phase in args.phases.split(","):
            prefix = f"{phase}-"
            names = [f"{prefix}{i:02d}" for i in range(args.runs)]
            faults = Faults(state_dir / "jobs") if phase == "faults" else None
            started = time.monotonic()
            log(f"phase {phase}: dropping {len(names)} datasets at once")
            bench.drop(names)
            runs = bench.wait(prefix, len(names), args.timeout, faults)
            ok &= bench.report(phase, prefix, len(names), runs, time.monotonic() - started)
            if faults is not None:
                print("faults injected        " + "; ".join(f"{k}: {v}" for k, v in faults.done.items()))
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
