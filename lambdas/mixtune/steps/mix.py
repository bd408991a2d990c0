"""Step ``Mix``: blend the prepared domain data with general data (mixing's ``mix_datasets``),
in Lambda or, for inputs too large for it, by a mix job (``MixLaunch``...; ``MixConclude``
records its outputs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mixtune import layout, storage
from mixtune.backends.jobs import catalog_of
from mixtune.observability import logger, metrics, traced
from mixtune.runs.model import Placement, Run, RunStatus
from mixtune.runs.placement import mix_placement, spilled_over, temp_budget_bytes, with_placement
from mixtune.runs.repository import RunsRepository
from mixtune.settings import get_settings
from mixtune.steps.state import MixInput, MixOutput

if TYPE_CHECKING:
    from mixtune.mixing import Catalog, MixSpec

# Used when a run gives no mix: 70 % domain, the rest split evenly over the catalog's
# categories (all domain when there is no catalog).
DEFAULT_DOMAIN_PERCENT = 70.0


def mix_spec_fields(requested: dict[str, Any], categories: list[str]) -> dict[str, Any]:
    """The run's mix fields with the service defaults filled in (`catalog_uri` removed)."""
    fields = {k: v for k, v in requested.items() if k != "catalog_uri"}
    if not categories:
        return {**fields, "domain_percent": 100.0, "categories": {}}
    fields.setdefault("domain_percent", DEFAULT_DOMAIN_PERCENT)
    share = fields["domain_percent"]
    # A share that is not a number is left for MixSpec to refuse with a readable message.
    if "categories" not in fields and isinstance(share, int | float) and share < 100:
        fields["categories"] = {name: 100.0 / len(categories) for name in categories}
    return fields


@traced
def mix_run(step: MixInput) -> MixOutput:
    """Mix in Lambda, or hand the mix to a job when its inputs are too large for Lambda (or a
    source Lambda cannot read, or /tmp turns out too small): see :mod:`mixtune.runs.placement`."""
    from mixtune.dataprep.errors import SpillBudgetExceeded
    from mixtune.mixing import Catalog, MixSpec, mix_datasets

    if step.arm:
        return mix_arm(step)
    settings = get_settings()
    repo = RunsRepository.from_settings()
    run = repo.transition(step.run_id, RunStatus.RUNNING, stage="mix")  # from PREPARED (or a retry)
    catalog_uri = catalog_of(step.config, settings)
    catalog = Catalog.load(catalog_uri) if catalog_uri else Catalog()
    spec = MixSpec.model_validate(mix_spec_fields(step.config.mix, catalog.categories))
    folder = layout.mix_folder(settings.work_bucket, step.run_id)
    domain = layout.prepared_data(step.prepared_uri)
    placement = mix_placement(mix_input_sizes(domain, catalog, spec), settings)
    if placement.runs_on == "job":
        return hand_to_mix_job(run, spec, folder, placement)
    try:
        manifest = mix_datasets(
            domain,
            catalog,
            spec,
            folder,
            decontaminate_against=[layout.eval_split(step.prepared_uri)],
            temp_budget_bytes=temp_budget_bytes(settings),
        )
    except SpillBudgetExceeded as exc:  # /tmp too small for this mix: a job goes on
        return hand_to_mix_job(run, spec, folder, spilled_over(exc, placement.input_bytes))
    return record_mix(run, folder, manifest.output.sha256 or "", placement)


def mix_input_sizes(domain_uri: str, catalog: Catalog, spec: MixSpec) -> dict[str, int | None]:
    """Bytes of each file the mix reads: the domain file and the sources of the spec's
    categories (None for an ``hf://`` source, which Lambda cannot read)."""
    sizes: dict[str, int | None] = {"domain": storage.size(domain_uri)}
    categories = spec.active_categories()
    for source in catalog.sources:
        if source.category in categories:
            sizes[source.name] = None if source.is_hf else storage.size(source.uri)
    return sizes


def hand_to_mix_job(run: Run, spec: MixSpec, folder: str, placement: Placement) -> MixOutput:
    """Write the resolved spec beside the mix's outputs for the job (MixLaunch) and say so."""
    storage.write_bytes(layout.mix_spec(folder), spec.model_dump_json(indent=2).encode())
    RunsRepository.from_settings().update(
        run.run_id, lineage={"placement": with_placement(run, "mix", placement)}
    )
    logger.info("mix handed to a job", extra={"run_id": run.run_id, "reason": placement.reason})
    metrics.add_metric(name="MixesAsJobs", unit="Count", value=1)
    return MixOutput(
        mixed_uri=layout.mixed_data(folder),
        manifest_uri=layout.mix_manifest(folder),
        runs_on="job",
        reason=placement.reason,
    )


def record_mix(run: Run, folder: str, mixed_sha256: str, placement: Placement) -> MixOutput:
    """The mix's files and hash in the run's lineage (after the Mix function or the mix job)."""
    output = MixOutput(
        mixed_uri=layout.mixed_data(folder),
        manifest_uri=layout.mix_manifest(folder),
        runs_on=placement.runs_on,
        reason=placement.reason,
    )
    lineage = {
        "mixed_uri": output.mixed_uri,
        "manifest_uri": output.manifest_uri,
        "output_sha256": {**run.lineage.output_sha256, layout.MIXED: mixed_sha256},
        "placement": with_placement(run, "mix", placement),
    }
    RunsRepository.from_settings().update(run.run_id, lineage=lineage)
    logger.info("mixed", extra={"run_id": run.run_id, "manifest_uri": output.manifest_uri})
    metrics.add_metric(name="RunsMixed", unit="Count", value=1)
    return output


def mix_arm(step: MixInput) -> MixOutput:
    """A sweep arm's mix, in Lambda, under the arm's own folder (a sweep's arms are not handed to
    mix jobs: docs/pipeline.md, "Sweeps")."""
    from mixtune.mixing import Catalog, MixSpec, mix_datasets
    from mixtune.steps.sweep import arm_mix

    settings = get_settings()
    repo = RunsRepository.from_settings()
    repo.transition(step.run_id, RunStatus.RUNNING, stage=f"mix {step.arm}")
    fields, key = arm_mix(step)
    catalog_uri = catalog_of(step.config, settings)
    catalog = Catalog.load(catalog_uri) if catalog_uri else Catalog()
    spec = MixSpec.model_validate(mix_spec_fields(fields, catalog.categories))
    folder = layout.mix_folder(settings.work_bucket, key)
    mix_datasets(
        layout.prepared_data(step.prepared_uri),
        catalog,
        spec,
        folder,
        decontaminate_against=[layout.eval_split(step.prepared_uri)],
        temp_budget_bytes=temp_budget_bytes(settings),
    )
    output = MixOutput(mixed_uri=layout.mixed_data(folder), manifest_uri=layout.mix_manifest(folder))
    repo.put_arm(step.run_id, step.arm or "", mixed_uri=output.mixed_uri, manifest_uri=output.manifest_uri)
    logger.info("mixed", extra={"run_id": step.run_id, "arm": step.arm, "manifest_uri": output.manifest_uri})
    metrics.add_metric(name="RunsMixed", unit="Count", value=1)
    return output
