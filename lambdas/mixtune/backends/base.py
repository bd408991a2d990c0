"""The training-backend contract: job spec, job reference, status, errors, registry.

Every backend (``local``, ``sagemaker``, ``hyperpod``) runs the same entry points of the
training image (:data:`ENTRY_MODULES`) and answers the same three calls:

- ``submit(spec: JobSpec) -> JobRef``: start the job. Idempotent on ``spec.job_name``: a
  second submit of a name that already exists returns a reference to the existing job.
- ``status(ref: JobRef) -> JobStatus``: where the job is (``JobState``), why it failed, and
  the latest training progress where the job has written any.
- ``cancel(ref: JobRef) -> None``: stop the job; cancelling a finished job is a no-op.

A ``JobRef`` is plain JSON (``ref.model_dump(mode="json")`` / ``JobRef.model_validate(d)``)
because it travels through the Step Functions state between the launch and poll Lambdas.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mixtune import errors
from mixtune.instances import INSTANCE_TYPES, find_instance_type
from mixtune.settings import Settings

EntryPoint = Literal["train", "evaluate", "generate-rehearsal", "prepare", "mix"]

# Entry point -> Python module of the training image (``python -m <module>``). A dict, not a
# function, so tests can point an entry point at a tiny stand-in module.
ENTRY_MODULES: dict[str, str] = {
    "train": "mixtune_training.train",
    "evaluate": "mixtune_training.evaluate",
    "generate-rehearsal": "mixtune_training.generate_rehearsal",
    # The data steps of inputs too large for Lambda: `mixtune prepare` and `mixtune mix`.
    "prepare": "mixtune.commands.prepare",
    "mix": "mixtune.commands.mix",
}
# Entry points that run as one process on one node (one GPU, none for the data steps); only
# training spans GPUs and nodes.
SINGLE_PROCESS_ENTRY_POINTS = frozenset({"evaluate", "generate-rehearsal", "prepare", "mix"})

# Kubernetes object names (DNS-1123 labels) are the strictest of the three backends; SageMaker
# training job names accept all of them too.
JOB_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
JOB_NAME_MAX = 63
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BackendError(errors.MixtuneError):
    """A job could not be submitted, read or cancelled; the message says why."""


class TransientError(BackendError, errors.TransientError):
    """A failure worth retrying (throttling, 5xx, connection errors).

    Also a :class:`mixtune.errors.TransientError` and of the same name, which is the Lambda
    ``errorType`` the state machine's ``Retry`` matches.
    """


class BackendPermissionError(BackendError):
    """The caller's role may not do this (HTTP 401/403, AccessDenied)."""


class JobNotFoundError(BackendError):
    """The job named by a reference does not exist (any more)."""


class JobState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


def job_name_for(*parts: str) -> str:
    """A valid job name from free text (run id, step, attempt): lowercase, dashes, <= 63 chars.

    Names that must be shortened keep a hash of the full text, so distinct inputs stay distinct.
    """
    text = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "job"
    if len(name) > JOB_NAME_MAX or name != text:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        name = f"{name[: JOB_NAME_MAX - 9].rstrip('-')}-{digest}"
    return name


class JobSpec(BaseModel):
    """What to run, where, with which resources. One spec runs on every backend."""

    model_config = ConfigDict(extra="forbid")

    job_name: str = Field(description="Unique job name (DNS-1123 label, <= 63 chars); see job_name_for.")
    entry_point: EntryPoint
    arguments: list[str] = Field(default_factory=list, description="Arguments of the entry point.")
    image_uri: str = Field(default="", description="Training image (sagemaker, hyperpod).")
    instance_type: str = "ml.g5.xlarge"
    node_count: int = Field(default=1, ge=1)
    gpus_per_node: int | None = Field(
        default=None,
        ge=0,
        description="GPUs per node; default: every GPU of the instance type for training, one otherwise.",
    )
    environment: dict[str, str] = Field(default_factory=dict)
    # Named input locations (local path or s3://); a list is accepted and named input_0, input_1...
    input_uris: dict[str, str] = Field(default_factory=dict)
    output_uri: str = Field(default="", description="Where the job writes its outputs (progress.jsonl too).")
    checkpoint_uri: str = Field(
        default="", description="Durable checkpoint place (s3:// prefix) a restarted job resumes from."
    )
    max_runtime_s: int = Field(default=24 * 3600, ge=1)  # SageMaker's MaxRuntimeInSeconds minimum
    # Retries of the whole job after infrastructure failures (HyperPod auto-resume, SageMaker
    # RetryStrategy); the local backend never retries.
    max_retries: int = Field(default=0, ge=0, le=30)
    queue: str | None = Field(default=None, description="Kueue LocalQueue (hyperpod).")
    priority: str | None = Field(default=None, description="Kueue WorkloadPriorityClass (hyperpod).")

    @field_validator("job_name")
    @classmethod
    def _valid_job_name(cls, value: str) -> str:
        if len(value) > JOB_NAME_MAX or not JOB_NAME_PATTERN.match(value):
            raise ValueError(
                f"job name {value!r} must be 1-63 lowercase letters, digits or '-', starting and "
                "ending alphanumeric (use mixtune.backends.job_name_for to derive one)"
            )
        return value

    @field_validator("input_uris", mode="before")
    @classmethod
    def _name_listed_inputs(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return {f"input_{i}": uri for i, uri in enumerate(value)}
        return value

    @field_validator("environment", "input_uris")
    @classmethod
    def _valid_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not _ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"names must be letters, digits and '_' (not starting with a digit): {bad}")
        return value

    @model_validator(mode="after")
    def _single_process_on_one_node(self) -> JobSpec:
        if not self.distributed and self.node_count > 1:
            raise ValueError(f"{self.entry_point} runs as one process: node_count must be 1")
        return self

    @property
    def module(self) -> str:
        return ENTRY_MODULES[self.entry_point]

    @property
    def distributed(self) -> bool:
        """One process per GPU on every node (training), or a single process (the others)."""
        return self.entry_point not in SINGLE_PROCESS_ENTRY_POINTS

    def gpus(self) -> int:
        """GPUs each node gives the job: ``gpus_per_node``, else the instance type's (training)
        or one of them (single-process entry points)."""
        shape = find_instance_type(self.instance_type)
        if self.gpus_per_node is not None:
            if shape is not None and self.gpus_per_node > shape.gpus:
                raise BackendError(
                    f"{shape.name} has {shape.gpus} GPU(s); gpus_per_node is {self.gpus_per_node}"
                )
            return self.gpus_per_node
        if shape is None:
            raise BackendError(
                f"unknown instance type {self.instance_type!r}: set gpus_per_node, or use one of "
                f"{', '.join(sorted(INSTANCE_TYPES))}"
            )
        return shape.gpus if self.distributed else min(shape.gpus, 1)

    def processes_per_node(self) -> int:
        return max(self.gpus(), 1) if self.distributed else 1

    def job_environment(self, checkpoint_uri: bool = True) -> dict[str, str]:
        """The spec's environment plus the job's locations, so code in the job can find them.

        ``MIXTUNE_CHECKPOINT_URI`` is the checkpoint contract of the training image, for backends
        that leave syncing to the job (``checkpoint_uri=False`` where the platform syncs)."""
        env = {"MIXTUNE_JOB_NAME": self.job_name}
        if self.output_uri:
            env["MIXTUNE_OUTPUT_URI"] = self.output_uri
        if self.checkpoint_uri and checkpoint_uri:
            env["MIXTUNE_CHECKPOINT_URI"] = self.checkpoint_uri
        for name, uri in self.input_uris.items():
            env[f"MIXTUNE_INPUT_{name.upper()}_URI"] = uri
        env.update(self.environment)
        return env


class JobRef(BaseModel):
    """A submitted job: which backend, its id there, and what that backend needs to find it again."""

    model_config = ConfigDict(frozen=True)

    backend: str
    id: str
    data: dict[str, Any] = Field(default_factory=dict, description="Backend-specific, JSON only.")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, value: dict[str, Any] | str) -> JobRef:
        return cls.model_validate(json.loads(value) if isinstance(value, str) else value)


class JobStatus(BaseModel):
    state: JobState
    reason: str | None = None
    # The last line of the job's progress.jsonl (e.g. {"step": 40, "loss": 1.23}), where known.
    progress: dict[str, Any] | None = None


@runtime_checkable
class TrainingBackend(Protocol):
    name: str

    def submit(self, spec: JobSpec) -> JobRef: ...

    def status(self, ref: JobRef) -> JobStatus: ...

    def cancel(self, ref: JobRef) -> None: ...


BackendFactory = Callable[[Settings], TrainingBackend]
_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Add (or replace) a backend: tests plug in fakes this way."""
    _REGISTRY[name] = factory


def unregister_backend(name: str) -> None:
    _REGISTRY.pop(name, None)


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(name: str, settings: Settings | None = None) -> TrainingBackend:
    """The backend registered under ``name``, built with ``settings`` (default: the environment's)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise BackendError(
            f"unknown training backend {name!r}; known: {', '.join(backend_names())}"
        ) from None
    if settings is None:
        from mixtune.settings import get_settings

        settings = get_settings()
    return factory(settings)


def check_ref(ref: JobRef, backend: str) -> None:
    if ref.backend != backend:
        raise BackendError(f"job {ref.id!r} belongs to backend {ref.backend!r}, not {backend!r}")


def read_progress(output_uri: str) -> dict[str, Any] | None:
    """The last JSON line of ``<output_uri>/progress.jsonl``; None when absent or unreadable.

    Best effort: progress is informative, so a read problem never fails a status call.
    """
    if not output_uri:
        return None
    from mixtune import layout, storage

    uri = layout.progress(output_uri)
    try:
        if not storage.exists(uri):
            return None
        lines = storage.read_bytes(uri).decode("utf-8", "replace").splitlines()
    except Exception:
        return None
    for line in reversed(lines):
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        if isinstance(value, dict):
            return value
    return None
