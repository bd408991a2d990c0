"""The states of a sweep (``config.sweep``): an arm's mix and jobs, then ``RecordSweep``: each
arm against the baseline, the frontier, the choice, the costs, all recorded and the chosen
adapter promoted.

An arm's Mix and launches are the run's own functions (``mix``, ``launch_job``) given the arm's
id; its files and jobs go under ``<run id>-<arm>`` (:func:`mixtune.sweeps.config.arm_run_key`),
its figures into its own item of the runs table (:class:`mixtune.sweeps.model.ArmRecord`).
"""

from __future__ import annotations

import json
from typing import Any

from mixtune import layout, storage
from mixtune.backends import get_backend
from mixtune.backends.jobs import backend_of, job_spec
from mixtune.errors import IllegalTransition, MixtuneError, retryable_aws_errors
from mixtune.evaluation import EvalResult, GatePolicy
from mixtune.evaluation.comparison import Comparison, compare
from mixtune.evaluation.selection import ArmScores, Selection, arm_scores, ranks_on_mmlu, select_arm
from mixtune.observability import logger, metrics, traced
from mixtune.runs.model import Promoted
from mixtune.runs.repository import RunsRepository
from mixtune.settings import Settings, get_settings
from mixtune.steps.evaluation import VERDICT_METRIC, VERDICT_STATUS, keep_baseline
from mixtune.steps.state import (
    BaselineLookupOutput,
    ConfiguredStep,
    EvaluatedModel,
    JobSlot,
    LaunchInput,
    MixInput,
    MixOutput,
    RecordOutput,
    StepError,
    _Step,
)
from mixtune.sweeps.config import SweepConfig, arm_mix_fields, arm_run_key, general_percent
from mixtune.sweeps.cost import job_usd, sweep_cost
from mixtune.sweeps.model import ArmRecord


class SweepArmsFailed(MixtuneError):
    """More arms of a sweep failed than it tolerates (``config.sweep.tolerated_failure_percent``),
    or all of them; the message names every failed arm and its cause."""


class ArmOutcome(_Step):
    """What one iteration of the ``SweepArms`` Map returns: the arm's slots, or the error that
    ended it (its Catch)."""

    arm: str
    mix: MixOutput | None = None
    train: JobSlot | None = None
    tuned: JobSlot | None = None
    error: StepError | None = None


class SweepEvaluation(_Step):
    baseline: EvaluatedModel
    arms: list[ArmOutcome]


class SweepRecordInput(ConfiguredStep):
    baseline: BaselineLookupOutput
    evaluation: SweepEvaluation


def sweep_of(step: ConfiguredStep) -> SweepConfig:
    if step.config.sweep is None:
        raise ValueError(f"run {step.run_id} is not a sweep (config.sweep is not set)")
    return step.config.sweep


# ---- an arm's Mix and launches ---------------------------------------------------------------


def arm_mix(step: MixInput) -> tuple[dict[str, Any], str]:
    """(the arm's mix fields, the key its folder goes under); records the arm's item."""
    assert step.arm is not None
    arm = sweep_of(step).arm(step.arm)
    fields = arm_mix_fields(step.config.mix, arm)
    RunsRepository.from_settings().put_arm(
        step.run_id,
        arm.arm,
        label=arm.label,
        mix=arm.mix,
        general_percent=general_percent(arm.mix, step.config.mix),
        arm_status="RUNNING",
        stage="mix",
    )
    return fields, arm_run_key(step.run_id, arm.arm)


def launch_arm(step: LaunchInput, settings: Settings) -> JobSlot:
    """Submit an arm's job (its smoke run, training or evaluation) under the arm's key; the job id
    goes into the run's lineage (``<arm>/<step>``: MarkFailed stops it with the rest)."""
    assert step.arm is not None
    arm = sweep_of(step).arm(step.arm)
    spec = job_spec(
        arm_run_key(step.run_id, arm.arm),
        step.kind,
        step.config,
        settings,
        step.prepared_uri,
        step.mix,
        step.train,
    )
    spec = spec.model_copy(update={"environment": {**spec.environment, "MIXTUNE_ARM": arm.arm}})
    backend = get_backend(backend_of(step.config, settings), settings)
    with retryable_aws_errors():
        ref = backend.submit(spec)
    repo = RunsRepository.from_settings()
    try:
        repo.add_job(step.run_id, f"{arm.arm}/{step.kind}", ref.id, stage=f"{step.kind} {arm.arm}")
    except IllegalTransition:
        backend.cancel(ref)  # the run ended meanwhile (another branch failed)
        raise
    if step.kind == "smoke":
        repo.update(step.run_id, lineage={"smoke_uri": spec.output_uri})
    elif step.kind == "train":
        repo.put_arm(
            step.run_id,
            arm.arm,
            stage="train",
            train_uri=spec.output_uri,
            adapter_uri=layout.adapter(spec.output_uri),
            nodes=spec.node_count,
            instance_type=spec.instance_type,
        )
    else:
        repo.put_arm(step.run_id, arm.arm, stage=step.kind, eval_uri=layout.eval_result(spec.output_uri))
    logger.info(
        "arm job submitted",
        extra={"run_id": step.run_id, "arm": arm.arm, "kind": step.kind, "job_id": ref.id},
    )
    metrics.add_metric(name="JobsLaunched", unit="Count", value=1)
    return JobSlot(kind=step.kind, job=ref.model_dump(mode="json"), output_uri=spec.output_uri)


# ---- RecordSweep ------------------------------------------------------------------------------


def _wall_seconds(uri: str) -> float | None:
    """A job's own wall time (``wall_time_s`` of its metrics.json or eval.json), None when absent."""
    try:
        value = json.loads(storage.read_bytes(uri)).get("wall_time_s")
    except Exception:  # a job that wrote no metrics: its time is unknown, not an error
        return None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _readable(error: StepError) -> str:
    from mixtune.steps.outcome import readable_cause

    return readable_cause(error)


def _failure_message(sweep: SweepConfig, failed: list[ArmOutcome]) -> str:
    parts = []
    for outcome in failed:
        label = sweep.arm(outcome.arm).label
        error = outcome.error or StepError(error="NoResult", cause="the arm returned no evaluation")
        parts.append(f"{outcome.arm} ({label}): {error.error}: {_readable(error)[:600]}")
    return "; ".join(parts)


def _arm_row(
    record: ArmRecord | None, scores: ArmScores | None, comparison: Comparison | None, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {**extra}
    if record is not None:
        row.update(label=record.label, general_percent=record.general_percent, mix=record.mix)
    if comparison is not None:
        row.update(
            {k: v for k, v in comparison.tuned.items() if k != "config_hash"},
            deltas=comparison.deltas,
            delta_intervals=comparison.intervals_as_json(),
            verdict=comparison.decision.verdict,
            gate_reasons=comparison.decision.reasons,
        )
    if scores is not None:
        row["general_score"] = scores.general
    return row


@traced
def record_sweep(step: SweepRecordInput) -> RecordOutput:
    settings = get_settings()
    sweep = sweep_of(step)
    repo = RunsRepository.from_settings()
    policy = GatePolicy.model_validate(step.config.gate)
    outcomes = {outcome.arm: outcome for outcome in step.evaluation.arms}
    failed = [
        outcomes.get(a.arm) or ArmOutcome(arm=a.arm)
        for a in sweep.arms
        if outcomes.get(a.arm) is None or outcomes[a.arm].tuned is None
    ]
    for outcome in failed:
        error = outcome.error or StepError(error="NoResult", cause="the arm returned no evaluation")
        repo.put_arm(
            step.run_id,
            outcome.arm,
            arm_status="FAILED",
            failure={"error": error.error, "cause": _readable(error)[:2000]},
        )
        # Not stopped here: a failed job has ended, and one past its poll budget is past its own
        # max_runtime_s too (the poll budget covers it), which the backend enforces.
    share = 100.0 * len(failed) / len(sweep.arms)
    if len(failed) == len(sweep.arms) or share > sweep.tolerated_failure_percent:
        raise SweepArmsFailed(
            f"{len(failed)} of {len(sweep.arms)} arms failed (tolerated: {sweep.tolerated_failure_percent:g}%): "
            + _failure_message(sweep, failed)
        )

    baseline_uri = layout.eval_result(step.evaluation.baseline.output_uri)
    baseline = EvalResult.from_json(storage.read_bytes(baseline_uri))
    records = {record.arm: record for record in repo.get_arms(step.run_id, [a.arm for a in sweep.arms])}
    comparisons: dict[str, Comparison] = {}
    tuned_uris: dict[str, str] = {}
    for arm in sweep.arms:
        outcome = outcomes.get(arm.arm)
        if outcome is None or outcome.tuned is None:
            continue
        tuned_uris[arm.arm] = layout.eval_result(outcome.tuned.output_uri)
        tuned = EvalResult.from_json(storage.read_bytes(tuned_uris[arm.arm]))
        comparisons[arm.arm] = compare(baseline, tuned, policy)
    use_mmlu = ranks_on_mmlu([c.tuned for c in comparisons.values()], policy)
    scores = {
        arm_id: arm_scores(
            arm_id,
            sweep.arm(arm_id).label,
            general_percent(sweep.arm(arm_id).mix, step.config.mix),
            comparison.tuned,
            comparison.decision,
            use_mmlu,
        )
        for arm_id, comparison in comparisons.items()
    }
    selection = select_arm(list(scores.values()))

    # What each arm's jobs took and cost; the shared smoke run and baseline evaluation apart.
    run = repo.get(step.run_id)
    arm_usd: dict[str, float | None] = {}
    arm_seconds: dict[str, dict[str, float]] = {}
    instance_type = "ml.g5.xlarge"
    for arm_id in comparisons:
        outcome, record = outcomes[arm_id], records.get(arm_id)
        seconds = {
            "train": _wall_seconds(layout.train_metrics(outcome.train.output_uri)) if outcome.train else None,
            "evaluate_tuned": _wall_seconds(tuned_uris[arm_id]),
        }
        arm_seconds[arm_id] = {k: v for k, v in seconds.items() if v is not None}
        nodes = record.nodes if record else 1
        instance_type = (record.instance_type if record else None) or instance_type
        train_usd = job_usd(seconds["train"] or 0.0, nodes, instance_type, settings.instance_prices)
        eval_usd = job_usd(seconds["evaluate_tuned"] or 0.0, 1, instance_type, settings.instance_prices)
        arm_usd[arm_id] = None if train_usd is None or eval_usd is None else round(train_usd + eval_usd, 4)
    shared = {
        "smoke": _wall_seconds(layout.train_metrics(run.lineage.smoke_uri))
        if run.lineage.smoke_uri
        else None,
        "evaluate_baseline": None if step.evaluation.baseline.cached else _wall_seconds(baseline_uri),
    }
    shared_seconds = {k: v for k, v in shared.items() if v is not None}
    cost = sweep_cost(instance_type, arm_usd, sum(shared_seconds.values()), settings.instance_prices)

    keep_baseline(
        repo,
        step.run_id,
        step.baseline,
        cached=step.evaluation.baseline.cached,
        eval_uri=baseline_uri,
        scores=next(iter(comparisons.values())).baseline,
        comparable=all(c.decision.comparable for c in comparisons.values()),
    )
    for arm_id, comparison in comparisons.items():
        repo.put_arm(
            step.run_id,
            arm_id,
            arm_status="SUCCEEDED",
            stage="record",
            metrics={"tuned": comparison.tuned, "deltas": comparison.deltas},
            gate=comparison.decision.model_dump(mode="json"),
            job_seconds=arm_seconds[arm_id],
            cost_usd=arm_usd[arm_id],
            chosen=arm_id == selection.chosen,
            on_frontier=arm_id in selection.frontier,
        )

    # The run's headline is the chosen arm (or, refused, the frontier's best domain score): the
    # report's and the message's base-vs-tuned figures are that arm's.
    headline = selection.chosen or (selection.frontier[0] if selection.frontier else next(iter(comparisons)))
    comparison = comparisons[headline]
    outcome = outcomes[headline]
    arm_rows = []
    for arm in sweep.arms:
        record = records.get(arm.arm)
        status = "SUCCEEDED" if arm.arm in comparisons else "FAILED"
        extra: dict[str, Any] = {
            "arm": arm.arm,
            "label": arm.label,
            "status": status,
            "general_percent": general_percent(arm.mix, step.config.mix),
            "job_seconds": arm_seconds.get(arm.arm, {}),
            "cost_usd": arm_usd.get(arm.arm),
            "on_frontier": arm.arm in selection.frontier,
            "chosen": arm.arm == selection.chosen,
        }
        if status == "FAILED":
            error = outcomes[arm.arm].error if arm.arm in outcomes else None
            extra["failure"] = {"error": error.error, "cause": _readable(error)[:500]} if error else None
        arm_rows.append(_arm_row(record, scores.get(arm.arm), comparisons.get(arm.arm), **extra))
    sweep_metrics = {
        "arms": arm_rows,
        "frontier": selection.frontier,
        "passing": selection.passing,
        "chosen": selection.chosen,
        "headline_arm": headline,
        "verdict": selection.verdict,
        "reasons": selection.reasons,
        "general_score": "mmlu_accuracy" if use_mmlu else "general_loss",
        "shared_job_seconds": shared_seconds,
        "cost": {**cost.model_dump(mode="json"), "saved_usd": cost.saved_usd},
    }
    run_metrics = {
        **comparison.run_metrics(baseline_cached=step.evaluation.baseline.cached),
        "sweep": sweep_metrics,
    }
    promote = selection.chosen is not None
    gate = _sweep_gate(comparison, selection, promote)
    adapter_uri = layout.adapter(outcome.train.output_uri) if outcome.train else None
    record = records.get(headline)
    lineage = {
        "eval_uris": {"baseline": baseline_uri, "tuned": tuned_uris[headline]},
        "adapter_uri": adapter_uri,
        "train_uri": outcome.train.output_uri if outcome.train else None,
        "manifest_uri": (outcome.mix.manifest_uri if outcome.mix else None)
        or (record.manifest_uri if record else None),
        "mixed_uri": (outcome.mix.mixed_uri if outcome.mix else None)
        or (record.mixed_uri if record else None),
    }
    status = VERDICT_STATUS[selection.verdict]
    run = repo.transition(
        step.run_id,
        status,
        stage="record",
        metrics=run_metrics,
        gate=gate,
        summary=("sweep: " + "; ".join(selection.reasons))[:1000],
        lineage={k: v for k, v in lineage.items() if v is not None},
    )
    if promote and adapter_uri and outcome.train:
        repo.set_promoted(
            Promoted(
                base_model=step.baseline.base_model,
                run_id=step.run_id,
                adapter_uri=adapter_uri,
                train_uri=outcome.train.output_uri,
                source_dataset=run.dataset,
            )
        )
    logger.info(
        "sweep recorded",
        extra={
            "run_id": step.run_id,
            "status": status.value,
            "chosen": selection.chosen,
            "failed": len(failed),
        },
    )
    metrics.add_metric(name=VERDICT_METRIC[selection.verdict], unit="Count", value=1)
    return RecordOutput(status=status.value, verdict=selection.verdict, gate_passed=promote, gate=gate)


def _sweep_gate(comparison: Comparison, selection: Selection, promote: bool) -> dict[str, Any]:
    """The run's gate: the headline arm's decision, the choice's reasons first."""
    decision = comparison.decision.model_dump(mode="json")
    decision["reasons"] = [*selection.reasons, *decision.get("reasons", [])]
    decision.update(verdict=selection.verdict, promote=promote)
    return decision
