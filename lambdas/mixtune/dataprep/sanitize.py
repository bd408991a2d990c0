"""The sanitizer: repairs strings that collide with a model's conversation template.

A configurable table of reserved strings, each with an action:

* ``space_before_colon``: role markers (``User:``, ``assistant:`` ...) matched
  case-insensitively at a word boundary right before a colon; a space is put before the
  colon and the original case is kept (``user: hi`` -> ``user : hi``).
* ``remove``: special tokens (``[EOS]``, ``<image>``, ``<|im_start|>`` ...), matched
  exactly, are removed.

Sanitizing runs to a fixed point (removing ``<im<image>age>`` leaves ``<image>``, which is
removed too), so it is idempotent, and every change is counted per table entry.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from mixtune.records import ConversationRecord

Action = Literal["space_before_colon", "remove"]

DEFAULT_ROLE_MARKERS: tuple[str, ...] = (
    "System",
    "User",
    "Assistant",
    "Bot",
    "Human",
    "Thought",
    "Tool",
    "Observation",
    "Developer",
    "Function",
)

DEFAULT_SPECIAL_TOKENS: tuple[str, ...] = (
    "[EOS]",
    "[BOS]",
    "[PAD]",
    "[UNK]",
    "[SEP]",
    "[CLS]",
    "[MASK]",
    "[INST]",
    "[/INST]",
    "<<SYS>>",
    "<</SYS>>",
    "<image>",
    "<video>",
    "<audio>",
    "<unk>",
    "<s>",
    "</s>",
    "<pad>",
    "<mask>",
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|im_sep|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "<|endofprompt|>",
    "<start_of_turn>",
    "<end_of_turn>",
)

# The most passes a fixed point can need for the default table is small; the bound only
# guards against a pathological custom table whose repairs keep creating new matches.
_MAX_PASSES = 16


@dataclass(frozen=True, slots=True)
class ReservedString:
    """One table entry: the reserved text and what the sanitizer does with it."""

    text: str
    action: Action

    @property
    def rule(self) -> str:
        return f"role:{self.text.lower()}" if self.action == "space_before_colon" else f"token:{self.text}"


def default_table(extra_tokens: Iterable[str] = ()) -> list[ReservedString]:
    table = [ReservedString(marker, "space_before_colon") for marker in DEFAULT_ROLE_MARKERS]
    seen = {entry.text for entry in table}
    for token in (*DEFAULT_SPECIAL_TOKENS, *extra_tokens):
        if token and token not in seen:
            seen.add(token)
            table.append(ReservedString(token, "remove"))
    return table


class Sanitizer:
    """Applies a reserved-string table to texts; counts every change per rule."""

    def __init__(self, table: Sequence[ReservedString] | None = None) -> None:
        self.table: list[ReservedString] = list(table) if table is not None else default_table()
        markers = [entry for entry in self.table if entry.action == "space_before_colon"]
        tokens = sorted(
            (entry for entry in self.table if entry.action == "remove"), key=lambda e: -len(e.text)
        )
        self._marker_rule = {entry.text.lower(): entry.rule for entry in markers}
        self._token_rule = {entry.text: entry.rule for entry in tokens}
        self._markers = (
            re.compile(r"\b(" + "|".join(re.escape(m.text) for m in markers) + r")(?=:)", re.IGNORECASE)
            if markers
            else None
        )
        self._tokens = re.compile("|".join(re.escape(t.text) for t in tokens)) if tokens else None
        # Cheap prefilter: a text holding none of these characters needs no further regex.
        triggers = {t.text[0] for t in tokens} | ({":"} if markers else set())
        self._trigger = (
            re.compile("[" + "".join(re.escape(c) for c in sorted(triggers)) + "]") if triggers else None
        )
        self.counts: Counter[str] = Counter()
        self._search = self._trigger.search if self._trigger is not None else _never

    def needs_work(self, text: str) -> bool:
        """Whether ``text`` may hold a reserved string (a fast, conservative test)."""
        return self._search(text) is not None

    def sanitize_turns(
        self, system: str | None, turns: list[tuple[str, str]]
    ) -> tuple[str | None, Counter[str] | None, str | None]:
        """Repair a conversation: ``(system, changes, leftover)``; ``turns`` is updated in place.

        ``changes`` counts the repairs per rule (None when there were none); ``leftover`` is
        the rule of a reserved string still there after repairing (None when clean). Only a
        text holding a trigger character can hold a reserved string, so only those are
        repaired and checked again. Preparation and its late-duplicate pass both call this:
        their records must come out byte for byte the same.
        """
        search = self._search
        changes: Counter[str] | None = None
        leftover: str | None = None
        if system is not None and search(system) is not None:
            changes = Counter()
            system = self.sanitize_text(system, changes)
            leftover = self.find(system)
        for index, (role, text) in enumerate(turns):
            if search(text) is not None:
                if changes is None:
                    changes = Counter()
                text = self.sanitize_text(text, changes)
                turns[index] = (role, text)
                leftover = leftover or self.find(text)
        return system, changes, leftover

    def find(self, text: str) -> str | None:
        """The rule of the first reserved string left in ``text``, or None when it is clean."""
        if not self.needs_work(text):
            return None
        if self._tokens is not None and (match := self._tokens.search(text)):
            return self._token_rule[match.group(0)]
        if self._markers is not None and (match := self._markers.search(text)):
            return self._marker_rule[match.group(1).lower()]
        return None

    def sanitize_text(self, text: str, counts: Counter[str] | None = None) -> str:
        """The repaired text; changes are added to ``counts`` (default: ``self.counts``)."""
        if not self.needs_work(text):
            return text
        counts = self.counts if counts is None else counts
        for _ in range(_MAX_PASSES):
            before = text
            if self._tokens is not None:
                text = self._tokens.sub(lambda m: self._count(counts, self._token_rule[m.group(0)], ""), text)
            if self._markers is not None:
                text = self._markers.sub(
                    lambda m: self._count(counts, self._marker_rule[m.group(1).lower()], m.group(1) + " "),
                    text,
                )
            if text == before:
                break
        return text

    @staticmethod
    def _count(counts: Counter[str], rule: str, replacement: str) -> str:
        counts[rule] += 1
        return replacement

    def sanitize_record(self, record: ConversationRecord) -> ConversationRecord:
        """The record with every text repaired (the same object when nothing changed)."""
        system = record.system_text
        new_system = self.sanitize_text(system) if system is not None else None
        turns = [(role, self.sanitize_text(text)) for role, text in record.turns()]
        if new_system == system and turns == record.turns():
            return record
        return ConversationRecord.from_turns(turns, system=new_system)


def _never(_text: str) -> None:
    return None


_DEFAULT = Sanitizer()


def sanitize_text(text: str) -> str:
    """Repair one text with the default table."""
    return _DEFAULT.sanitize_text(text, Counter())


def sanitize_record(record: ConversationRecord, sanitizer: Sanitizer | None = None) -> ConversationRecord:
    """Repair every text of a record (default table unless a sanitizer is given)."""
    if sanitizer is None:
        return Sanitizer().sanitize_record(record)
    return sanitizer.sanitize_record(record)
