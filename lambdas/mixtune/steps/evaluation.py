"""Steps ``BaselineLookup`` and ``Record``: reuse a cached baseline scored on the same eval data
the same way, then compare the tuned model with the baseline, decide the gate and record it all."""

from __future__ import annotations

from typing import Any

from mixtune import layout, storage
from mixtune.backends.jobs import backend_of, eval_config
from mixtune.evaluation import EvalResult, GatePolicy
from mixtune.evaluation.comparability import BaselineKey, library_versions
from mixtune.evaluation.comparison import compare
from mixtune.evaluation.gate import Verdict
from mixtune.observability import logger, metrics, traced
from mixtune.runs.model import Baseline, Promoted, Run, RunStatus
from mixtune.runs.repository import RunsRepository
from mixtune.settings import Settings, get_settings
from mixtune.steps.state import BaselineLookupOutput, ConfiguredStep, RecordInput, RecordOutput

# How each verdict of the gate ends the run, and the metric that counts it.
VERDICT_STATUS: dict[Verdict, RunStatus] = {
    "PROMOTE": RunStatus.SUCCEEDED,
    "REJECT": RunStatus.REJECTED_BY_GATE,
    "INCONCLUSIVE": RunStatus.INCONCLUSIVE,
}
VERDICT_METRIC: dict[Verdict, str] = {
    "PROMOTE": "RunsPromoted",
    "REJECT": "RunsRejectedByGate",
    "INCONCLUSIVE": "RunsInconclusive",
}


def data_sha256(run: Run, uri: str) -> str:
    """The content hash of an eval file: from the run's lineage for its own eval split (prepare
    recorded it), else read from the file."""
    prepared = run.lineage.prepared_uri
    if prepared and uri == layout.eval_split(prepared) and layout.EVAL_SPLIT in run.lineage.output_sha256:
        return run.lineage.output_sha256[layout.EVAL_SPLIT]
    return storage.sha256_of(uri)


def baseline_key(run: Run, settings: Settings) -> BaselineKey:
    """What decides the baseline's scores, as far as it is known before its job runs
    (:mod:`mixtune.evaluation.comparability`)."""
    config = run.config
    evaluation = eval_config("evaluate_baseline", config, settings, run.lineage.prepared_uri or "", "")
    files = {"domain": evaluation.domain_data, "general": evaluation.general_data}
    return BaselineKey(
        base_model=evaluation.base_model,
        scoring=evaluation.scoring_setup(),
        data_sha256={name: data_sha256(run, uri) for name, uri in files.items() if uri},
        runtime=runtime_key(backend_of(config, settings), config.instance_type or "", settings),
    )


def runtime_key(backend: str, instance_type: str, settings: Settings) -> dict[str, str]:
    """What decides the device and libraries an evaluate job runs with: on a cloud backend the
    instance type and the training image; the local backend's jobs run in this environment, so
    its library versions."""
    runtime = {"backend": backend, "instance_type": instance_type, "image": settings.training_image_uri}
    if backend == "local":
        runtime.update(library_versions())
    return runtime


@traced
def lookup_baseline(step: ConfiguredStep) -> BaselineLookupOutput:
    """Is the base model already scored on this run's eval data, the same way?"""
    repo = RunsRepository.from_settings()
    run = repo.get(step.run_id).model_copy(update={"config": step.config})
    key = baseline_key(run, get_settings())
    digest = key.digest()
    cached = repo.get_baseline(key.base_model, digest)
    logger.info(
        "baseline lookup", extra={"run_id": step.run_id, "baseline_key": digest, "cached": cached is not None}
    )
    return BaselineLookupOutput(
        cached=cached is not None,
        base_model=key.base_model,
        key=digest,
        output_uri=cached.eval_uri.rsplit("/", 1)[0] + "/" if cached else None,
    )


def load_eval(output_uri: str) -> tuple[str, EvalResult]:
    """(URI of eval.json, its result) of an evaluation job's output folder."""
    uri = layout.eval_result(output_uri)
    return uri, EvalResult.from_json(storage.read_bytes(uri))


@traced
def keep_baseline(
    repo: RunsRepository,
    run_id: str,
    lookup: BaselineLookupOutput,
    *,
    cached: bool,
    eval_uri: str,
    scores: dict[str, Any],
    comparable: bool,
) -> None:
    """Cache a freshly scored baseline the gate could compare; drop a cached one it could not."""
    entry = Baseline(
        base_model=lookup.base_model, key=lookup.key, eval_uri=eval_uri, run_id=run_id, metrics=scores
    )
    if not cached and comparable:
        repo.put_baseline(entry)
    elif cached and not comparable:
        # Recorded facts differ from what the key promised (new libraries under the same image
        # tag, an `auto` MMLU source that resolved elsewhere): the next run scores it again.
        dropped = repo.drop_baseline(entry)
        logger.warning("stale cached baseline", extra={"run_id": run_id, "dropped": dropped})


def record(step: RecordInput) -> RecordOutput:
    baseline_uri, baseline = load_eval(step.evaluation.baseline.output_uri)
    tuned_uri, tuned = load_eval(step.evaluation.tuned.output_uri)
    comparison = compare(baseline, tuned, GatePolicy.model_validate(step.config.gate))
    decision = comparison.decision
    run_metrics = comparison.run_metrics(baseline_cached=step.evaluation.baseline.cached)
    repo = RunsRepository.from_settings()
    keep_baseline(
        repo,
        step.run_id,
        step.baseline,
        cached=step.evaluation.baseline.cached,
        eval_uri=baseline_uri,
        scores=comparison.baseline,
        comparable=decision.comparable,
    )
    status = VERDICT_STATUS[decision.verdict]
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
    metrics.add_metric(name=VERDICT_METRIC[decision.verdict], unit="Count", value=1)
    return RecordOutput(
        status=status.value, verdict=decision.verdict, gate_passed=decision.promote, gate=gate
    )
