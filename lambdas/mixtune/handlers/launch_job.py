"""Steps `*Launch`: submit a smoke-training, training or evaluation job to the run's backend."""

from __future__ import annotations

from typing import Any

from mixtune.handlers.common import as_transient, lambda_entry, logger, metrics, repository, traced
from mixtune.handlers.steps import ConfiguredStep, JobKind, JobSlot, MixOutput

_LINEAGE_FIELD = {"smoke": "smoke_uri", "train": "train_uri"}


class LaunchInput(ConfiguredStep):
    kind: JobKind
    prepared_uri: str
    mix: MixOutput | None = None
    train: JobSlot | None = None


@traced
def launch(step: LaunchInput) -> JobSlot:
    from mixtune.backends import get_backend
    from mixtune.handlers.jobs import backend_of, job_spec
    from mixtune.runs.model import RunStatus
    from mixtune.settings import get_settings

    settings = get_settings()
    spec = job_spec(step.run_id, step.kind, step.config, settings, step.prepared_uri, step.mix, step.train)
    backend = get_backend(backend_of(step.config, settings), settings)
    try:
        ref = backend.submit(spec)
    except Exception as exc:
        raise as_transient(exc) from exc
    repo = repository()
    run = repo.get(step.run_id)
    lineage: dict[str, Any] = {"job_ids": {**run.lineage.job_ids, step.kind: ref.id}}
    if step.kind in _LINEAGE_FIELD:
        lineage[_LINEAGE_FIELD[step.kind]] = spec.output_uri
    else:
        lineage["eval_uris"] = {**run.lineage.eval_uris, step.kind: spec.output_uri}
    if step.kind == "train":
        lineage["adapter_uri"] = spec.output_uri.rstrip("/") + "/adapter"
    repo.transition(step.run_id, RunStatus.RUNNING, stage=step.kind, lineage=lineage)
    logger.info("job submitted", extra={"run_id": step.run_id, "kind": step.kind, "job_id": ref.id})
    metrics.add_metric(name="JobsLaunched", unit="Count", value=1)
    return JobSlot(kind=step.kind, job=ref.model_dump(mode="json"), output_uri=spec.output_uri)


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return launch(LaunchInput.model_validate(event)).model_dump(mode="json")
