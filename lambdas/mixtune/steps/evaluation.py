"""Steps ``BaselineLookup`` and ``Record``: reuse a cached baseline, then compare the tuned
model with the baseline, decide the gate and record it all."""

from __future__ import annotations

from mixtune import layout, storage
from mixtune.backends.jobs import base_model_of
from mixtune.evaluation import EvalResult, GatePolicy
from mixtune.evaluation.comparison import compare
from mixtune.observability import logger, metrics, traced
from mixtune.runs.model import Baseline, Promoted, RunStatus
from mixtune.runs.repository import RunsRepository
from mixtune.settings import get_settings
from mixtune.steps.state import BaselineLookupOutput, ConfiguredStep, RecordInput, RecordOutput


@traced
def lookup_baseline(step: ConfiguredStep) -> BaselineLookupOutput:
    """Is the base model already scored under this eval config?"""
    base_model = base_model_of(step.config, get_settings())
    config_hash = step.config.evaluation.config_hash()
    cached = RunsRepository.from_settings().get_baseline(base_model, config_hash)
    logger.info("baseline lookup", extra={"run_id": step.run_id, "cached": cached is not None})
    return BaselineLookupOutput(
        cached=cached is not None,
        base_model=base_model,
        eval_config_hash=config_hash,
        output_uri=cached.eval_uri.rsplit("/", 1)[0] + "/" if cached else None,
    )


def load_eval(output_uri: str) -> tuple[str, EvalResult]:
    """(URI of eval.json, its result) of an evaluation job's output folder."""
    uri = layout.eval_result(output_uri)
    return uri, EvalResult.from_json(storage.read_bytes(uri))


@traced
def record(step: RecordInput) -> RecordOutput:
    baseline_uri, baseline = load_eval(step.evaluation.baseline.output_uri)
    tuned_uri, tuned = load_eval(step.evaluation.tuned.output_uri)
    comparison = compare(baseline, tuned, GatePolicy.model_validate(step.config.gate))
    decision = comparison.decision
    run_metrics = comparison.run_metrics(baseline_cached=step.evaluation.baseline.cached)
    repo = RunsRepository.from_settings()
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
    adapter_uri = layout.adapter(step.train.output_uri)
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
