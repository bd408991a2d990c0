"""Moving late duplicates (found after the dedupe budget spilled) to ``rejected.jsonl``.

A record that repeats an earlier one is rejected on sight while the dedupe table is in
memory; past its budget it is written provisionally and found only at the end
(:meth:`Deduper.resolve`). This pass then reads the source a second time to recover each
late duplicate's line, raw row and sanitizer repairs, so that ``rejected.jsonl`` and the
report read as if it had been rejected on sight, and filters it out of the splits. The
record is rebuilt by the first pass's own steps (:class:`RecordSteps`), so its bytes and
digest must match; when they do not, the file changed between the two reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from mixtune.dataprep.dedupe import Deduper
from mixtune.dataprep.errors import DatasetError, RecordError
from mixtune.dataprep.loaders import RowSource
from mixtune.dataprep.outputs import rejected_line, rewrite
from mixtune.dataprep.report import ErrorEntry, PrepareOptions
from mixtune.dataprep.steps import DUPLICATE_MESSAGE, RecordSteps, Tally
from mixtune.dataprep.tokens import count_over
from mixtune.storage import join

_CHANGED = "the file changed while it was being prepared"


@dataclass
class _Removed:
    """What the late duplicates had added to the first pass's tally."""

    sanitized: int = 0
    sanitize_counts: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    over: Counter[int] = field(default_factory=Counter)
    errors: list[ErrorEntry] = field(default_factory=list)


def remove_late_duplicates(
    dedupe: Deduper,
    source_uri: str,
    out_uri: str,
    options: PrepareOptions,
    steps: RecordSteps,
    tally: Tally,
    hashes: dict[str, str],
) -> dict[str, str]:
    """Filter the late duplicates out of the splits and append them to ``rejected.jsonl``;
    correct ``tally`` in place and return the new output hashes."""
    hashes = dict(hashes)
    late = dedupe.late
    in_eval = sum(1 for item in dedupe.late_duplicates() if item.in_eval)
    for name, eval_side, dropped in (
        ("prepared.jsonl", False, late - in_eval),
        ("eval.jsonl", True, in_eval),
    ):
        if dropped:
            drop = (item.position for item in dedupe.late_duplicates() if item.in_eval is eval_side)
            hashes[name] = rewrite(join(out_uri, name), drop)
    removed = _Removed()
    replay = _replay(dedupe, source_uri, options, steps, removed)
    hashes["rejected.jsonl"] = rewrite(join(out_uri, "rejected.jsonl"), iter(()), replay)
    tally.remove(
        late,
        in_eval,
        sanitized=removed.sanitized,
        sanitize_counts=removed.sanitize_counts,
        tokens=removed.tokens,
        over=removed.over,
        errors=removed.errors,
        max_errors=options.max_errors,
    )
    return hashes


def _replay(
    dedupe: Deduper, source_uri: str, options: PrepareOptions, steps: RecordSteps, removed: _Removed
) -> Iterator[bytes]:
    """Read the source again; yield each late duplicate's ``rejected.jsonl`` line, in input order."""
    pending = dedupe.late_duplicates()
    item = next(pending, None)
    if item is None:
        return
    source = RowSource(source_uri, options.format, options.max_record_bytes)
    rows = iter(source)
    try:
        for seq, (line, row) in enumerate(rows, start=1):
            if seq < item.seq:
                continue
            built = steps.rebuild(line, row)
            if built is None or (built.digest or 1) != item.digest:
                raise DatasetError(source_uri, _CHANGED, line)
            if built.changes:
                removed.sanitized += 1
                removed.sanitize_counts.update(built.changes)
            removed.tokens += built.tokens
            count_over(removed.over, built.tokens)
            error = RecordError(line, "duplicate", DUPLICATE_MESSAGE, row)
            if len(removed.errors) < options.max_errors:
                removed.errors.append(ErrorEntry(line=line, rule=error.rule, message=error.message))
            yield rejected_line(error)
            item = next(pending, None)
            if item is None:
                break
    finally:
        rows.close()  # type: ignore[attr-defined]
    if item is not None:
        raise DatasetError(source_uri, _CHANGED)
