"""Step `Record`: read both eval.json files, compute deltas, decide the gate, store it all."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mixtune.handlers.common import lambda_entry, logger, metrics, repository, traced
from mixtune.handlers.steps import BaselineLookupOutput, ConfiguredStep, Evaluation, JobSlot


class RecordInput(ConfiguredStep):
    baseline: BaselineLookupOutput
    evaluation: Evaluation
    train: JobSlot


class RecordOutput(BaseModel):
    status: str
    gate_passed: bool
    gate: dict[str, Any]


def _load_eval(output_uri: str) -> tuple[str, Any]:
    from mixtune import storage
    from mixtune.evaluation import EvalResult

    uri = storage.join(output_uri, "eval.json")
    return uri, EvalResult.from_json(storage.read_bytes(uri))


@traced
def record(step: RecordInput) -> RecordOutput:
    from mixtune.evaluation import GatePolicy
    from mixtune.evaluation.comparison import compare
    from mixtune.runs.model import Baseline, Promoted, RunStatus

    baseline_uri, baseline = _load_eval(step.evaluation.baseline.output_uri)
    tuned_uri, tuned = _load_eval(step.evaluation.tuned.output_uri)
    comparison = compare(baseline, tuned, GatePolicy.model_validate(step.config.gate))
    decision = comparison.decision
    run_metrics = comparison.run_metrics(baseline_cached=step.evaluation.baseline.cached)
    repo = repository()
    if not step.evaluation.baseline.cached:
        repo.put_baseline(
            Baseline(
                base_model=step.baseline.base_model,
                eval_config_hash=step.baseline.eval_config_hash,
                eval_uri=baseline_uri,
                run_id=step.run_id,
                metrics=comparison.baseline,
            )
        )
    status = RunStatus.SUCCEEDED if decision.promote else RunStatus.REJECTED_BY_GATE
    gate = decision.model_dump(mode="json")
    adapter_uri = step.train.output_uri.rstrip("/") + "/adapter"
    run = repo.transition(
        step.run_id,
        status,
        stage="record",
        metrics=run_metrics,
        gate=gate,
        summary=decision.summary(),
        lineage={"eval_uris": {"baseline": baseline_uri, "tuned": tuned_uri}, "adapter_uri": adapter_uri},
    )
    if decision.promote:
        repo.set_promoted(
            Promoted(
                base_model=step.baseline.base_model,
                run_id=step.run_id,
                adapter_uri=adapter_uri,
                train_uri=step.train.output_uri,
                source_dataset=run.dataset,
            )
        )
    logger.info("recorded", extra={"run_id": step.run_id, "status": status.value, **run_metrics["deltas"]})
    metrics.add_metric(
        name="RunsPromoted" if decision.promote else "RunsRejectedByGate", unit="Count", value=1
    )
    return RecordOutput(status=status.value, gate_passed=decision.promote, gate=gate)


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return record(RecordInput.model_validate(event)).model_dump(mode="json")
