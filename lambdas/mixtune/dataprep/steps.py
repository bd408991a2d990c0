"""The per-record steps of preparation, and the tally of a pass.

:class:`RecordSteps` holds the converter (set up from the file's first record), the
sanitizer, the record digest and the token counter of one preparation. The first pass
(:mod:`.pipeline`) runs them in its hot loop with validation in between; the late-duplicate
pass (:mod:`.late_duplicates`) runs the same ones through :meth:`RecordSteps.rebuild`, so a
record read twice comes out byte for byte the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mixtune.dataprep.convert import Conversation, Converter, detect_shape
from mixtune.dataprep.errors import RecordError
from mixtune.dataprep.loaders import RowSource
from mixtune.dataprep.outputs import record_digester, record_line
from mixtune.dataprep.prompts import prompt_digester
from mixtune.dataprep.report import Counts, ErrorEntry, PrepareOptions, TokenStats
from mixtune.dataprep.sanitize import Sanitizer, default_table
from mixtune.dataprep.tokens import ConversationCounter, conversation_counter, token_counter

DUPLICATE_MESSAGE = "an exact duplicate of an earlier record"
MAX_LABELS_REPORTED = 1000


def build_sanitizer(options: PrepareOptions) -> Sanitizer:
    extra = list(options.extra_reserved_tokens)
    if options.tokenizer:
        from mixtune.dataprep.tokens import tokenizer_special_tokens  # loads transformers lazily

        extra.extend(tokenizer_special_tokens(options.tokenizer))
    return Sanitizer(default_table(extra))


def open_converter(
    source: RowSource, options: PrepareOptions, line: int, row: Any
) -> Converter | RecordError:
    """The converter for a file, set up from its header or its first parsed record.

    A first record that is not an object cannot tell the shape: it comes back as a
    ``not_an_object`` error and the next record is asked.
    """
    keys = source.columns if source.columns is not None else row if isinstance(row, dict) else None
    if keys is None:
        return RecordError(line, "not_an_object", "the record is not a JSON object", row)
    shape = detect_shape(list(keys), options.mapping, source.uri, source.tabular, line)
    return Converter(shape, options.system_prompt, options.instruction_template)


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A kept record built again: its digest, repairs and size."""

    digest: int
    changes: Counter[str] | None
    tokens: int


class RecordSteps:
    """Convert, sanitize, serialise, digest and count one record, the same way every time.

    (The prompt digest only places a record in a split; a late duplicate keeps the side its
    first pass gave it, so :meth:`rebuild` does not need it.)
    """

    def __init__(self, options: PrepareOptions) -> None:
        self.sanitizer = build_sanitizer(options)
        self.sanitize_turns: (
            Callable[[str | None, list[tuple[str, str]]], tuple[str | None, Counter[str] | None, str | None]]
            | None
        ) = self.sanitizer.sanitize_turns if options.sanitize else None
        self.record_digest = record_digester(options.seed)
        self.prompt_digest = prompt_digester(options.seed)
        count_text, self.token_method = token_counter(options.tokenizer)
        self.count_tokens: Callable[[str], int] = count_text
        self.count_conversation: ConversationCounter = conversation_counter(count_text)
        self.converter: Converter | None = None

    def rebuild(self, line: int, row: Any) -> Rebuilt | None:
        """The steps of the first pass (validation aside) on a record it kept; None when the
        record no longer converts (the file changed)."""
        converted: Conversation | RecordError = self.converter.convert(line, row)  # type: ignore[union-attr]
        if converted.__class__ is RecordError:
            return None
        system, turns, _ = converted  # type: ignore[misc]
        changes = None
        if self.sanitize_turns is not None:
            system, changes, _ = self.sanitize_turns(system, turns)
        digest = self.record_digest(record_line(system, turns))
        return Rebuilt(digest, changes, self.count_conversation(system, turns))


@dataclass
class Tally:
    """Everything a pass counts, in the report's own models."""

    counts: Counts
    tokens: TokenStats
    rule_counts: Counter[str] = field(default_factory=Counter)
    sanitize_counts: Counter[str] = field(default_factory=Counter)
    errors: list[ErrorEntry] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)

    def reject(self, error: RecordError, max_errors: int) -> None:
        self.counts.rejected += 1
        self.rule_counts[error.rule] += 1
        if len(self.errors) < max_errors:
            self.errors.append(ErrorEntry(line=error.line, rule=error.rule, message=error.message))

    def remove(
        self,
        records: int,
        in_eval: int,
        *,
        sanitized: int,
        sanitize_counts: Counter[str],
        tokens: int,
        over: Counter[int],
        errors: list[ErrorEntry],
        max_errors: int,
    ) -> None:
        """Move ``records`` kept records (``in_eval`` of them in eval) to the rejected duplicates."""
        counts = self.counts
        counts.kept -= records
        counts.rejected += records
        counts.train -= records - in_eval
        counts.eval -= in_eval
        counts.sanitized -= sanitized
        self.sanitize_counts = +(self.sanitize_counts - sanitize_counts)  # drop rules now at zero
        self.tokens.total -= tokens  # the max stays: the kept first occurrence has the same size
        for length, count in over.items():
            self.tokens.over[length] -= count
        self.rule_counts["duplicate"] += records
        self.errors = sorted(self.errors + errors, key=lambda e: e.line)[:max_errors]
