"""Step `Mix`: blend the prepared domain data with general data (mixing's `mix_datasets`)."""

from __future__ import annotations

from typing import Any

from mixtune.handlers.common import lambda_entry, logger, metrics, repository, traced
from mixtune.handlers.steps import ConfiguredStep, MixOutput

# Used when a run gives no mix: 70 % domain, the rest split evenly over the catalog's
# categories (all domain when there is no catalog).
DEFAULT_DOMAIN_PERCENT = 70.0


class MixInput(ConfiguredStep):
    prepared_uri: str


def mix_spec_fields(requested: dict[str, Any], categories: list[str]) -> dict[str, Any]:
    """The run's mix fields with the service defaults filled in (`catalog_uri` removed)."""
    fields = {k: v for k, v in requested.items() if k != "catalog_uri"}
    if not categories:
        return {**fields, "domain_percent": 100.0, "categories": {}}
    fields.setdefault("domain_percent", DEFAULT_DOMAIN_PERCENT)
    if "categories" not in fields and fields["domain_percent"] < 100:
        fields["categories"] = {name: 100.0 / len(categories) for name in categories}
    return fields


@traced
def mix_run(step: MixInput) -> MixOutput:
    from mixtune import storage
    from mixtune.mixing import Catalog, MixSpec, mix_datasets
    from mixtune.runs.model import RunStatus
    from mixtune.settings import get_settings

    settings = get_settings()
    repo = repository()
    run = repo.transition(step.run_id, RunStatus.RUNNING, stage="mix")  # from PREPARED (or a retry)
    catalog_uri = step.config.mix.get("catalog_uri") or settings.catalog_uri
    catalog = Catalog.load(catalog_uri) if catalog_uri else Catalog()
    spec = MixSpec.model_validate(mix_spec_fields(step.config.mix, catalog.categories))
    out_uri = f"s3://{settings.work_bucket}/runs/{step.run_id}/mix/"
    mix_datasets(
        storage.join(step.prepared_uri, "prepared.jsonl"),
        catalog,
        spec,
        out_uri,
        decontaminate_against=[storage.join(step.prepared_uri, "eval.jsonl")],
    )
    output = MixOutput(
        mixed_uri=storage.join(out_uri, "mixed.jsonl"), manifest_uri=storage.join(out_uri, "manifest.json")
    )
    repo.update(
        step.run_id,
        lineage={
            "mixed_uri": output.mixed_uri,
            "manifest_uri": output.manifest_uri,
            "output_sha256": {
                **run.lineage.output_sha256,
                "mixed.jsonl": storage.sha256_of(output.mixed_uri),
            },
        },
    )
    logger.info("mixed", extra={"run_id": step.run_id, "manifest_uri": output.manifest_uri})
    metrics.add_metric(name="RunsMixed", unit="Count", value=1)
    return output


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return mix_run(MixInput.model_validate(event)).model_dump(mode="json")
