"""Options and report of a preparation run (pydantic: they cross process boundaries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mixtune.dataprep.dedupe import DEFAULT_MEMORY_DIGESTS
from mixtune.dataprep.loaders import DEFAULT_MAX_RECORD_BYTES
from mixtune.dataprep.tokens import REPORTED_LENGTHS

# Records longer than this are rejected unless told otherwise: a cap no training length
# reaches, so only absurd records (an 8 MB question) go. A run passes its train.max_length.
DEFAULT_MAX_TOKENS = 32_768


class PrepareOptions(BaseModel):
    """How to read, convert, sanitize, validate and split one dataset."""

    model_config = ConfigDict(extra="forbid")

    mapping: dict[str, str] | None = Field(
        default=None, description="role -> column: question, answer, system, text, label, instruction, ..."
    )
    system_prompt: str | None = None
    instruction_template: str | None = Field(
        default=None, description="user-turn template; {text} (or {question}) is replaced by the input text"
    )
    format: str | None = Field(
        default=None, description="jsonl, json, csv, tsv or parquet; default by suffix"
    )
    strict: bool = False
    max_reject_share: float = Field(default=0.05, ge=0, le=1)
    max_tokens: int | None = Field(
        default=DEFAULT_MAX_TOKENS,
        ge=0,
        description="reject records longer than this many tokens (0 or None: no limit); "
        "a run defaults it to train.max_length",
    )
    tokenizer: str | None = Field(
        default=None, description="local tokenizer folder (CLI only, not on Lambda)"
    )
    eval_share: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 0
    min_records: int = Field(default=1, ge=0)
    min_train_records: int = Field(default=1, ge=0, description="fewer in prepared.jsonl rejects the dataset")
    min_eval_records: int = Field(
        default=1, ge=0, description="fewer in eval.jsonl rejects the dataset (when eval_share > 0)"
    )
    max_records: int | None = Field(default=None, ge=1)
    sanitize: bool = True
    dedupe: bool = True
    dedupe_memory_digests: int = Field(
        default=DEFAULT_MEMORY_DIGESTS,
        ge=1,
        description="digests held in memory for exact dedupe; beyond this they spill to disk",
    )
    extra_reserved_tokens: list[str] = Field(default_factory=list)
    max_record_bytes: int = Field(default=DEFAULT_MAX_RECORD_BYTES, gt=0)
    max_errors: int = Field(default=20, ge=0, description="how many rejections the report lists")
    spill_budget_bytes: int | None = Field(
        default=None,
        gt=0,
        description="most bytes of temporary files (the dedupe spill, 24 bytes per kept record past "
        "dedupe_memory_digests); past it preparation stops with SpillBudgetExceeded. None: no limit",
    )

    @classmethod
    def for_training(cls, prepare: Mapping[str, Any], max_length: int) -> PrepareOptions:
        """A run's options: its ``prepare`` section, with ``max_tokens`` defaulting to the
        training length (records the trainer would truncate are rejected, with their lines).
        An explicit ``max_tokens`` (0 or None: no limit) wins."""
        return cls.model_validate({"max_tokens": max_length, **prepare})

    @field_validator("max_tokens")
    @classmethod
    def _zero_is_no_limit(cls, value: int | None) -> int | None:
        return value or None

    @field_validator("mapping")
    @classmethod
    def _mapping_columns_named(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and any(not column for column in value.values()):
            raise ValueError("every mapped role needs a column name")
        return value or None


class Counts(BaseModel):
    """``input == kept + rejected``; ``sanitized <= kept``; ``train + eval == kept``."""

    input: int = 0
    kept: int = 0
    sanitized: int = 0
    rejected: int = 0
    train: int = 0
    eval: int = 0


class ErrorEntry(BaseModel):
    line: int
    rule: str
    message: str


class TokenStats(BaseModel):
    """Token lengths of the kept records (``method``: the estimate or a tokenizer)."""

    total: int = 0
    max: int = 0
    method: str = "estimate"
    over: dict[int, int] = Field(
        default_factory=lambda: dict.fromkeys(REPORTED_LENGTHS, 0),
        description="kept records longer than N tokens, for N in 1024, 2048, 4096, 8192 (to choose "
        "a training length)",
    )


class PrepareReport(BaseModel):
    """Everything a run needs to know about a prepared dataset (``report.json``)."""

    accepted: bool
    source_uri: str
    out_uri: str
    format: str
    shape: str | None = None
    labels: list[str] | None = None
    counts: Counts
    rule_counts: dict[str, int] = Field(default_factory=dict, description="rejections per rule")
    sanitize_counts: dict[str, int] = Field(default_factory=dict, description="repairs per table entry")
    pass_rate: float = 0.0
    reject_share: float = 0.0
    reasons: list[str] = Field(default_factory=list, description="why the dataset was rejected")
    errors: list[ErrorEntry] = Field(default_factory=list, description="the first rejections")
    tokens: TokenStats = Field(default_factory=TokenStats)
    input_sha256: str | None = None
    output_sha256: dict[str, str] = Field(default_factory=dict)
    options: PrepareOptions
    seconds: float = 0.0

    @classmethod
    def unusable(cls, source_uri: str, out_uri: str, options: PrepareOptions, reason: str) -> PrepareReport:
        """The report of a file unusable as a whole (a DatasetError): rejected, nothing read."""
        return cls(
            accepted=False,
            source_uri=source_uri,
            out_uri=out_uri,
            format=options.format or "unknown",
            counts=Counts(),
            reasons=[reason],
            options=options,
        )

    def summary(self) -> str:
        """One short line for humans and logs (counts and rules, never dataset text)."""
        c = self.counts
        verdict = "accepted" if self.accepted else "REJECTED"
        line = (
            f"{verdict}: {c.input} records, {c.kept} kept ({c.sanitized} sanitized), {c.rejected} rejected"
            f" ({self.reject_share:.1%}); {c.train} train / {c.eval} eval; shape {self.shape or 'unknown'}"
        )
        if self.rule_counts:
            top = sorted(self.rule_counts.items(), key=lambda item: -item[1])[:3]
            line += "; rules: " + ", ".join(f"{rule} {count}" for rule, count in top)
        if self.reasons:
            line += "; " + "; ".join(self.reasons)
        return line
