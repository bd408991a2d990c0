"""The state machine's data between steps: one pydantic model per slot of the execution state.

The ASL passes these objects from task to task (``$.mix``, ``$.smoke``, ``$.train``,
``$.baseline``, ``$.evaluation``); the handlers parse them here, so a renamed field fails
in one place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mixtune.runs.model import RunConfig

JobKind = Literal["prepare", "mix", "smoke", "train", "evaluate_baseline", "evaluate_tuned"]
# Jobs that do a data step (prepare, mix) when its inputs are too large for Lambda.
DataJobKind = Literal["prepare", "mix"]


class _Step(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MixOutput(_Step):
    mixed_uri: str
    manifest_uri: str
    # "job": the Mix function handed the mix to a job (MixLaunch...); the files appear at
    # these URIs when it ends, and MixConclude records them.
    runs_on: Literal["lambda", "job"] = "lambda"
    reason: str = ""


class JobSlot(_Step):
    """A job's place in the execution state: written by launch_job, rewritten by each poll."""

    kind: JobKind
    job: dict[str, Any]
    output_uri: str
    state: str = "PENDING"
    polls: int = 0
    progress: dict[str, Any] | None = None


class BaselineLookupOutput(_Step):
    cached: bool
    base_model: str
    key: str  # the baseline key's digest (mixtune.evaluation.comparability.BaselineKey)
    output_uri: str | None = None  # folder holding eval.json, when cached


class EvaluatedModel(_Step):
    output_uri: str
    cached: bool = False


class Evaluation(_Step):
    baseline: EvaluatedModel
    tuned: EvaluatedModel


class RunStep(_Step):
    run_id: str


class ConfiguredStep(RunStep):
    config: RunConfig = Field(default_factory=RunConfig)


# ---- each step's input and output -----------------------------------------------------------


class MixInput(ConfiguredStep):
    prepared_uri: str
    arm: str | None = None  # a sweep's arm (config.sweep): its mix, under its own folder


class LaunchInput(ConfiguredStep):
    kind: JobKind
    prepared_uri: str
    mix: MixOutput | None = None
    train: JobSlot | None = None
    arm: str | None = None  # a sweep's arm: its jobs and files go under its own key
    source_uri: str = ""  # the prepare job's dataset


class PollInput(RunStep):
    job: JobSlot
    max_polls: int = 720


class ConcludeInput(ConfiguredStep):
    """``PrepareConclude`` / ``MixConclude``: after a data job, read what it wrote into the run."""

    kind: DataJobKind
    prepared_uri: str
    mix: MixOutput | None = None


class PrepareVerdict(_Step):
    """What ``PrepareConclude`` found: the run PREPARED (on to Mix) or REJECTED (announced)."""

    run_id: str
    status: str
    summary: str | None = None


class RecordInput(ConfiguredStep):
    baseline: BaselineLookupOutput
    evaluation: Evaluation
    train: JobSlot


class RecordOutput(_Step):
    status: str
    verdict: str  # the gate's: PROMOTE, REJECT or INCONCLUSIVE (the Gate state routes on it)
    gate_passed: bool
    gate: dict[str, Any]


class StepError(BaseModel):
    """What a Step Functions Catch puts at its ResultPath."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(default="Unknown", alias="Error")
    cause: str = Field(default="", alias="Cause")


class MarkFailedInput(RunStep):
    error: StepError = Field(default_factory=StepError)


class RunStatusOutput(_Step):
    run_id: str
    status: str
    ended_now: bool = False  # MarkFailed: whether this call ended the run


class NotifyOutput(_Step):
    run_id: str
    status: str
    announced: bool  # False: this outcome was announced before (a retry, another path)
    message_id: str | None = None


class NotifyInput(RunStep):
    event: str = "status"
    error: StepError | None = None  # NotifyFailure: the error that ended the run
