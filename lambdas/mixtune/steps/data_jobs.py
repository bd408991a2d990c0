"""Steps ``PrepareConclude`` and ``MixConclude``: after a prepare or mix job (a data step too
large for Lambda), what the job wrote goes into the run, as the Lambda path would have put it."""

from __future__ import annotations

import json

from mixtune import layout, storage
from mixtune.observability import traced
from mixtune.runs.lifecycle import conclude_prepare_job
from mixtune.runs.model import Placement
from mixtune.runs.repository import RunsRepository
from mixtune.settings import get_settings
from mixtune.steps.mix import record_mix
from mixtune.steps.state import ConcludeInput, MixOutput, PrepareVerdict


@traced
def conclude(step: ConcludeInput) -> PrepareVerdict | MixOutput:
    """The prepare job's verdict (PREPARED goes on to Mix; REJECTED is announced and the
    execution ends), or the mix job's files and hash."""
    if step.kind == "prepare":
        run = conclude_prepare_job(step.run_id)
        return PrepareVerdict(run_id=run.run_id, status=run.status.value, summary=run.summary)
    return conclude_mix_job(step.run_id)


def conclude_mix_job(run_id: str) -> MixOutput:
    run = RunsRepository.from_settings().get(run_id)
    folder = layout.mix_folder(get_settings().work_bucket, run_id)
    manifest = json.loads(storage.read_bytes(layout.mix_manifest(folder)))
    placement = run.lineage.placement.get("mix") or Placement(runs_on="job", reason="mixed by a job")
    return record_mix(run, folder, str(manifest["output"]["sha256"]), placement)
