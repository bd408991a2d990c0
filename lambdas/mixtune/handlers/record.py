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


def headline_metrics(result: Any) -> dict[str, Any]:
    """The numbers a person compares, from an ``EvalResult``."""
    out: dict[str, Any] = {"config_hash": result.config_hash}
    if result.domain is not None:
        out["domain_task"] = result.domain.task
        out["domain_f1"] = result.domain.headline
        out["domain_n"] = result.domain.n
    if result.mmlu is not None:
        out["mmlu_accuracy"] = result.mmlu.micro_accuracy
        out["mmlu_n"] = result.mmlu.n
    if result.general is not None:
        out["general_loss"] = result.general.loss
    return out


def deltas(baseline: dict[str, Any], tuned: dict[str, Any]) -> dict[str, float]:
    """Tuned minus baseline; F1 and accuracy in points, loss in nats."""
    out: dict[str, float] = {}
    for key, name, scale in (
        ("domain_f1", "domain_f1_points", 100.0),
        ("mmlu_accuracy", "mmlu_points", 100.0),
        ("general_loss", "general_loss", 1.0),
    ):
        if key in baseline and key in tuned:
            out[name] = round(scale * (tuned[key] - baseline[key]), 6)
    return out


def _load_eval(output_uri: str) -> tuple[str, Any]:
    from mixtune import storage
    from mixtune.evaluation import EvalResult

    uri = storage.join(output_uri, "eval.json")
    return uri, EvalResult.from_json(storage.read_bytes(uri))


@traced
def record(step: RecordInput) -> RecordOutput:
    from mixtune.evaluation import GatePolicy, decide_gate
    from mixtune.runs.model import Baseline, Promoted, RunStatus

    baseline_uri, baseline = _load_eval(step.evaluation.baseline.output_uri)
    tuned_uri, tuned = _load_eval(step.evaluation.tuned.output_uri)
    decision = decide_gate(baseline, tuned, GatePolicy.model_validate(step.config.gate))
    base_numbers, tuned_numbers = headline_metrics(baseline), headline_metrics(tuned)
    run_metrics = {
        "baseline": base_numbers,
        "tuned": tuned_numbers,
        "deltas": deltas(base_numbers, tuned_numbers),
        "baseline_cached": step.evaluation.baseline.cached,
    }
    repo = repository()
    if not step.evaluation.baseline.cached:
        repo.put_baseline(
            Baseline(
                base_model=step.baseline.base_model,
                eval_config_hash=step.baseline.eval_config_hash,
                eval_uri=baseline_uri,
                run_id=step.run_id,
                metrics=base_numbers,
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
