"""The pipeline in moto: buckets, tables, topic + queue, the Lambda functions of
`mixtune.functions` (run in-process by `mixtune.local.invoke.lambda_runtime`) and the real
ASL file in moto's Step Functions interpreter, with a fake training backend."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mixtune.functions import FUNCTIONS
from mixtune.statemachine import load_definition, substitute, substitutions

REGION = "us-east-1"
ACCOUNT = "123456789012"
FAKE_BACKEND = "fake"
# How long a test waits for an execution or a run: a bound for a loaded machine, not a timing
# assert. An execution here takes ~3 s idle and ~12 s at a load of 14 on 2 cores; the 60 s
# this used to be was crossed under heavier load, which failed a test now and then.
WAIT_S = 300


# ---- the fake training backend ------------------------------------------------------------


@dataclass
class FakePlan:
    """What the fake backend does. Jobs finish at submit (their files are written then), so a
    status call only reads the reference: nothing lives in this process, and the same fake
    works when handlers run in other processes (the local cloud) given the same plan."""

    fail_steps: dict[str, str] = field(default_factory=dict)  # step -> reason
    never_ending_steps: set[str] = field(default_factory=set)  # these jobs stay RUNNING
    transient_status_errors: int = 0  # the next N status calls raise TransientError
    # The next status calls fail with these Lambda error types, one each (what a poll function
    # that died or ran out of time looks like to Step Functions).
    status_error_types: list[str] = field(default_factory=list)
    # What each evaluation answers right: the first share of the domain items and MMLU questions
    # (so base and tuned outcomes pair up). The evaluation itself is mixtune_training.evaluate's.
    baseline: dict[str, float] = field(default_factory=lambda: {"domain": 0.0, "mmlu": 0.50})
    tuned: dict[str, float] = field(default_factory=lambda: {"domain": 1.0, "mmlu": 0.497})
    # A sweep's arms: their tuned shares (else `tuned`); fail_steps also takes "<step>@<arm>".
    arm_tuned: dict[str, dict[str, float]] = field(default_factory=dict)
    train_wall_s: float | None = None  # written as the training jobs' wall_time_s when set
    submitted: list[str] = field(default_factory=list)
    submitted_arms: list[tuple[str, str]] = field(default_factory=list)  # (step, arm) of arm jobs
    cancelled: list[str] = field(default_factory=list)  # job ids
    status_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


MMLU_QUESTIONS = 1000
MMLU_SUBJECT = "marketing"


def mmlu_jsonl() -> bytes:
    """The service's MMLU source in the tests (uploaded to S3, ``MIXTUNE_MMLU_SOURCE``): synthetic
    questions in cais/mmlu's shape, one subject."""
    rows = [
        {
            "subject": MMLU_SUBJECT,
            "question": f"Question {i}?",
            "choices": ["w", "x", "y", "z"],
            "answer": i % 4,
        }
        for i in range(MMLU_QUESTIONS)
    ]
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


@dataclass
class PlannedAnswer:
    text: str
    finished: bool = True


class PlannedScorer:
    """The model side of ``mixtune_training.evaluate`` (its ``Scorer``), answering by the plan:
    the first ``share`` of the domain items (their gold answer) and MMLU questions right, the
    rest wrong. Everything else (the eval split read from S3, item ids, task detection, label
    mapping, scores, intervals, hashes) is the real evaluation code."""

    def __init__(self, shares: dict[str, float]) -> None:
        self.shares = shares

    def max_new_tokens_for(self, labels: Any) -> int:
        return 8

    def answers(self, records: Any, max_new_tokens: int, batch_size: int) -> list[PlannedAnswer]:
        right = round(self.shares["domain"] * len(records))
        return [PlannedAnswer(r.final_answer if i < right else "no idea") for i, r in enumerate(records)]

    def mmlu_choices(self, questions: Any, shots: Any, batch_size: int, max_length: int) -> list[int]:
        right = round(self.shares["mmlu"] * len(questions))
        return [q.answer if i < right else (q.answer + 1) % 4 for i, q in enumerate(questions)]

    def losses(self, records: Any, batch_size: int, max_length: int) -> list[tuple[float, int] | None]:
        return [(2.0, 4) for _ in records]

    def runtime(self) -> dict[str, str]:
        return {"dtype": "float32", "device": "fake", "torch": "fake", "transformers": "fake", "peft": "fake"}


def evaluate_job(spec: Any, shares: dict[str, float]) -> None:
    """What the evaluate entry point does with the job's arguments, with a planned model."""
    from mixtune import storage
    from mixtune.training_config import EvalConfig
    from mixtune_training import evaluate
    from mixtune_training.common import config_from_args

    config = config_from_args(EvalConfig, evaluate.build_parser().parse_args(spec.arguments))
    result = evaluate.evaluate(config, PlannedScorer(shares))
    storage.write_bytes(evaluate.eval_json_uri(config.output), result.to_json())


class FakeBackend:
    name = FAKE_BACKEND

    def __init__(self, plan: FakePlan) -> None:
        self.plan = plan

    def submit(self, spec: Any) -> Any:
        from mixtune import storage
        from mixtune.backends import JobRef

        step = spec.environment["MIXTUNE_STEP"]
        arm = spec.environment.get("MIXTUNE_ARM")
        with self.plan.lock:
            self.plan.submitted.append(step)
            if arm:
                self.plan.submitted_arms.append((step, arm))
        out = spec.output_uri
        if step in ("prepare", "mix"):
            return self._run_data_job(spec, step)
        if step in ("smoke", "train"):
            storage.write_bytes(storage.join(out, "progress.jsonl"), b'{"step": 1, "loss": 2.0}\n')
            storage.write_bytes(storage.join(out, "adapter", "adapter_config.json"), b"{}")
            train_metrics: dict[str, float] = {"train_loss": 1.0}
            if self.plan.train_wall_s is not None:
                train_metrics["wall_time_s"] = self.plan.train_wall_s
            storage.write_bytes(storage.join(out, "metrics.json"), json.dumps(train_metrics).encode())
        else:
            shares = self.plan.baseline if step == "evaluate_baseline" else self.plan.tuned
            if step == "evaluate_tuned" and arm in self.plan.arm_tuned:
                shares = self.plan.arm_tuned[arm]
            evaluate_job(spec, shares)
        reason = self.plan.fail_steps.get(f"{step}@{arm}") or self.plan.fail_steps.get(step)
        outcome = {"state": "FAILED", "reason": reason} if reason else {"state": "SUCCEEDED"}
        if step in self.plan.never_ending_steps:
            outcome = {"state": "RUNNING"}
        return JobRef(backend=FAKE_BACKEND, id=spec.job_name, data=outcome)

    def _run_data_job(self, spec: Any, step: str) -> Any:
        """A prepare or mix job: the real command (`mixtune prepare` / `mixtune mix`) with the
        job's own arguments, run here at submit against the same (moto) S3."""
        from mixtune.backends import JobRef
        from mixtune.cli import main

        code = main([spec.entry_point, *spec.arguments])
        outcome = {"state": "SUCCEEDED"} if code == 0 else {"state": "FAILED", "reason": f"exit code {code}"}
        if step in self.plan.fail_steps:
            outcome = {"state": "FAILED", "reason": self.plan.fail_steps[step]}
        return JobRef(backend=FAKE_BACKEND, id=spec.job_name, data=outcome)

    def status(self, ref: Any) -> Any:
        from mixtune.backends import JobState, JobStatus, TransientError

        with self.plan.lock:
            self.plan.status_calls += 1
            if self.plan.transient_status_errors > 0:
                self.plan.transient_status_errors -= 1
                raise TransientError("fake throttling")
            if self.plan.status_error_types:
                # An exception class of that name: the Lambda errorType the interpreter matches.
                raise type(self.plan.status_error_types.pop(0), (Exception,), {})("the poll died")
        return JobStatus(state=JobState(ref.data["state"]), reason=ref.data.get("reason"))

    def cancel(self, ref: Any) -> None:
        with self.plan.lock:
            self.plan.cancelled.append(ref.id)


# ---- the stack --------------------------------------------------------------------------------


def function_name(name: str) -> str:
    return f"mixtune-{name.replace('_', '-')}"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name(name)}"


def substituted_definition(topic_arn: str) -> str:
    return substitute(load_definition(), substitutions(lambda fn: function_arn(fn.name), topic_arn))


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "# the runner imports the real handler\n")
    return buffer.getvalue()


@dataclass
class Stack:
    env: dict[str, str]
    plan: FakePlan
    state_machine_arn: str
    topic_arn: str
    queue_url: str
    clients: dict[str, Any]

    def client(self, service: str) -> Any:
        return self.clients[service]

    def wait_for_execution(self, arn: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = sfn.describe_execution(executionArn=arn)
            if reply["status"] != "RUNNING":
                return reply
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {arn} still RUNNING after {timeout_s} s")
            time.sleep(0.1)

    def wait_for_executions(self, count: int, timeout_s: float = WAIT_S) -> list[dict[str, Any]]:
        """The executions, once there are ``count`` (asynchronous invokes start them later)."""
        deadline = time.monotonic() + timeout_s
        while len(found := self.executions()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} executions after {timeout_s} s, expected {count}")
            time.sleep(0.1)
        return found

    def wait_for_run(self, run_id: str, predicate: Any, timeout_s: float = WAIT_S) -> Any:
        """The run once ``predicate(run)`` holds."""
        deadline = time.monotonic() + timeout_s
        while not predicate(run := self.repo().find(run_id)):
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} did not get there in {timeout_s} s: {run}")
            time.sleep(0.1)
        return run

    def executions(self) -> list[dict[str, Any]]:
        return self.client("stepfunctions").list_executions(stateMachineArn=self.state_machine_arn)[
            "executions"
        ]

    def messages(self, wait_s: float = 5) -> list[dict[str, Any]]:
        """SNS envelopes delivered to the subscribed queue (Message parsed)."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            reply = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = reply.get("Messages", [])
            for message in batch:
                envelope = json.loads(message["Body"])
                envelope["Message"] = json.loads(envelope["Message"])
                found.append(envelope)
            if found and not batch:
                break
            if not batch:
                time.sleep(0.1)
        return found

    def repo(self) -> Any:
        from mixtune.runs import RunsRepository

        return RunsRepository(self.env["MIXTUNE_RUNS_TABLE"], self.client("dynamodb"))

    def states_entered(self, arn: str) -> list[str]:
        sfn = self.client("stepfunctions")
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def write_catalog(s3: Any, bucket: str) -> str:
    """A one-source general catalog on S3 (Converse records), for the mix step."""
    from mixtune.records import ConversationRecord

    lines = [
        ConversationRecord.from_turns(
            [("user", f"What is {i} plus {i}?"), ("assistant", str(2 * i))]
        ).to_json_line()
        for i in range(40)
    ]
    s3.put_object(Bucket=bucket, Key="catalog/general.jsonl", Body=("\n".join(lines) + "\n").encode())
    catalog = {
        "sources": [{"name": "arith", "category": "math", "uri": "general.jsonl", "format": "prepared"}]
    }
    s3.put_object(Bucket=bucket, Key="catalog/catalog.json", Body=json.dumps(catalog).encode())
    return f"s3://{bucket}/catalog/catalog.json"


def write_mmlu(s3: Any, bucket: str) -> str:
    s3.put_object(Bucket=bucket, Key="mmlu/mmlu.jsonl", Body=mmlu_jsonl())
    return f"s3://{bucket}/mmlu/mmlu.jsonl"


@pytest.fixture
def stack(aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Stack]:
    import boto3
    from moto import mock_aws

    from mixtune.backends import register_backend, unregister_backend
    from mixtune.local.cloud import async_event_invokes
    from mixtune.local.eventbridge import eventbridge_targets
    from mixtune.local.invoke import lambda_runtime
    from mixtune.local.stepfunctions import aws_error_names, execution_status_events
    from mixtune.runs import idempotency_table_definition, table_definition
    from mixtune.runs.failures import execution_status_pattern
    from mixtune.settings import get_settings

    plan = FakePlan()
    register_backend(FAKE_BACKEND, lambda settings: FakeBackend(plan))
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        lambda_runtime("in_process"),
        aws_error_names(),
        execution_status_events(),
        eventbridge_targets(),
        async_event_invokes(),
    ):
        clients = {
            name: boto3.client(name, region_name=REGION)
            for name in ("s3", "dynamodb", "sns", "sqs", "stepfunctions", "lambda", "iam", "events")
        }
        for bucket in ("mixtune-raw", "mixtune-work"):
            clients["s3"].create_bucket(Bucket=bucket)
        clients["dynamodb"].create_table(**table_definition("mixtune-runs"))
        clients["dynamodb"].create_table(**idempotency_table_definition("mixtune-idempotency"))
        topic_arn = clients["sns"].create_topic(Name="mixtune-runs")["TopicArn"]
        queue_url = clients["sqs"].create_queue(QueueName="run-events")["QueueUrl"]
        queue_arn = clients["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        clients["sns"].subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        role = clients["iam"].create_role(
            RoleName="mixtune-lambda",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        state_machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:mixtune-pipeline"
        env = {
            "MIXTUNE_RAW_BUCKET": "mixtune-raw",
            "MIXTUNE_WORK_BUCKET": "mixtune-work",
            "MIXTUNE_RUNS_TABLE": "mixtune-runs",
            "MIXTUNE_IDEMPOTENCY_TABLE": "mixtune-idempotency",
            "MIXTUNE_TOPIC_ARN": topic_arn,
            "MIXTUNE_STATE_MACHINE_ARN": state_machine_arn,
            "MIXTUNE_CATALOG_URI": write_catalog(clients["s3"], "mixtune-work"),
            "MIXTUNE_MMLU_SOURCE": write_mmlu(clients["s3"], "mixtune-work"),
            "MIXTUNE_DEFAULT_BACKEND": FAKE_BACKEND,
            "MIXTUNE_BASE_MODEL": "tiny",
            "MIXTUNE_PLATFORM": "local",
            "MIXTUNE_POLL_SECONDS": "1",
            "MIXTUNE_MAX_POLLS": "5",
            "MIXTUNE_MAX_RUNTIME_S": "5",
            "MIXTUNE_PREPARE_FUNCTION_NAME": function_name("prepare"),
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        monkeypatch.setenv("MIXTUNE_CACHE", str(tmp_path / "cache"))  # the evaluate job's MMLU copy
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        for fn in FUNCTIONS:
            clients["lambda"].create_function(
                FunctionName=function_name(fn.name),
                Runtime="python3.11",
                Role=role,
                Handler=fn.handler,
                Code={"ZipFile": _zip()},
                Timeout=fn.timeout_s,
                MemorySize=fn.memory_mb,
                Environment={"Variables": env},
            )
        for fn in FUNCTIONS:
            if fn.on_failure:
                clients["lambda"].put_function_event_invoke_config(
                    FunctionName=function_name(fn.name),
                    MaximumRetryAttempts=2,
                    DestinationConfig={"OnFailure": {"Destination": function_arn(fn.on_failure)}},
                )
        created = clients["stepfunctions"].create_state_machine(
            name="mixtune-pipeline", definition=substituted_definition(topic_arn), roleArn=role
        )
        assert created["stateMachineArn"] == state_machine_arn
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="failed", EventPattern=json.dumps(execution_status_pattern(state_machine_arn)))
        events.put_targets(Rule="failed", Targets=[{"Id": "on-failure", "Arn": function_arn("on_failure")}])
        try:
            yield Stack(env, plan, state_machine_arn, topic_arn, queue_url, clients)
        finally:
            _settle(clients["stepfunctions"], state_machine_arn)
            get_settings.cache_clear()
            unregister_backend(FAKE_BACKEND)


def _settle(sfn: Any, state_machine_arn: str, timeout_s: float = 30) -> None:
    """Stop what a test left running (executions, asynchronous invokes and deliveries) before
    moto's state goes: run ids repeat across tests, and a late thread would act on the next."""
    for execution in sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")[
        "executions"
    ]:
        sfn.stop_execution(executionArn=execution["executionArn"])
    deadline = time.monotonic() + timeout_s
    while (
        time.monotonic() < deadline
        and sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")["executions"]
    ):
        time.sleep(0.1)
    for _ in range(2):  # a delivery may start another invoke (a destination)
        for thread in threading.enumerate():
            if thread.name.startswith(("invoke-async", "deliver ")):
                thread.join(max(0.0, deadline - time.monotonic()))
