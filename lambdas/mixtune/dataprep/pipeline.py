"""prepare_dataset: load -> convert -> sanitize -> validate -> dedupe -> split -> write.

One streaming pass. Nothing is lost: each input record ends in ``prepared.jsonl`` or
``eval.jsonl`` (kept) or in ``rejected.jsonl`` (with its line number, rule and reason), and
``report.json`` accounts for them. The hot loop works on plain strings and tuples and
serialises with orjson; pydantic is used only at the boundaries (options and report).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any

import orjson

from mixtune import storage
from mixtune.dataprep.convert import Conversation, Converter, detect_shape
from mixtune.dataprep.dedupe import Deduper
from mixtune.dataprep.errors import DatasetError, RecordError
from mixtune.dataprep.loaders import RowSource
from mixtune.dataprep.report import Counts, ErrorEntry, PrepareOptions, PrepareReport, TokenStats
from mixtune.dataprep.sanitize import Sanitizer, default_table
from mixtune.dataprep.split import Splitter
from mixtune.dataprep.tokens import estimate_tokens
from mixtune.dataprep.validate import Validator
from mixtune.records import SCHEMA_VERSION, ConversationRecord

OUTPUT_FILES = ("prepared.jsonl", "eval.jsonl", "rejected.jsonl")
PROGRESS_EVERY = 16384
DUPLICATE_MESSAGE = "an exact duplicate of an earlier record"
_MAX_LABELS_REPORTED = 1000


@dataclass(frozen=True, slots=True)
class Progress:
    records: int
    bytes_read: int
    total_bytes: int | None


class _Sink:
    """A buffered JSONL writer that hashes what it writes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._buffer: list[bytes] = []
        self.digest = hashlib.sha256()
        self.lines = 0

    def add(self, line: bytes) -> None:
        self._buffer.append(line)
        if len(self._buffer) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._buffer.append(b"")
            data = b"\n".join(self._buffer)
            self.lines += len(self._buffer) - 1
            self._buffer = []
            self.digest.update(data)
            self._stream.write(data)


def build_sanitizer(options: PrepareOptions) -> Sanitizer:
    extra = list(options.extra_reserved_tokens)
    if options.tokenizer:
        from mixtune.dataprep.tokens import tokenizer_special_tokens  # loads transformers lazily

        extra.extend(tokenizer_special_tokens(options.tokenizer))
    return Sanitizer(default_table(extra))


def _token_counter(options: PrepareOptions) -> tuple[Callable[[str], int], str]:
    if options.tokenizer:
        from mixtune.dataprep.tokens import tokenizer_counter

        return tokenizer_counter(options.tokenizer), f"tokenizer:{options.tokenizer}"
    return estimate_tokens, "estimate"


def record_line(system: str | None, turns: list[tuple[str, str]]) -> bytes:
    """The compact Converse JSON line (no newline), the same bytes as ConversationRecord's."""
    record: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    if system is not None:
        record["system"] = [{"text": system}]
    record["messages"] = [{"role": role, "content": [{"text": text}]} for role, text in turns]
    return orjson.dumps(record)


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
    sanitizer = build_sanitizer(options)
    count_tokens, token_method = _token_counter(options)
    validator = Validator(sanitizer, options.max_tokens, count_tokens)
    splitter = Splitter(options.eval_share, options.seed)
    salt = options.seed.to_bytes(8, "big", signed=True)
    rule_counts: Counter[str] = Counter()
    sanitize_counts: Counter[str] = Counter()
    errors: list[ErrorEntry] = []
    labels: set[str] = set()
    converter: Converter | None = None
    expect_system: bool | None = None
    do_sanitize, needs_work, sanitize_text = options.sanitize, sanitizer.needs_work, sanitizer.sanitize_text
    check, find = validator.check, sanitizer.find
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    is_eval = splitter.is_eval
    count_all_tokens = options.max_tokens is None  # otherwise the validator already counted

    dedupe = Deduper(options.dedupe_memory_digests) if options.dedupe else None
    with ExitStack() as stack:
        if dedupe is not None:  # on failure remove its spill files; on success they are used below
            stack.push(lambda failed, *_: dedupe.close() if failed else None)
        sinks = {
            name: _Sink(stack.enter_context(storage.open_write(storage.join(out_uri, name))))
            for name in OUTPUT_FILES
        }
        train_sink, eval_sink, rejected_sink = (sinks[name] for name in OUTPUT_FILES)

        n_rejected = [0]

        def reject(error: RecordError) -> None:
            n_rejected[0] += 1
            rule_counts[error.rule] += 1
            if len(errors) < options.max_errors:
                errors.append(ErrorEntry(line=error.line, rule=error.rule, message=error.message))
            rejected_sink.add(_rejected_line(error))

        n_input = n_kept = n_sanitized = n_train = n_eval = 0
        token_total = token_max = 0
        estimate = count_tokens is estimate_tokens
        for line, row in source:
            n_input += 1
            if progress is not None and n_input % PROGRESS_EVERY == 0:
                progress(Progress(n_input, source.bytes_read, source.total_bytes))
            if row.__class__ is RecordError:
                reject(row)
                continue
            if converter is None:
                keys = (
                    source.columns if source.columns is not None else row if isinstance(row, dict) else None
                )
                if keys is None:
                    reject(RecordError(line, "not_an_object", "the record is not a JSON object", row))
                    continue
                shape = detect_shape(list(keys), options.mapping, source_uri, source.tabular, line)
                converter = Converter(shape, options.system_prompt, options.instruction_template)
                convert = converter.convert
            converted: Conversation | RecordError = convert(line, row)
            if converted.__class__ is RecordError:
                reject(converted)  # type: ignore[arg-type]
                continue
            system, turns, label = converted  # type: ignore[misc]
            changes: Counter[str] | None = None
            leftover: str | None = None
            if do_sanitize:
                # Only texts holding a trigger character can hold a reserved string, so the
                # validator's reserved-string rule is settled here, after repairing.
                if system is not None and needs_work(system):
                    changes = Counter()
                    system = sanitize_text(system, changes)
                    leftover = find(system)
                for index, (role, text) in enumerate(turns):
                    if needs_work(text):
                        if changes is None:
                            changes = Counter()
                        text = sanitize_text(text, changes)
                        turns[index] = (role, text)
                        leftover = leftover or find(text)
                if leftover is not None:
                    reject(RecordError(line, "reserved_string", f"{leftover} is left after sanitizing", row))
                    continue
            error = check(line, system, turns, row, not do_sanitize)
            if error is not None:
                reject(error)
                continue
            has_system = system is not None
            if expect_system is None:
                expect_system = has_system
            elif has_system is not expect_system:
                state = "has" if has_system else "lacks"
                reject(
                    RecordError(
                        line,
                        "consistent_fields",
                        f"the record {state} a system prompt, the first did not",
                        row,
                    )
                )
                continue
            data = record_line(system, turns)
            digest = from_bytes(blake2b(data, digest_size=8, salt=salt).digest(), "big")
            if dedupe is not None and not dedupe.first_sight(digest):
                reject(RecordError(line, "duplicate", DUPLICATE_MESSAGE, row))
                continue
            if count_all_tokens:
                if estimate:
                    size = (len(system) + 3) >> 2 if system else 0
                    for _, text in turns:
                        size += (len(text) + 3) >> 2
                else:
                    size = sum(count_tokens(text) for _, text in turns) + (
                        count_tokens(system) if system else 0
                    )
                token_total += size
                if size > token_max:
                    token_max = size
            n_kept += 1
            if changes:
                n_sanitized += 1
                sanitize_counts.update(changes)
            if label is not None and len(labels) < _MAX_LABELS_REPORTED:
                labels.add(label)
            if is_eval(digest, label):
                if dedupe is not None and dedupe.spilling:
                    dedupe.spill(digest, n_input, True, n_eval)
                n_eval += 1
                eval_sink.add(data)
            else:
                if dedupe is not None and dedupe.spilling:
                    dedupe.spill(digest, n_input, False, n_train)
                n_train += 1
                train_sink.add(data)
        counts = Counts(
            input=n_input,
            kept=n_kept,
            sanitized=n_sanitized,
            rejected=n_rejected[0],
            train=n_train,
            eval=n_eval,
        )
        tokens = TokenStats(total=token_total, max=token_max, method=token_method)
        for sink in sinks.values():
            sink.flush()
    output_sha256 = {name: sink.digest.hexdigest() for name, sink in sinks.items()}
    if dedupe is not None:
        with dedupe:  # the outputs are in place now: move any late duplicates out of them
            if dedupe.resolve():
                with _LateFix(dedupe, source_uri, options, converter, sanitizer, salt, count_tokens) as fix:  # type: ignore[arg-type]
                    output_sha256 = fix.rewrite_outputs(out_uri, output_sha256)
                    counts, tokens = fix.adjust(counts, tokens, count_all_tokens)
                rule_counts["duplicate"] += dedupe.late
                sanitize_counts.subtract(fix.sanitize_counts)
                sanitize_counts = +sanitize_counts  # drop rules whose count fell to zero
                errors = sorted(errors + fix.errors, key=lambda e: e.line)[: options.max_errors]
    if not count_all_tokens:
        tokens = _recount_tokens(out_uri, count_tokens, token_method)

    reasons = _dataset_verdict(counts, options)
    reject_share = counts.rejected / counts.input if counts.input else 0.0
    report = PrepareReport(
        accepted=not reasons,
        source_uri=source_uri,
        out_uri=out_uri,
        format=source.format,
        shape=converter.shape.describe() if converter else None,
        labels=sorted(labels) if converter and converter.shape.name == "classification" else None,
        counts=counts,
        rule_counts=dict(sorted(rule_counts.items())),
        sanitize_counts=dict(sorted(sanitize_counts.items())),
        pass_rate=counts.kept / counts.input if counts.input else 0.0,
        reject_share=reject_share,
        reasons=reasons,
        errors=errors,
        tokens=tokens,
        input_sha256=source.sha256,
        output_sha256=output_sha256,
        options=options,
        seconds=round(time.perf_counter() - started, 3),
    )
    report_bytes = report.model_dump_json(indent=2).encode()
    storage.write_bytes(storage.join(out_uri, "report.json"), report_bytes)
    if progress is not None:
        progress(Progress(counts.input, source.bytes_read, source.total_bytes))
    return report


def _rejected_line(error: RecordError) -> bytes:
    entry = {"line": error.line, "rule": error.rule, "reason": error.message, "record": error.raw}
    try:
        return orjson.dumps(entry, default=str)
    except (TypeError, orjson.JSONEncodeError):
        entry["record"] = None
        return orjson.dumps(entry)


class _LateFix:
    """Moves late duplicates (found after the dedupe budget spilled) to ``rejected.jsonl``.

    A second read of the source recovers each one's line, raw row and sanitizer repairs
    (so ``rejected.jsonl`` and the counts read as if it had been rejected on sight); one
    filtering pass over the outputs drops them. Both happen only when there is one.
    """

    def __init__(
        self,
        dedupe: Deduper,
        source_uri: str,
        options: PrepareOptions,
        converter: Converter,
        sanitizer: Sanitizer,
        salt: bytes,
        count_tokens: Callable[[str], int],
    ) -> None:
        self.dedupe = dedupe
        self.sanitize_counts: Counter[str] = Counter()
        self.sanitized = self.tokens = self.in_eval = 0
        self.errors: list[ErrorEntry] = []
        self._rejected = tempfile.TemporaryFile()  # noqa: SIM115  (closed by __exit__)
        try:
            self._replay(source_uri, options, converter, sanitizer, salt, count_tokens)
        except BaseException:
            self._rejected.close()
            raise

    def _replay(
        self,
        source_uri: str,
        options: PrepareOptions,
        converter: Converter,
        sanitizer: Sanitizer,
        salt: bytes,
        count_tokens: Callable[[str], int],
    ) -> None:
        """Read the source again for the late duplicates' lines, raw rows and repairs."""
        pending = self.dedupe.late_duplicates()
        item = next(pending)
        source = RowSource(source_uri, options.format, options.max_record_bytes)
        rows = iter(source)
        try:
            for seq, (line, row) in enumerate(rows, start=1):
                if seq < item.seq:
                    continue
                converted = converter.convert(line, row)
                if converted.__class__ is RecordError:
                    raise DatasetError(source_uri, "the file changed while it was being prepared", line)
                system, turns, _ = converted  # type: ignore[misc]
                changes: Counter[str] = Counter()
                if options.sanitize:
                    if system is not None and sanitizer.needs_work(system):
                        system = sanitizer.sanitize_text(system, changes)
                    turns = [
                        (role, sanitizer.sanitize_text(text, changes) if sanitizer.needs_work(text) else text)
                        for role, text in turns
                    ]
                data = record_line(system, turns)
                digest = int.from_bytes(hashlib.blake2b(data, digest_size=8, salt=salt).digest(), "big")
                if (digest or 1) != item.digest:
                    raise DatasetError(source_uri, "the file changed while it was being prepared", line)
                if changes:
                    self.sanitized += 1
                    self.sanitize_counts.update(changes)
                self.tokens += sum(count_tokens(text) for _, text in turns) + (
                    count_tokens(system) if system else 0
                )
                self.in_eval += item.in_eval
                error = RecordError(line, "duplicate", DUPLICATE_MESSAGE, row)
                self._rejected.write(_rejected_line(error) + b"\n")
                if len(self.errors) < options.max_errors:
                    self.errors.append(ErrorEntry(line=line, rule=error.rule, message=error.message))
                item = next(pending, None)  # type: ignore[arg-type]
                if item is None:
                    break
        finally:
            rows.close()  # type: ignore[attr-defined]
        if item is not None:
            raise DatasetError(source_uri, "the file changed while it was being prepared")

    def __enter__(self) -> _LateFix:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._rejected.close()

    def rewrite_outputs(self, out_uri: str, hashes: dict[str, str]) -> dict[str, str]:
        """Drop the late duplicates from the splits, append them to rejected; new hashes."""
        hashes = dict(hashes)
        for name, in_eval in (("prepared.jsonl", False), ("eval.jsonl", True)):
            dropped = self.in_eval if in_eval else self.dedupe.late - self.in_eval
            if dropped:
                drop = (item.position for item in self.dedupe.late_duplicates() if item.in_eval is in_eval)
                hashes[name] = _rewrite(storage.join(out_uri, name), drop)
        self._rejected.seek(0)
        hashes["rejected.jsonl"] = _rewrite(storage.join(out_uri, "rejected.jsonl"), iter(()), self._rejected)
        return hashes

    def adjust(self, counts: Counts, tokens: TokenStats, tokens_counted: bool) -> tuple[Counts, TokenStats]:
        in_eval, n = self.in_eval, self.dedupe.late
        counts = Counts(
            input=counts.input,
            kept=counts.kept - n,
            sanitized=counts.sanitized - self.sanitized,
            rejected=counts.rejected + n,
            train=counts.train - (n - in_eval),
            eval=counts.eval - in_eval,
        )
        if tokens_counted:  # the max stays: the kept first occurrence has the same size
            tokens = TokenStats(total=tokens.total - self.tokens, max=tokens.max, method=tokens.method)
        return counts, tokens


def _rewrite(uri: str, drop: Iterator[int], extra: IO[bytes] | None = None) -> str:
    """Rewrite a JSONL output without the lines ``drop`` names (0-based, ascending), then
    append the lines of ``extra``. Safe in place: ``open_write`` writes beside the target
    (or spools, for S3) and replaces it only when done. Returns the new file's sha256.
    """
    skip = next(drop, -1)
    with storage.open_read(uri) as reader, storage.open_write(uri) as writer:
        sink = _Sink(writer)
        for index, raw in enumerate(reader):
            if index == skip:
                skip = next(drop, -1)
                continue
            sink.add(raw[:-1] if raw.endswith(b"\n") else raw)
        for raw in extra or ():
            sink.add(raw[:-1] if raw.endswith(b"\n") else raw)
        sink.flush()
    return sink.digest.hexdigest()


def _recount_tokens(out_uri: str, count: Callable[[str], int], method: str) -> TokenStats:
    """Token totals over kept records (only when max_tokens made the hot loop skip them)."""
    stats = TokenStats(method=method)
    for name in OUTPUT_FILES[:2]:
        with storage.open_read(storage.join(out_uri, name)) as stream:
            for raw in stream:
                record = orjson.loads(raw)
                size = sum(count(t) for t in _texts(record))
                stats.total += size
                stats.max = max(stats.max, size)
    return stats


def _texts(record: dict) -> Iterator[str]:
    for block in record.get("system") or ():
        yield block["text"]
    for message in record["messages"]:
        for block in message["content"]:
            yield block["text"]


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
    return reasons


def iter_records(
    uri: str, options: PrepareOptions | None = None
) -> Iterator[tuple[int, ConversationRecord | RecordError]]:
    """Load and convert a file: ``(line_no, ConversationRecord | RecordError)`` per record.

    No sanitizing or validation (use :func:`sanitize_record` and :class:`Validator`); a
    record whose roles are not user/assistant comes back as a RecordError.
    """
    options = options or PrepareOptions()
    source = RowSource(uri, options.format, options.max_record_bytes)
    converter: Converter | None = None
    for line, row in source:
        if isinstance(row, RecordError):
            yield line, row
            continue
        if converter is None:
            keys = source.columns if source.columns is not None else row if isinstance(row, dict) else None
            if keys is None:
                yield line, RecordError(line, "not_an_object", "the record is not a JSON object", row)
                continue
            shape = detect_shape(list(keys), options.mapping, uri, source.tabular, line)
            converter = Converter(shape, options.system_prompt, options.instruction_template)
        converted = converter.convert(line, row)
        if isinstance(converted, RecordError):
            yield line, converted
            continue
        system, turns, _ = converted
        if any(role not in ("user", "assistant") for role, _ in turns):
            yield line, RecordError(line, "invalid_role", "a message role is not user or assistant", row)
            continue
        yield line, ConversationRecord.from_turns(turns, system=system)


__all__ = ["DatasetError", "Progress", "iter_records", "prepare_dataset", "record_line"]
