"""prepare_dataset: load -> convert -> sanitize -> validate -> dedupe -> split -> write.

One streaming pass. Nothing is lost: each input record ends in ``prepared.jsonl`` or
``eval.jsonl`` (kept) or in ``rejected.jsonl`` (with its line number, rule and reason), and
``report.json`` accounts for them. The hot loop works on plain strings and tuples and
serialises with orjson; pydantic is used only at the boundaries (options and report).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

from mixtune import storage
from mixtune.dataprep.convert import Conversation, Converter
from mixtune.dataprep.dedupe import Deduper
from mixtune.dataprep.errors import DatasetError, RecordError
from mixtune.dataprep.late_duplicates import remove_late_duplicates
from mixtune.dataprep.loaders import RowSource
from mixtune.dataprep.outputs import OUTPUT_FILES, Sink, record_line, rejected_line
from mixtune.dataprep.report import Counts, PrepareOptions, PrepareReport, TokenStats
from mixtune.dataprep.split import Splitter
from mixtune.dataprep.steps import DUPLICATE_MESSAGE, MAX_LABELS_REPORTED, RecordSteps, Tally, open_converter
from mixtune.dataprep.tokens import REPORTED_LENGTHS, count_over
from mixtune.dataprep.validate import Validator
from mixtune.records import ConversationRecord

PROGRESS_EVERY = 16384


@dataclass(frozen=True, slots=True)
class Progress:
    records: int
    bytes_read: int
    total_bytes: int | None


def prepare_dataset(
    source_uri: str,
    out_uri: str,
    options: PrepareOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> PrepareReport:
    """Prepare one dataset file into ``out_uri`` (a local folder or an ``s3://`` prefix).

    Raises :class:`DatasetError` when the file as a whole is unusable (nothing is written
    then); otherwise returns the report, whose ``accepted`` says whether the data passed.
    """
    options = options or PrepareOptions()
    started = time.perf_counter()
    source = RowSource(source_uri, options.format, options.max_record_bytes)
    steps = RecordSteps(options)
    tally = Tally(Counts(), TokenStats(method=steps.token_method))
    dedupe = Deduper(options.dedupe_memory_digests, options.spill_budget_bytes) if options.dedupe else None
    with ExitStack() as stack:
        if dedupe is not None:  # on failure remove its spill files; on success they are used below
            stack.push(lambda failed, *_: dedupe.close() if failed else None)
        sinks = {
            name: Sink(stack.enter_context(storage.open_write(storage.join(out_uri, name))))
            for name in OUTPUT_FILES
        }
        _first_pass(source, options, steps, dedupe, sinks, tally, progress)
        for sink in sinks.values():
            sink.flush()
    output_sha256 = {name: sink.digest.hexdigest() for name, sink in sinks.items()}
    if dedupe is not None:
        with dedupe:  # the outputs are in place now: move any late duplicates out of them
            if dedupe.resolve():
                output_sha256 = remove_late_duplicates(
                    dedupe, source_uri, out_uri, options, steps, tally, output_sha256
                )
    counts = tally.counts
    reasons = _dataset_verdict(counts, options)
    converter = steps.converter
    report = PrepareReport(
        accepted=not reasons,
        source_uri=source_uri,
        out_uri=out_uri,
        format=source.format,
        shape=converter.shape.describe() if converter else None,
        labels=sorted(tally.labels) if converter and converter.shape.name == "classification" else None,
        counts=counts,
        rule_counts=dict(sorted(tally.rule_counts.items())),
        sanitize_counts=dict(sorted(tally.sanitize_counts.items())),
        pass_rate=counts.kept / counts.input if counts.input else 0.0,
        reject_share=counts.rejected / counts.input if counts.input else 0.0,
        reasons=reasons,
        errors=tally.errors,
        tokens=tally.tokens,
        input_sha256=source.sha256,
        output_sha256=output_sha256,
        options=options,
        seconds=round(time.perf_counter() - started, 3),
    )
    storage.write_bytes(storage.join(out_uri, "report.json"), report.model_dump_json(indent=2).encode())
    if progress is not None:
        progress(Progress(counts.input, source.bytes_read, source.total_bytes))
    return report


def _first_pass(
    source: RowSource,
    options: PrepareOptions,
    steps: RecordSteps,
    dedupe: Deduper | None,
    sinks: dict[str, Sink],
    tally: Tally,
    progress: Callable[[Progress], None] | None,
) -> None:
    """The streaming pass: every record ends in one of the sinks; ``tally`` counts them.

    The hot loop works on plain strings and tuples with the steps bound to locals; the
    late-duplicate pass repeats the same steps through :meth:`RecordSteps.rebuild`.
    """
    train_sink, eval_sink, rejected_sink = (sinks[name] for name in OUTPUT_FILES)
    max_errors = options.max_errors

    def reject(error: RecordError) -> None:
        tally.reject(error, max_errors)
        rejected_sink.add(rejected_line(error))

    check = Validator(steps.sanitizer, options.max_tokens, steps.count_tokens).check
    sanitize_turns, record_digest, count_conversation = (
        steps.sanitize_turns,
        steps.record_digest,
        steps.count_conversation,
    )
    is_eval = Splitter(options.eval_share, options.seed).is_eval if options.eval_share > 0 else None
    prompt_digest = steps.prompt_digest
    first_sight = dedupe.first_sight if dedupe is not None else None
    labels, sanitize_counts = tally.labels, tally.sanitize_counts
    over, shortest_reported = tally.tokens.over, REPORTED_LENGTHS[0]
    expect_system: bool | None = None
    convert: Callable[[int, object], Conversation | RecordError] | None = None
    n_input = n_kept = n_sanitized = n_train = n_eval = token_total = token_max = 0
    for line, row in source:
        n_input += 1
        if progress is not None and n_input % PROGRESS_EVERY == 0:
            progress(Progress(n_input, source.bytes_read, source.total_bytes))
        if row.__class__ is RecordError:
            reject(row)
            continue
        if convert is None:
            converter = open_converter(source, options, line, row)
            if converter.__class__ is RecordError:
                reject(converter)  # type: ignore[arg-type]
                continue
            steps.converter = converter  # type: ignore[assignment]
            convert = converter.convert  # type: ignore[union-attr]
        converted = convert(line, row)
        if converted.__class__ is RecordError:
            reject(converted)  # type: ignore[arg-type]
            continue
        system, turns, label = converted  # type: ignore[misc]
        changes = None
        if sanitize_turns is not None:
            # The validator's reserved-string rule is settled here, after repairing.
            system, changes, leftover = sanitize_turns(system, turns)
            if leftover is not None:
                reject(RecordError(line, "reserved_string", f"{leftover} is left after sanitizing", row))
                continue
        size = count_conversation(system, turns)
        error = check(line, system, turns, row, sanitize_turns is None, size)
        if error is not None:
            reject(error)
            continue
        has_system = system is not None
        if expect_system is None:
            expect_system = has_system
        elif has_system is not expect_system:
            state = "has" if has_system else "lacks"
            message = f"the record {state} a system prompt, the first did not"
            reject(RecordError(line, "consistent_fields", message, row))
            continue
        data = record_line(system, turns)
        digest = record_digest(data)
        if first_sight is not None and not first_sight(digest):
            reject(RecordError(line, "duplicate", DUPLICATE_MESSAGE, row))
            continue
        token_total += size
        if size > token_max:
            token_max = size
        if size > shortest_reported:
            count_over(over, size)
        n_kept += 1
        if changes:
            n_sanitized += 1
            sanitize_counts.update(changes)
        if label is not None and len(labels) < MAX_LABELS_REPORTED:
            labels.add(label)
        if is_eval is not None and is_eval(prompt_digest(turns), label):
            if dedupe is not None and dedupe.spilling:
                dedupe.spill(digest, n_input, True, n_eval)
            n_eval += 1
            eval_sink.add(data)
        else:
            if dedupe is not None and dedupe.spilling:
                dedupe.spill(digest, n_input, False, n_train)
            n_train += 1
            train_sink.add(data)
    counts = tally.counts
    counts.input, counts.kept, counts.sanitized, counts.train, counts.eval = (
        n_input,
        n_kept,
        n_sanitized,
        n_train,
        n_eval,
    )
    tally.tokens.total, tally.tokens.max = token_total, token_max


def _dataset_verdict(counts: Counts, options: PrepareOptions) -> list[str]:
    reasons = []
    share = counts.rejected / counts.input if counts.input else 0.0
    if options.strict and counts.rejected:
        reasons.append(f"strict mode: {counts.rejected} record(s) rejected")
    elif share > options.max_reject_share:
        reasons.append(f"rejected share {share:.1%} exceeds max_reject_share {options.max_reject_share:.1%}")
    if counts.kept < options.min_records:
        reasons.append(f"{counts.kept} records kept, fewer than min_records {options.min_records}")
    if options.max_records is not None and counts.kept > options.max_records:
        reasons.append(f"{counts.kept} records kept, more than max_records {options.max_records}")
    if counts.kept and (reason := _split_too_small(counts, options)):
        reasons.append(reason)
    return reasons


def _split_too_small(counts: Counts, options: PrepareOptions) -> str | None:
    """Why the splits cannot both train and evaluate a model, or None when they can."""
    min_train, min_eval, share = options.min_train_records, options.min_eval_records, options.eval_share
    if counts.train >= min_train and (share <= 0 or counts.eval >= min_eval):
        return None
    if share > 0:
        # the split sends about eval_share of the distinct prompts to eval
        prompts = math.ceil(min_eval / share)
        need = (
            f"at least {min_train} train and {min_eval} eval record(s) (eval_share {share:g}: about {prompts}"
        )
        need += " distinct prompts or more)"
    else:
        need = f"at least {min_train} train record(s)"
    return (
        f"too small to split: {counts.kept} kept gave {counts.train} train / {counts.eval} eval; needs {need}"
    )


def iter_records(
    uri: str, options: PrepareOptions | None = None
) -> Iterator[tuple[int, ConversationRecord | RecordError]]:
    """Load and convert a file: ``(line_no, ConversationRecord | RecordError)`` per record.

    No sanitizing or validation (use :func:`sanitize_record` and :class:`Validator`); a
    record whose roles are not user/assistant comes back as a RecordError.
    """
    options = options or PrepareOptions()
    source = RowSource(uri, options.format, options.max_record_bytes)
    converter: Converter | RecordError | None = None
    for line, row in source:
        if isinstance(row, RecordError):
            yield line, row
            continue
        if not isinstance(converter, Converter):
            converter = open_converter(source, options, line, row)
            if isinstance(converter, RecordError):
                yield line, converter
                continue
        converted = converter.convert(line, row)
        if isinstance(converted, RecordError):
            yield line, converted
            continue
        system, turns, _ = converted
        if any(role not in ("user", "assistant") for role, _ in turns):
            yield line, RecordError(line, "invalid_role", "a message role is not user or assistant", row)
            continue
        yield line, ConversationRecord.from_turns(turns, system=system)


__all__ = ["DatasetError", "Progress", "iter_records", "prepare_dataset"]
