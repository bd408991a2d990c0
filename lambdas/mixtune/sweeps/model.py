"""What a sweep records of each arm: one item per arm in the runs table, beside the run's own
(``arm#<run id>#<arm>``), written by the arm's own states (Mix, the launches) and by RecordSweep."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ArmStatus = Literal["RUNNING", "SUCCEEDED", "FAILED"]
# Fields of an arm item a write may set.
ARM_FIELDS = (
    "label",
    "mix",
    "general_percent",
    "arm_status",
    "stage",
    "manifest_uri",
    "mixed_uri",
    "train_uri",
    "adapter_uri",
    "eval_uri",
    "job_ids",
    "metrics",
    "gate",
    "job_seconds",
    "nodes",
    "instance_type",
    "cost_usd",
    "failure",
    "chosen",
    "on_frontier",
)


class ArmRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    arm: str
    label: str = ""
    mix: dict[str, Any] = Field(default_factory=dict)
    general_percent: float = 0.0
    # Not `status`: that name is the by_status index key, which must index runs only.
    arm_status: ArmStatus = "RUNNING"
    stage: str | None = None
    manifest_uri: str | None = None
    mixed_uri: str | None = None
    train_uri: str | None = None
    adapter_uri: str | None = None
    eval_uri: str | None = None
    job_ids: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Any] | None = None  # tuned, deltas, delta_intervals (as a run's)
    gate: dict[str, Any] | None = None
    job_seconds: dict[str, float] = Field(default_factory=dict)  # train, evaluate_tuned
    nodes: int = 1
    instance_type: str | None = None
    cost_usd: float | None = None
    failure: dict[str, str] | None = None
    chosen: bool = False
    on_frontier: bool = False
    updated_at: str | None = None
