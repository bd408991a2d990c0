"""`mixtune demo`: the whole pipeline in the local cloud on generated data, followed live.

Start the local cloud; generate the sample support-intent dataset (some rows carry template
collisions); get self-rehearsal general data from the base model (cached); upload the data,
the rehearsal set and a catalog; start a run on the uploaded file with the demo's config;
follow it (states, training loss, evaluation); print the base-vs-tuned table; fetch the
report the pipeline wrote for the run (the same page any run of the service gets).
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mixtune.demo.data import catalog_text, rehearsal_data, write_domain_dataset
from mixtune.demo.follow import RunFollower, Snapshot

DATASET_KEY = "incoming/support-intents.jsonl"
GENERAL_PREFIX = "general"
QUEUE_NAME = "mixtune-demo-events"
# The pipeline worked and the gate decided (or said its eval sets cannot): the demo succeeded.
GATE_OUTCOMES = ("SUCCEEDED", "REJECTED_BY_GATE", "INCONCLUSIVE")
EVAL_SHARE = 0.15  # of the domain rows, held out by prepare to score the domain task
SPLIT_MARGIN = 0.95


class DemoPlan(BaseModel):
    """Sizes chosen to fit the time budget (see docs/local.md for the arithmetic)."""

    name: str
    base_model: str
    records: int  # domain rows generated
    intents: list[str] | None = None  # a subset of the sample data's intents (default: all 12)
    collision_share: float = 0.05
    domain_percent: float = 75.0
    train_steps: int
    batch_size: int = 8
    max_length: int = 256
    learning_rate: float = 1e-3
    smoke_steps: int = 2
    eval_limit: int  # domain eval examples
    eval_max_new_tokens: int | None = 8  # None: the evaluation's default (the longest label, in tokens)
    mmlu_subjects: list[str]
    mmlu_per_subject: int
    rehearsal_prompts: int
    rehearsal_max_new_tokens: int
    general_holdout: int  # rehearsal records kept out of training to score the general loss
    max_general_drop: float  # MMLU points the gate allows (a small subset is noisy)
    # nats the held-out general loss may rise: the forgetting a model near chance on MMLU shows
    max_general_loss_increase: float | None = None
    timeout_s: int
    sweep: list[float] | None = None  # domain shares of a mix-ratio sweep (mixtune demo --sweep)
    sweep_concurrency: int = 2

    def records_balanced_by(self, general_records: int) -> int:
        """The most domain rows (at most ``records``) whose training split the general records
        (less the held-out ones) can balance in the mix with the most general data, repeating
        none more often than the mixer allows: only answers that end on their own are kept, so
        a model that runs long leaves fewer than the prompts asked for."""
        from mixtune.mixing import MixSpec

        general_share = (100 - min(self.sweep or [self.domain_percent])) / 100
        if general_share <= 0:
            return self.records
        repeats = MixSpec.model_fields["max_oversample"].default
        usable = max(general_records - self.general_holdout, 0) * repeats
        train = usable * (1 - general_share) / general_share
        # prepare's split is per label and hash-based: its training share varies a little
        return min(self.records, int(train / (1 - EVAL_SHARE) * SPLIT_MARGIN))

    def run_config(
        self, rehearsal_category: str = "self_rehearsal", general_uri: str | None = None
    ) -> dict[str, Any]:
        """The run's config (``mixtune.runs.RunConfig`` fields), sent with ``POST /runs``."""
        return {
            "base_model": self.base_model,
            "backend": "local",
            "prepare": {"eval_share": EVAL_SHARE, "seed": 0},
            "mix": {
                "domain_percent": self.domain_percent,
                # all domain (a sweep's single-run comparison): no general category to fill
                "categories": {rehearsal_category: 100} if self.domain_percent < 100 else {},
                "seed": 0,
            },
            "train": {
                "max_steps": self.train_steps,
                "per_device_batch_size": self.batch_size,
                "max_length": self.max_length,
                "learning_rate": self.learning_rate,
                "warmup_ratio": 0.1,
                "logging_steps": 1,
            },
            "evaluation": {
                "domain_limit": self.eval_limit,
                "domain_task": "classification",
                **({"max_new_tokens": self.eval_max_new_tokens} if self.eval_max_new_tokens else {}),
                "mmlu": True,
                "mmlu_subjects": self.mmlu_subjects,
                "mmlu_limit_per_subject": self.mmlu_per_subject,
                "general_data": general_uri,
                "general_limit": self.general_holdout,
                "batch_size": 8,
                "max_length": self.max_length,
            },
            "gate": {
                "max_general_drop": self.max_general_drop,
                "min_domain_gain": 1.0,
                "max_general_loss_increase": self.max_general_loss_increase,  # None: no cap
            },
            "smoke_steps": self.smoke_steps,
            # Two-second polls, a 1,000 s job budget: the poll budget covers it and the
            # execution history stays well inside Step Functions' limit (mixtune.runs.validation).
            "poll_seconds": 2,
            "max_polls": 500,
            "max_runtime_s": 1000,
            **self.sweep_config(),
        }

    def sweep_config(self) -> dict[str, Any]:
        """A sweep's arms, with polls spaced so its longer history fits (4 s x 250 >= 1,000 s)."""
        if not self.sweep:
            return {}
        return {
            "sweep": {"arms": self.sweep, "max_concurrency": self.sweep_concurrency},
            "poll_seconds": 4,
            "max_polls": 250,
        }


MMLU_SUBJECTS = ["high_school_geography", "marketing", "nutrition", "world_religions"]

FULL = DemoPlan(
    name="full",
    base_model="smollm2",
    records=320,
    train_steps=32,
    eval_limit=40,
    mmlu_subjects=MMLU_SUBJECTS,
    mmlu_per_subject=10,
    # Only answers that end on their own are kept (issue 16.6), and SmolLM2's run long: 120
    # prompts answered in up to 192 tokens leave enough for the 75/25 mix (4x oversampling at most).
    rehearsal_prompts=120,
    rehearsal_max_new_tokens=192,
    general_holdout=12,
    max_general_drop=5.0,
    # SmolLM2 is near chance on MMLU, so 40 questions cannot show forgetting; its loss on the 12
    # held-out rehearsal answers can (a 100%-domain arm: +1.6 nats, the 75/25 mix: +0.03).
    max_general_loss_increase=0.25,
    timeout_s=1500,
)
# The tiny random model (mixtune_training.tiny) learns four intents with distinct words in 80 LoRA
# steps at a high learning rate; the eval split (about 33 items) then tells a real gain from none.
# 220 records: four intents' templates repeat more than twelve's, and the duplicates prepare drops
# stay under its 5% reject limit (3.6%).
QUICK = DemoPlan(
    name="quick",
    base_model="tiny",
    records=220,
    intents=["card_lost", "transfer_failed", "exchange_rate", "cancel_subscription"],
    train_steps=80,
    batch_size=8,
    max_length=96,
    learning_rate=1e-2,
    smoke_steps=1,
    eval_limit=40,
    eval_max_new_tokens=None,
    mmlu_subjects=MMLU_SUBJECTS[:1],
    mmlu_per_subject=4,
    # the mix's general quarter (about 68 records) oversamples these at most 4x (the mixer's limit)
    rehearsal_prompts=32,
    rehearsal_max_new_tokens=8,
    general_holdout=4,
    # A random model's MMLU is chance on 4 questions: the gate allows any drop (it still checks the
    # domain gain on its interval). Never a setting for a real model.
    max_general_drop=100.0,
    timeout_s=300,
)


def split_rehearsal(path: Path, holdout: int, seed: int = 0) -> tuple[bytes, bytes]:
    """(training part, held-out part) of the rehearsal JSONL, split by a seeded shuffle."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    held = set(order[: min(holdout, max(0, len(lines) - 1))])
    train = b"".join(lines[i] + b"\n" for i in range(len(lines)) if i not in held)
    kept = b"".join(lines[i] + b"\n" for i in range(len(lines)) if i in held)
    return train, kept


class Demo:
    def __init__(self, plan: DemoPlan, out_dir: Path, console: Any) -> None:
        self.plan, self.out_dir, self.console = plan, out_dir, console
        self.started = time.monotonic()

    def log(self, message: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/dim]  {message}")

    # --- the steps ---------------------------------------------------------------------
    def run(self) -> int:
        from mixtune.local.cloud import LocalCloud
        from mixtune.settings import Settings

        plan = self.plan
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with self.console.status(
            f"self-rehearsal data from {plan.base_model} (first run only, then cached)..."
        ):
            rehearsal, cached = rehearsal_data(
                plan.base_model,
                plan.rehearsal_prompts,
                plan.rehearsal_max_new_tokens,
                8,
                self.out_dir / "rehearsal.log",
            )
        self.log(f"self-rehearsal data {'(cached)' if cached else 'generated'}: {rehearsal}")
        general = sum(1 for line in rehearsal.read_bytes().splitlines() if line.strip())
        records = plan.records_balanced_by(general)
        if records < plan.records:
            self.log(
                f"{general} self-rehearsal answers ({plan.general_holdout} held out) balance {records} domain "
                f"rows at most in the mix with the most general data: {records} of {plan.records}"
            )
        dataset = write_domain_dataset(
            self.out_dir / "data" / "support-intents.jsonl", records, 0, plan.collision_share, plan.intents
        )
        self.log(
            f"generated {records} support-intent records ({len(plan.intents) if plan.intents else 'all'} intents, "
            f"{plan.collision_share:.0%} with template collisions) -> {dataset}"
        )

        work_bucket = Settings().work_bucket
        settings = Settings().model_copy(
            update={
                "base_model": plan.base_model,
                "catalog_uri": f"s3://{work_bucket}/{GENERAL_PREFIX}/catalog.json",
                "poll_seconds": 2,
                "max_polls": 500,
                "max_runtime_s": 1000,
                # A dropped file's run is configured by the service: the demo's plan.
                "default_run_config": plan.run_config(
                    general_uri=f"s3://{work_bucket}/{GENERAL_PREFIX}/heldout.jsonl"
                ),
            }
        )
        cloud = LocalCloud(port=0, api_port=0, state_dir=self.out_dir / "local", settings=settings)
        try:
            state = cloud.start()
            self.log(f"local cloud up: AWS {state.endpoint}, API {state.api_endpoint}")
            return self._run_in(cloud, dataset, rehearsal)
        finally:
            cloud.stop()
            self.log("local cloud stopped")

    def _run_in(self, cloud: Any, dataset: Path, rehearsal: Path) -> int:
        plan, res = self.plan, cloud.resources
        s3, sqs = cloud.client("s3"), cloud.client("sqs")
        train_part, held_out = split_rehearsal(rehearsal, plan.general_holdout)
        s3.put_object(Bucket=res.work_bucket, Key=f"{GENERAL_PREFIX}/self-rehearsal.jsonl", Body=train_part)
        s3.put_object(Bucket=res.work_bucket, Key=f"{GENERAL_PREFIX}/heldout.jsonl", Body=held_out)
        s3.put_object(
            Bucket=res.work_bucket,
            Key=f"{GENERAL_PREFIX}/catalog.json",
            Body=catalog_text("self-rehearsal.jsonl").encode(),
        )
        queue_url = self._subscribe(cloud)
        s3.upload_file(str(dataset), res.raw_bucket, DATASET_KEY)
        self.log(f"dropped the dataset into s3://{res.raw_bucket}/{DATASET_KEY}")
        run_id = self._wait_for_run_id(cloud.api_endpoint)
        self.log(f"the S3 notification started run [bold]{run_id}[/bold]")
        follower = RunFollower(cloud.api_endpoint, s3, cloud.client("stepfunctions"), run_id)
        snap = self._follow(follower)
        message = self._sns_message(sqs, queue_url)
        fetched = self._fetch_report(follower, snap, self.out_dir / "report")
        if fetched is None:
            self.log("[red]the pipeline wrote no report for the run[/red]")
            return 1
        page, summary = fetched
        self._print_result(summary, message, cloud)
        if self.plan.sweep:
            from mixtune.demo.sweep import show_sweep

            show_sweep(follower.run_record() or {}, page.parent, self.console)
        self.console.print(f"report: {page}  (report.md and summary.json beside it)")
        return 0 if summary.status in GATE_OUTCOMES else 1

    def _subscribe(self, cloud: Any) -> str:
        sqs = cloud.client("sqs")
        url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        cloud.client("sns").subscribe(TopicArn=cloud.resources.topic_arn, Protocol="sqs", Endpoint=arn)
        return str(url)

    def _wait_for_run_id(self, api: str) -> str:
        """The run the dropped file started: the prepare function creates it within seconds."""
        import urllib.request

        from mixtune.runs.model import dataset_name

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with urllib.request.urlopen(
                f"{api}/runs?dataset={dataset_name(DATASET_KEY)}", timeout=60
            ) as response:
                runs = json.loads(response.read()).get("runs", [])
            if runs:
                return str(runs[0]["run_id"])
            time.sleep(0.5)
        raise RuntimeError(f"no run appeared for s3://.../{DATASET_KEY} within 120 s")

    def _follow(self, follower: RunFollower) -> Snapshot:
        from rich.live import Live

        deadline = time.monotonic() + self.plan.timeout_s
        snap = Snapshot()
        sized = False
        with Live(self._view(snap), console=self.console, refresh_per_second=2, transient=False) as live:
            while time.monotonic() < deadline:
                snap = follower.snapshot()
                sizing = (snap.run or {}).get("sizing")
                if sizing and not sized:
                    sized = True
                    self.log("what the eval sets can detect, before training:")
                    for line in sizing.get("lines") or []:
                        self.console.print(f"  {line}")
                live.update(self._view(snap))
                if snap.done:
                    break
                time.sleep(1.0)
        if not self.console.is_terminal:
            self.console.line()  # off a terminal, the live view's last line ends without one
        if not snap.done:
            self.log(f"[red]the run did not finish within {self.plan.timeout_s} s[/red]")
        return snap

    def _view(self, snap: Snapshot) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        now = datetime.now(UTC)
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("state", min_width=18)
        table.add_column("time", justify="right")
        table.add_column("status")
        for phase in snap.phases:
            mark = {"done": "[green]done[/green]", "failed": "[red]failed[/red]"}.get(
                phase.status, "[yellow]running...[/yellow]"
            )
            table.add_row(phase.name, f"{phase.seconds(now):5.1f}s", mark)
        run = snap.run or {}
        lines = [
            Text.from_markup(
                f"run [bold]{run.get('run_id', '...')}[/bold]: {snap.status}  stage {run.get('stage') or '-'}"
            )
        ]
        if run.get("summary") and snap.status in ("PREPARED", "REJECTED"):
            lines.append(Text(f"data: {run['summary']}"))
        lines.append(table)
        if snap.loss:
            step, loss = snap.loss[-1]
            lines.append(
                Text(
                    f"training: step {step}/{self.plan.train_steps}  loss {loss:.3f}  (first {snap.loss[0][1]:.3f})"
                )
            )
        elif snap.smoke_loss:
            lines.append(
                Text(f"smoke training: step {snap.smoke_loss[-1][0]}  loss {snap.smoke_loss[-1][1]:.3f}")
            )
        return Group(*lines)

    def _sns_message(self, sqs: Any, url: str) -> dict[str, Any] | None:
        for _ in range(10):
            for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                body = json.loads(message["Body"])
                return {"subject": body.get("Subject"), "message": body.get("Message")}
        return None

    def _fetch_report(self, follower: RunFollower, snap: Snapshot, folder: Path) -> tuple[Path, Any] | None:
        """The report the pipeline wrote for the run, copied into ``folder``: (page, summary).

        It is written when the outcome is announced, just after the run's status turns final.
        """
        from mixtune import layout
        from mixtune.report.summary import RunSummary

        deadline = time.monotonic() + 60
        run = snap.run or {}
        while not (run.get("lineage") or {}).get("run_report_uri") and time.monotonic() < deadline:
            time.sleep(0.5)
            run = follower.run_record() or {}
        uri = (run.get("lineage") or {}).get("run_report_uri")
        if not uri:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        texts = {}
        for name in (layout.REPORT_HTML, layout.REPORT_MARKDOWN, layout.REPORT_SUMMARY):
            texts[name] = follower.read_s3_text(uri.rsplit("/", 1)[0] + "/" + name) or ""
            (folder / name).write_text(texts[name], encoding="utf-8")
        return folder / layout.REPORT_HTML, RunSummary.model_validate_json(texts[layout.REPORT_SUMMARY])

    def _print_result(self, summary: Any, message: dict[str, Any] | None, cloud: Any) -> None:
        from mixtune.report.console import print_scores

        self.console.print(
            f"run {summary.run_id}: [bold]{summary.verdict.headline}[/bold] ({summary.status})"
        )
        if summary.scores:
            print_scores(self.console, summary.scores)
        for reason in summary.verdict.reasons:
            self.console.print(f"  {reason}")
        if summary.data and summary.data.counts:
            self.console.print("data: " + ", ".join(f"{k} {v}" for k, v in summary.data.counts.items()))
        res, run_id = cloud.resources, summary.run_id
        subject = (message or {}).get("subject") or "(none received)"
        for name, value in (
            (
                "run record",
                f"DynamoDB table {res.runs_table}, key run_id={run_id} (GET {cloud.api_endpoint}/runs/{run_id})",
            ),
            ("SNS message", f"topic {res.topic_arn} -> SQS queue {QUEUE_NAME}: {subject}"),
            *summary.lineage,
        ):
            if name in ("run record", "SNS message", "adapter", "mix manifest", "data report"):
                self.console.print(f"{name}: {value}")
        self.console.print(f"wall time: {time.monotonic() - self.started:.0f} s")
