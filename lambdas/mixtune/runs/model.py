"""The run: its status machine, its configuration and what it records (lineage, metrics, gate)."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mixtune.sweeps.config import SweepConfig
from mixtune.training_config import EvalConfig, TrainConfig

if TYPE_CHECKING:
    from mixtune.dataprep.report import PrepareOptions
    from mixtune.settings import Settings


Trigger = Literal["s3", "api", "schedule"]


class RunStatus(StrEnum):
    PENDING = "PENDING"  # created (API, schedule, or an S3 event); data not yet prepared
    PREPARED = "PREPARED"  # data passed validation; the execution is about to start
    REJECTED = "REJECTED"  # data failed validation; nothing was trained
    RUNNING = "RUNNING"  # the state machine is working on it (see `stage`)
    SUCCEEDED = "SUCCEEDED"  # trained, evaluated, and the gate passed
    REJECTED_BY_GATE = "REJECTED_BY_GATE"  # trained and evaluated, but the gate refused it
    # trained and evaluated, but the eval sets were too small to decide (the gate says how
    # many items would): nothing promoted
    INCONCLUSIVE = "INCONCLUSIVE"
    FAILED = "FAILED"  # a step failed; `failure` says which and why


TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.PREPARED, RunStatus.REJECTED, RunStatus.FAILED}),
    RunStatus.PREPARED: frozenset({RunStatus.RUNNING, RunStatus.FAILED}),
    # RUNNING -> RUNNING records progress from one stage to the next.
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.RUNNING,
            RunStatus.SUCCEEDED,
            RunStatus.REJECTED_BY_GATE,
            RunStatus.INCONCLUSIVE,
            RunStatus.FAILED,
        }
    ),
}
TERMINAL: frozenset[RunStatus] = frozenset(
    {
        RunStatus.REJECTED,
        RunStatus.SUCCEEDED,
        RunStatus.REJECTED_BY_GATE,
        RunStatus.INCONCLUSIVE,
        RunStatus.FAILED,
    }
)


def can_transition(current: RunStatus, new: RunStatus) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def sources_of(new: RunStatus) -> frozenset[RunStatus]:
    """Every status from which ``new`` may be reached."""
    return frozenset(status for status, targets in TRANSITIONS.items() if new in targets)


class RunConfig(BaseModel):
    """Everything a run may override; what is left out takes the service defaults.

    ``prepare``, ``mix`` and ``gate`` hold the fields of dataprep's ``PrepareOptions``,
    mixing's ``MixSpec`` and evaluation's ``GatePolicy``. Every trigger checks the whole
    config at the door with each section's owner's model (:mod:`mixtune.runs.validation`).
    """

    model_config = ConfigDict(extra="forbid")

    base_model: str | None = Field(default=None, description="defaults to the service's base model")
    backend: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="training backend: local, sagemaker or hyperpod; defaults to the service's backend",
    )
    instance_type: str | None = None
    node_count: int = Field(default=1, ge=1, le=64)
    gpus_per_node: int | None = Field(default=None, ge=0, le=16)
    # Kueue scheduling of HyperPod jobs; default: the service's MIXTUNE_HYPERPOD_QUEUE / _PRIORITY.
    queue: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Kueue LocalQueue",
    )
    priority: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Kueue WorkloadPriorityClass",
    )
    prepare: dict[str, Any] = Field(default_factory=dict, description="dataprep PrepareOptions fields")
    mix: dict[str, Any] = Field(default_factory=dict, description="mixing MixSpec fields")
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)
    gate: dict[str, Any] = Field(default_factory=dict, description="evaluation GatePolicy fields")
    smoke_steps: int = Field(default=5, ge=1, le=50)
    # The state machine's Wait states read poll_seconds (SecondsPath); poll_job fails the step
    # after max_polls polls; max_runtime_s is each job's own budget. None takes the service's
    # settings (MIXTUNE_POLL_SECONDS, MIXTUNE_MAX_POLLS, MIXTUNE_MAX_RUNTIME_S); the rules
    # that tie them together are in mixtune.runs.validation.
    poll_seconds: int | None = Field(default=None, ge=0, le=3600)
    max_polls: int | None = Field(default=None, ge=1, le=100000)
    max_runtime_s: int | None = Field(default=None, ge=1, le=28 * 24 * 3600)
    # A mix-ratio sweep: several mixes trained in one run, the best kept (mixtune.sweeps).
    sweep: SweepConfig | None = Field(
        default=None, description="arms: domain_percent values or partial mix specs (2 to 8)"
    )

    def prepare_options(self) -> PrepareOptions:
        """The run's data preparation options wherever it is prepared (Lambda or a job): its
        ``prepare`` section, ``max_tokens`` defaulting to the training length."""
        from mixtune.dataprep.report import PrepareOptions  # dataprep: imported when used

        return PrepareOptions.for_training(self.prepare, self.train.max_length)

    @classmethod
    def service_default(cls, settings: Settings) -> RunConfig:
        """The config of a run nobody configured (a dropped file, a schedule): the service's
        ``default_run_config`` with the service defaults filled in."""
        return cls.model_validate(settings.default_run_config).resolved(settings)

    def resolved(self, settings: Settings) -> RunConfig:
        """Service defaults filled in: what a run records and what its execution gets.

        When the poll interval is not given, it is the service's, stretched so that the poll
        budget (``poll_seconds x max_polls``) covers the job budget: long jobs are polled
        less often, which keeps each execution's history short.
        """
        max_polls = self.max_polls or settings.max_polls
        if self.sweep is not None and self.max_polls is None:
            from mixtune.runs.validation import most_polls  # the history rules live there

            max_polls = min(max_polls, most_polls(len(self.sweep.arms)))
        max_runtime_s = self.max_runtime_s or settings.max_runtime_s
        poll_seconds = self.poll_seconds
        if poll_seconds is None:
            poll_seconds = max(settings.poll_seconds, math.ceil(max_runtime_s / max_polls))
        return self.model_copy(
            update={
                "base_model": self.base_model or settings.base_model,
                "backend": self.backend or settings.default_backend,
                "poll_seconds": poll_seconds,
                "max_polls": max_polls,
                "max_runtime_s": max_runtime_s,
            }
        )


class Placement(BaseModel):
    """Where a data step (``prepare``, ``mix``) ran and why: in Lambda, or as a job on the
    run's backend (docs/pipeline.md, "Where data steps run")."""

    runs_on: Literal["lambda", "job"]
    reason: str
    input_bytes: int | None = None


class Lineage(BaseModel):
    """Where a run's inputs and outputs are, with their hashes: enough to reproduce it."""

    model_config = ConfigDict(extra="forbid")

    source_uri: str = ""
    input_sha256: str | None = None
    prepared_uri: str | None = None
    report_uri: str | None = None  # the data preparation's report.json
    output_sha256: dict[str, str] = Field(default_factory=dict)
    manifest_uri: str | None = None
    mixed_uri: str | None = None
    smoke_uri: str | None = None
    train_uri: str | None = None
    adapter_uri: str | None = None
    eval_uris: dict[str, str] = Field(default_factory=dict)
    job_ids: dict[str, str] = Field(default_factory=dict)
    execution_arn: str | None = None
    run_report_uri: str | None = None  # the run's own report page (report.html), once written
    placement: dict[str, Placement] = Field(default_factory=dict)  # step -> where it ran and why


class Failure(BaseModel):
    error: str
    cause: str


class Run(BaseModel):
    """One item of the runs table."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    dataset: str
    status: RunStatus = RunStatus.PENDING
    trigger: Trigger = "s3"
    created_at: str = Field(default_factory=lambda: now_iso())
    updated_at: str = Field(default_factory=lambda: now_iso())
    stage: str | None = None
    config: RunConfig = Field(default_factory=RunConfig)
    lineage: Lineage = Field(default_factory=Lineage)
    summary: str | None = None
    # Before training: the smallest change its eval sets can detect, with a warning when that is
    # more than the gate's budget (mixtune.evaluation.sizing.plan_sizing; written when prepared).
    sizing: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    failure: Failure | None = None
    notified: RunStatus | None = None  # the status last announced on SNS (announced once)


class Baseline(BaseModel):
    """A base model's evaluation, reused by every run with the same baseline key: the same
    scoring setup, eval data (by content), MMLU source and runtime
    (:mod:`mixtune.evaluation.comparability`)."""

    base_model: str
    key: str  # BaselineKey.digest()
    eval_uri: str
    run_id: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=lambda: now_iso())


class Promoted(BaseModel):
    """The adapter of the last run whose gate passed, per base model (re-evaluated on schedule)."""

    base_model: str
    run_id: str
    adapter_uri: str
    train_uri: str
    # Not `dataset`: that name is the by_dataset index key, which must index runs only.
    source_dataset: str
    created_at: str = Field(default_factory=lambda: now_iso())


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


_SLUG = re.compile(r"[^A-Za-z0-9]+")


def dataset_name(key_or_uri: str) -> str:
    """`incoming/support tickets.v2.jsonl` -> `support-tickets-v2`."""
    stem = key_or_uri.rstrip("/").rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    # Short enough that "<run id>-evaluate-baseline" stays a valid 63-character job name.
    return _SLUG.sub("-", stem).strip("-").lower()[:24].strip("-") or "dataset"


def run_id_for_object(bucket: str, key: str, version: str) -> str:
    """Deterministic: the same object version always maps to the same run (and execution name)."""
    digest = hashlib.sha256(f"{bucket}\0{key}\0{version}".encode()).hexdigest()[:16]
    return f"{dataset_name(key)}-{digest}"


def new_run_id(dataset: str) -> str:
    return f"{dataset_name(dataset)}-{uuid.uuid4().hex[:16]}"
