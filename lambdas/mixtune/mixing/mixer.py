"""The mixer: domain records plus general records at an exact, reproducible ratio.

1. Resolve catalog sources to prepared files (converting those that are not).
2. First pass over every file: count lines; when the unit is tokens, measure each line's
   texts (numpy over whole blocks, parsing only lines with escapes or non-ASCII text); with
   decontamination, parse each line. When it measures tokens (or for a dry run) it also
   hashes each file, on a worker thread.
3. Plan exact counts (largest remainder) or token targets, and choose line indices per
   source with a seeded generator: without replacement unless a source is too small.
4. Second pass: read each file again, hashing it if the first pass did not (and measuring
   the tokens the manifest reports), and route every chosen line to a seeded random
   shuffle bucket; each bucket is then permuted and written out (see
   :mod:`mixtune.mixing.lines`).

Only index arrays are held in memory, never parsed records, and the output is a function of
the inputs and the seed alone.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from mixtune import layout, storage
from mixtune.dataprep.errors import DatasetError, SpillBudgetExceeded
from mixtune.mixing import allocation
from mixtune.mixing.catalog import Catalog
from mixtune.mixing.decontam import Decontaminator
from mixtune.mixing.lines import (
    Digest,
    Occurrences,
    Scan,
    TokenTally,
    scan_source,
    shuffle_write,
    spill_estimate,
)
from mixtune.mixing.manifest import (
    DOMAIN,
    DecontaminationReport,
    MixManifest,
    OutputReport,
    PartReport,
    SourceReport,
)
from mixtune.mixing.sampling import choose_examples, choose_tokens, rng_for
from mixtune.mixing.sources import MixError, ResolvedSource, resolve_source
from mixtune.mixing.spec import MixSpec

log = logging.getLogger(__name__)

# The file names come from the work-bucket layout, the same for a local --out folder.
MIXED_FILE = layout.MIXED
MANIFEST_FILE = layout.MIX_MANIFEST


@dataclass
class _Input:
    """One input during planning: its file, scan and choice."""

    name: str
    category: str
    uri: str  # the prepared file read
    shown_uri: str  # the URI the user gave (stable across runs, unlike staging paths)
    licence: str
    scan: Scan
    original_sha256: str | None = None
    rejected: int = 0
    target_share: float = 0.0  # percent of the mix
    target_units: Fraction = Fraction(0)
    chosen: np.ndarray | None = None
    oversampled: bool = False


def mix_datasets(
    domain_uri: str,
    catalog: Catalog | str | None,
    spec: MixSpec | Mapping[str, Any] | str,
    out_uri: str,
    decontaminate_against: Iterable[str] = (),
    dry_run: bool = False,
    *,
    count_tokens: bool = True,
    workdir: str | None = None,
    temp_budget_bytes: int | None = None,
) -> MixManifest:
    """Mix ``domain_uri`` (a prepared file) with catalog sources as ``spec`` says.

    Writes ``mixed.jsonl`` and ``manifest.json`` under ``out_uri`` (a local folder or an
    ``s3://`` prefix) unless ``dry_run``, and returns the manifest. ``count_tokens=False``
    skips parsing lines in examples mode (faster; the manifest then has no token counts).
    ``temp_budget_bytes`` caps the temporary files (converted catalog sources, spilled
    shuffle buckets): a mix that would need more raises SpillBudgetExceeded before writing
    them (in Lambda: /tmp is too small, a job takes the mix over).
    Raises SpecError/CatalogError (bad spec or catalog), DatasetError (unreadable input)
    and MixError (the data cannot give the mix asked for).
    """
    if catalog is None or catalog == "":
        catalog = Catalog()  # enough for a 100 % domain spec; any category is then unknown
    elif isinstance(catalog, str):
        catalog = Catalog.load(catalog)
    if isinstance(spec, str):
        spec = MixSpec.load(spec)
    elif not isinstance(spec, MixSpec):
        spec = MixSpec.parse(spec)
    spec.check_categories(catalog.categories)
    categories = spec.active_categories()
    # Token counts the plan needs come from the first pass; counts only reported in the
    # manifest are measured during pass two, on the way. Inputs are hashed on a worker
    # thread during whichever pass does the more work on the main one: the first when it
    # measures tokens, else the second. A dry run has no pass two.
    scan_tokens = spec.unit == "tokens" or (count_tokens and dry_run)
    route_tokens = count_tokens and not scan_tokens
    scan_hashes = scan_tokens or dry_run
    if not storage.exists(domain_uri):
        raise DatasetError(domain_uri, "domain file does not exist")

    if workdir:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    decontaminator = _decontaminator(decontaminate_against, spec.decontamination_ngram)
    check = decontaminator.is_contaminated if decontaminator else None
    warnings: list[str] = []

    staged = _staged_estimate(catalog, categories) if temp_budget_bytes is not None else 0
    _check_temp_budget(staged, temp_budget_bytes, "converting the catalog's sources")
    with tempfile.TemporaryDirectory(prefix="mixtune-stage-", dir=workdir) as staging:
        resolved = [
            resolve_source(source, Path(staging), spec.seed)
            for source in catalog.sources
            if source.category in categories
        ]
        inputs = [_domain_input(domain_uri, scan_tokens, check, scan_hashes)]
        inputs.extend(_source_input(item, scan_tokens, check, scan_hashes, warnings) for item in resolved)
        _check_not_empty(inputs)
        if spec.unit == "tokens":
            _plan_tokens(spec, inputs, warnings)
        else:
            _plan_examples(spec, inputs, warnings)
        if dry_run:
            return _manifest(spec, inputs, domain_uri, catalog, out_uri, warnings, decontaminator, dry_run)
        mixed_uri = storage.join(out_uri, MIXED_FILE)
        occurrences, expected = _occurrences(spec.seed, inputs, route_tokens)
        _check_temp_budget(staged + spill_estimate(expected), temp_budget_bytes, "shuffling the mix")
        with storage.open_write(mixed_uri) as writer:
            sha, size, written = shuffle_write(
                occurrences, expected, writer, lambda bucket: rng_for(spec.seed, f"shuffle:{bucket}"), workdir
            )
        for item, routed in zip(inputs, occurrences, strict=True):
            item.scan.sha256 = item.scan.sha256 or routed.digest.hexdigest()
            if routed.tally is not None:
                item.scan.tokens = routed.tally.tokens()
        manifest = _manifest(spec, inputs, domain_uri, catalog, out_uri, warnings, decontaminator, dry_run)
        if written != manifest.output.records:
            raise MixError(f"wrote {written} records but planned {manifest.output.records}")
    manifest.output = manifest.output.model_copy(update={"sha256": sha, "bytes": size})
    storage.write_bytes(storage.join(out_uri, MANIFEST_FILE), manifest_bytes(manifest))
    log.info("mixed", extra={"summary": manifest.summary()})
    return manifest


# Converting a source to prepared records can grow it (CSV rows become Converse JSON lines).
STAGED_GROWTH = 2


def _staged_estimate(catalog: Catalog, categories: Mapping[str, float]) -> int:
    """About how many bytes converting the spec's non-prepared sources writes to staging."""
    total = 0
    for source in catalog.sources:
        if source.category in categories and not source.is_prepared and not source.is_hf:
            with contextlib.suppress(FileNotFoundError):  # a missing source fails with its own message
                total += storage.size(source.uri) * STAGED_GROWTH
    return total


def _check_temp_budget(needed: int, budget: int | None, what: str) -> None:
    if budget is not None and needed > budget:
        raise SpillBudgetExceeded(
            f"{what} needs about {needed:,} bytes of temporary files, over temp_budget_bytes={budget:,}; "
            "mix where more temporary space is available"
        )


def manifest_bytes(manifest: MixManifest) -> bytes:
    """The manifest as stable, indented JSON."""
    return orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"


def _decontaminator(uris: Iterable[str], n: int) -> Decontaminator | None:
    uris = list(uris)
    if not uris:
        return None
    decontaminator = Decontaminator(n)
    for uri in uris:
        decontaminator.add_uri(uri)
    return decontaminator


def _domain_input(uri: str, measure_tokens: bool, check: Any, hash_bytes: bool) -> _Input:
    scan = scan_source(uri, measure_tokens, check, hash_bytes)
    return _Input(name=DOMAIN, category=DOMAIN, uri=uri, shown_uri=uri, licence="", scan=scan)


def _source_input(
    item: ResolvedSource, measure_tokens: bool, check: Any, hash_bytes: bool, warnings: list[str]
) -> _Input:
    source = item.source
    scan = scan_source(item.uri, measure_tokens, check, hash_bytes)
    if source.records is not None and not source.is_hf and source.records != scan.lines + item.rejected:
        warnings.append(
            f"source {source.name}: the catalog says {source.records} records, the file has {scan.lines + item.rejected}"
        )
    return _Input(
        name=source.name,
        category=source.category,
        uri=item.uri,
        shown_uri=source.uri,
        licence=source.licence,
        scan=scan,
        original_sha256=item.original_sha256,
        rejected=item.rejected,
    )


def _check_not_empty(inputs: list[_Input]) -> None:
    domain = inputs[0]
    if domain.scan.eligible_count == 0:
        why = " after decontamination" if domain.scan.contaminated else ""
        raise MixError(f"the domain file {domain.uri} has no records{why}")


def _by_category(inputs: list[_Input]) -> dict[str, list[_Input]]:
    grouped: dict[str, list[_Input]] = {}
    for item in inputs[1:]:
        grouped.setdefault(item.category, []).append(item)
    return grouped


def _too_small(spec: MixSpec, what: str, needed: float, has: float, unit: str, warnings: list[str]) -> None:
    """A part that needs more than its sources hold: fail beyond ``max_oversample`` repeats (or
    whenever ``on_small_source`` is 'fail'), else record the oversampling as a warning."""
    message = f"{what} needs {needed:,.0f} {unit} but holds {has:,.0f}"
    factor = needed / has if has else float("inf")
    if factor > spec.max_oversample:
        at_least = math.ceil(needed / spec.max_oversample)
        raise MixError(
            f"{message}: {factor:,.1f}x oversampling is over max_oversample {spec.max_oversample:g}; "
            f"give it at least {at_least:,} {unit} ({needed:,.0f} to use each once), lower the share or "
            "the total, or raise max_oversample"
        )
    if spec.on_small_source == "fail":
        raise MixError(
            f"{message} (on_small_source is 'fail'; lower the share or the total, or allow 'oversample')"
        )
    warnings.append(f"{message}: oversampled {factor:.1f}x (records repeat)")


def _plan_examples(spec: MixSpec, inputs: list[_Input], warnings: list[str]) -> None:
    categories = spec.active_categories()
    domain = inputs[0]
    available = domain.scan.eligible_count
    domain_count, category_counts = allocation.split_examples(
        available, spec.domain_percent, categories, spec.total
    )
    total = domain_count + sum(category_counts.values())
    if domain_count > available:
        _too_small(spec, "the domain data", domain_count, available, "records", warnings)
        domain.oversampled = True
    domain.target_share = spec.domain_percent
    domain.target_units = Fraction(total) * Fraction(spec.domain_percent) / 100
    domain.chosen = choose_examples(rng_for(spec.seed, DOMAIN), domain.scan.pool(), domain_count)
    grouped = _by_category(inputs)
    for category, percent in categories.items():
        members = grouped.get(category, [])
        sizes = [item.scan.eligible_count for item in members]
        needed = category_counts[category]
        if sum(sizes) == 0:  # asked for (share > 0) even when rounding leaves it no records
            raise MixError(
                f"general category {category!r} has no records (sources: "
                f"{', '.join(item.name for item in members) or 'none'})"
            )
        if needed > sum(sizes):
            _too_small(spec, f"general category {category!r}", needed, sum(sizes), "records", warnings)
        counts = allocation.split_by_size(needed, sizes)
        share = Fraction(spec.general_percent) * Fraction(percent) / 100
        for item, count, size in zip(members, counts, sizes, strict=True):
            item_share = share * size / sum(sizes)
            item.target_share = float(item_share)
            item.target_units = Fraction(total) * item_share / 100
            item.oversampled = count > size
            item.chosen = choose_examples(rng_for(spec.seed, f"source:{item.name}"), item.scan.pool(), count)


def _plan_tokens(spec: MixSpec, inputs: list[_Input], warnings: list[str]) -> None:
    categories = spec.active_categories()
    domain = inputs[0]
    domain_tokens = domain.scan.eligible_tokens()
    if domain_tokens == 0:
        raise MixError(f"the domain file {domain.uri} has no tokens")
    mixed, domain_target, category_targets = allocation.split_tokens(
        domain_tokens, spec.domain_percent, categories, spec.total
    )
    domain.target_share = spec.domain_percent
    domain.target_units = domain_target
    pool = domain.scan.pool()
    if spec.total is None:
        domain.chosen = choose_examples(rng_for(spec.seed, DOMAIN), pool, len(pool))
    else:
        if domain_target > domain_tokens:
            _too_small(spec, "the domain data", float(domain_target), domain_tokens, "tokens", warnings)
            domain.oversampled = True
        domain.chosen = choose_tokens(rng_for(spec.seed, DOMAIN), pool, domain.scan.tokens, domain_target)
    grouped = _by_category(inputs)
    for category, target in category_targets.items():
        members = grouped.get(category, [])
        sizes = [item.scan.eligible_tokens() for item in members]
        if sum(sizes) == 0:  # asked for (share > 0) even when rounding leaves it no tokens
            raise MixError(
                f"general category {category!r} has no records (sources: "
                f"{', '.join(item.name for item in members) or 'none'})"
            )
        if target > sum(sizes):
            _too_small(spec, f"general category {category!r}", float(target), sum(sizes), "tokens", warnings)
        for item, item_target, size in zip(
            members, allocation.split_fraction_by_size(target, sizes), sizes, strict=True
        ):
            item.target_units = item_target
            item.target_share = float(item_target / mixed * 100) if mixed else 0.0
            item.oversampled = item_target > size
            rng = rng_for(spec.seed, f"source:{item.name}")
            item.chosen = choose_tokens(rng, item.scan.pool(), item.scan.tokens, item_target)


def _occurrences(seed: int, inputs: list[_Input], measure_tokens: bool) -> tuple[list[Occurrences], int]:
    """What pass two reads: each input's chosen lines and its own routing generator, and
    whether to measure tokens on the way (when the first pass did not)."""
    occurrences = []
    expected_bytes = 0
    for item in inputs:
        chosen = item.chosen if item.chosen is not None else np.empty(0, dtype=np.int64)
        every_line_once = len(chosen) == item.scan.lines and bool(np.all(chosen == np.arange(len(chosen))))
        occurrences.append(
            Occurrences(
                uri=item.uri,
                lines=None if every_line_once else chosen,
                rng=rng_for(seed, f"route:{item.category}:{item.name}"),
                line_count=item.scan.lines,
                digest=Digest(hashing=item.scan.sha256 is None),
                tally=TokenTally(item.uri) if measure_tokens and item.scan.tokens is None else None,
            )
        )
        if item.scan.lines:
            expected_bytes += len(chosen) * item.scan.bytes // item.scan.lines
    return occurrences, expected_bytes


def _unique_count(sorted_lines: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(sorted_lines))) + 1 if len(sorted_lines) else 0


def _selected_tokens(item: _Input) -> int | None:
    if item.scan.tokens is None or item.chosen is None:
        return None
    return int(item.scan.tokens[item.chosen].sum())


def _manifest(
    spec: MixSpec,
    inputs: list[_Input],
    domain_uri: str,
    catalog: Catalog,
    out_uri: str,
    warnings: list[str],
    decontaminator: Decontaminator | None,
    dry_run: bool,
) -> MixManifest:
    sources = []
    for item in inputs:
        chosen = item.chosen if item.chosen is not None else np.empty(0, dtype=np.int64)
        tokens = item.scan.tokens
        sources.append(
            SourceReport(
                name=item.name,
                category=item.category,
                uri=item.shown_uri,
                licence=item.licence,
                input_sha256=item.scan.sha256,
                original_sha256=item.original_sha256,
                available_records=item.scan.lines,
                available_tokens=int(tokens.sum()) if tokens is not None else None,
                rejected_records=item.rejected,
                contaminated_records=item.scan.contaminated,
                selected_records=len(chosen),
                unique_records=_unique_count(chosen),
                selected_tokens=_selected_tokens(item),
                max_record_tokens=int(tokens.max()) if tokens is not None and len(tokens) else None,
                target_share=round(item.target_share, 9),
                target_units=round(float(item.target_units), 6),
                oversampled=item.oversampled,
            )
        )
    records = sum(s.selected_records for s in sources)
    token_values = [s.selected_tokens for s in sources]
    total_tokens = sum(t for t in token_values if t is not None) if None not in token_values else None
    parts = [_part(DOMAIN, spec.domain_percent, [sources[0]], records, total_tokens)]
    for category, percent in spec.active_categories().items():
        members = [s for s in sources[1:] if s.category == category]
        parts.append(_part(category, spec.general_percent * percent / 100, members, records, total_tokens))
    decontamination = None
    if decontaminator is not None:
        decontamination = DecontaminationReport(
            ngram=decontaminator.n,
            eval_sets=decontaminator.sets,
            eval_ngrams=decontaminator.ngram_count,
            dropped={s.name: s.contaminated_records for s in sources},
        )
    return MixManifest(
        dry_run=dry_run,
        spec=spec,
        seed=spec.seed,
        unit=spec.unit,
        domain_uri=domain_uri,
        catalog_uri=catalog.uri,
        sources=sources,
        parts=parts,
        warnings=warnings,
        decontamination=decontamination,
        output=OutputReport(uri=storage.join(out_uri, MIXED_FILE), records=records, tokens=total_tokens),
    )


def _part(
    name: str, target: float, members: list[SourceReport], records: int, tokens: int | None
) -> PartReport:
    part_records = sum(s.selected_records for s in members)
    part_tokens = sum(s.selected_tokens or 0 for s in members) if tokens is not None else None
    return PartReport(
        name=name,
        target_percent=round(target, 9),
        records=part_records,
        tokens=part_tokens,
        record_percent=round(100 * part_records / records, 9) if records else 0.0,
        token_percent=round(100 * part_tokens / tokens, 9) if tokens and part_tokens is not None else None,
    )
