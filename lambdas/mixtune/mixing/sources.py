"""Turning catalog sources into prepared record files the mixer can stream.

``format: prepared`` sources are used as they are. Every other source goes through data
preparation (:func:`mixtune.dataprep.prepare_dataset`: the same loaders, conversion,
sanitizer and validator as domain data) into a staging folder, with no eval split.
``hf://`` sources are first streamed to a JSON-lines file with ``datasets`` (imported here
only, so the Lambda path, which reads local and S3 files, never needs it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import orjson

from mixtune import storage
from mixtune.dataprep.errors import DatasetError
from mixtune.mixing.catalog import CatalogSource, parse_hf_uri

log = logging.getLogger(__name__)


class MixError(ValueError):
    """The mix cannot be made as specified (an empty or too-small source, a rejected source)."""


@dataclass(frozen=True)
class ResolvedSource:
    """A catalog source as a prepared file."""

    source: CatalogSource
    uri: str  # the prepared lines the mixer reads
    original_sha256: str | None = None  # the raw input's hash, for converted sources
    rejected: int = 0


def resolve_source(source: CatalogSource, staging: Path, seed: int) -> ResolvedSource:
    """Return the source itself when prepared, else prepare it into ``staging/<name>``."""
    if source.is_prepared:
        if source.is_hf:
            raise MixError(f"source {source.name}: hf:// sources cannot be 'prepared'; leave format unset")
        if not storage.exists(source.uri):
            raise DatasetError(source.uri, f"general source {source.name!r} does not exist")
        return ResolvedSource(source=source, uri=source.uri)
    from mixtune.dataprep import PrepareOptions, prepare_dataset

    folder = staging / source.name
    folder.mkdir(parents=True, exist_ok=True)
    input_uri = _download_hf(source, folder / "hf-rows.jsonl") if source.is_hf else source.uri
    if not source.is_hf and not storage.exists(input_uri):
        raise DatasetError(input_uri, f"general source {source.name!r} does not exist")
    options = PrepareOptions(
        mapping=source.mapping,
        system_prompt=source.system_prompt,
        instruction_template=source.instruction_template,
        format="jsonl" if source.is_hf else source.format,
        eval_share=0.0,
        seed=seed,
    )
    report = prepare_dataset(input_uri, str(folder / "prepared"), options)
    if not report.accepted:
        raise MixError(f"general source {source.name!r} was rejected by data preparation: {report.summary()}")
    log.info("prepared general source", extra={"source": source.name, "summary": report.summary()})
    return ResolvedSource(
        source=source,
        uri=str(folder / "prepared" / "prepared.jsonl"),
        original_sha256=report.input_sha256,
        rejected=report.counts.rejected,
    )


def _download_hf(source: CatalogSource, target: Path) -> str:
    """Stream an ``hf://`` dataset's rows to a JSON-lines file (at most ``records`` rows)."""
    location = parse_hf_uri(source.uri)
    try:
        import datasets  # lazy: the CLI's 'train' extra, never the Lambda package
    except ImportError as exc:
        raise MixError(
            f"source {source.name}: hf:// sources need the 'datasets' package (pip install 'mixtune[train]')"
        ) from exc
    try:
        rows = datasets.load_dataset(location.dataset, location.config, split=location.split, streaming=True)
    except Exception as exc:
        raise MixError(
            f"source {source.name}: cannot open {source.uri}: {type(exc).__name__}: {exc}"
        ) from exc
    with open(target, "wb") as handle:
        for number, row in enumerate(rows):
            if source.records is not None and number >= source.records:
                break
            handle.write(orjson.dumps(row, default=str) + b"\n")
    return str(target)
