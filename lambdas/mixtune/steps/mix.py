"""Step ``Mix``: blend the prepared domain data with general data (mixing's ``mix_datasets``)."""

from __future__ import annotations

from typing import Any

from mixtune import layout, storage
from mixtune.observability import logger, metrics, traced
from mixtune.runs.model import RunStatus
from mixtune.runs.repository import RunsRepository
from mixtune.settings import get_settings
from mixtune.steps.state import MixInput, MixOutput

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
    from mixtune.mixing import Catalog, MixSpec, mix_datasets
    from mixtune.steps.sweep import arm_mix

    settings = get_settings()
    repo = RunsRepository.from_settings()
    stage = f"mix {step.arm}" if step.arm else "mix"
    run = repo.transition(step.run_id, RunStatus.RUNNING, stage=stage)  # from PREPARED (or a retry)
    fields, key = arm_mix(step) if step.arm else (step.config.mix, step.run_id)
    catalog_uri = step.config.mix.get("catalog_uri") or settings.catalog_uri
    catalog = Catalog.load(catalog_uri) if catalog_uri else Catalog()
    spec = MixSpec.model_validate(mix_spec_fields(fields, catalog.categories))
    folder = layout.mix_folder(settings.work_bucket, key)
    mix_datasets(
        layout.prepared_data(step.prepared_uri),
        catalog,
        spec,
        folder,
        decontaminate_against=[layout.eval_split(step.prepared_uri)],
    )
    output = MixOutput(mixed_uri=layout.mixed_data(folder), manifest_uri=layout.mix_manifest(folder))
    if step.arm:
        repo.put_arm(step.run_id, step.arm, mixed_uri=output.mixed_uri, manifest_uri=output.manifest_uri)
    else:
        hashes = {**run.lineage.output_sha256, layout.MIXED: storage.sha256_of(output.mixed_uri)}
        lineage = {
            "mixed_uri": output.mixed_uri,
            "manifest_uri": output.manifest_uri,
            "output_sha256": hashes,
        }
        repo.update(step.run_id, lineage=lineage)
    logger.info("mixed", extra={"run_id": step.run_id, "manifest_uri": output.manifest_uri})
    metrics.add_metric(name="RunsMixed", unit="Count", value=1)
    return output
