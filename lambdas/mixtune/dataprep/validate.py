"""The validator: every rule Nova applies to SFT text data, plus token length.

Per-record rules (rule ids as they appear in reports and ``rejected.jsonl``):

``needs_user_and_assistant``  at least one user and one assistant turn
``system_in_messages``        no ``system`` role inside ``messages`` (it belongs on top)
``invalid_role``              only ``user`` and ``assistant`` roles
``alternation``               strict alternation, starting with user, ending with assistant
``empty_text``                no empty or whitespace-only text (system included)
``reserved_string``           no reserved string left (see :mod:`.sanitize`)
``max_tokens``                at most ``max_tokens`` tokens (tokenizer, or the estimate)

Rules over the whole dataset live in :mod:`.pipeline`: ``schema_version`` (converter),
``consistent_fields`` (the optional ``system`` is present in all records or in none; the
first kept record decides), ``duplicate`` (exact duplicates after sanitizing), and the
minimum and maximum record counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mixtune.dataprep.errors import RecordError
from mixtune.dataprep.sanitize import Sanitizer
from mixtune.dataprep.tokens import conversation_counter, estimate_tokens

RECORD_RULES = (
    "needs_user_and_assistant",
    "system_in_messages",
    "invalid_role",
    "alternation",
    "empty_text",
    "reserved_string",
    "max_tokens",
)


def _clean(_text: str) -> None:
    return None


class Validator:
    """Checks one conversation; returns the first broken rule as a RecordError, or None."""

    def __init__(
        self,
        sanitizer: Sanitizer | None = None,
        max_tokens: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        self.sanitizer = sanitizer if sanitizer is not None else Sanitizer()
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens or estimate_tokens
        self.count_conversation = conversation_counter(self.count_tokens)

    def check(
        self,
        line: int,
        system: str | None,
        turns: Sequence[tuple[str, str]],
        raw: object = None,
        check_reserved: bool = True,
        tokens: int | None = None,
    ) -> RecordError | None:
        """The first broken rule; ``check_reserved=False`` when the caller already did that,
        ``tokens`` when it already counted the conversation's length."""
        error = self._check_form(line, system, turns, raw, check_reserved)
        if error is None and self.max_tokens is not None:
            if tokens is None:
                tokens = self.count_conversation(system, turns)
            if tokens > self.max_tokens:
                return RecordError(line, "max_tokens", f"{tokens} tokens > max_tokens {self.max_tokens}", raw)
        return error

    def _check_form(
        self,
        line: int,
        system: str | None,
        turns: Sequence[tuple[str, str]],
        raw: object,
        check_reserved: bool,
    ) -> RecordError | None:
        """Every rule but the length: roles, alternation, empty and reserved texts."""
        if len(turns) < 2:
            return RecordError(
                line, "needs_user_and_assistant", "needs at least one user and one assistant turn", raw
            )
        find = self.sanitizer.find if check_reserved else _clean
        expected = "user"
        for index, (role, text) in enumerate(turns):
            if role != expected:
                if role == "system":
                    return RecordError(
                        line, "system_in_messages", f"messages[{index}] has the system role", raw
                    )
                if role not in ("user", "assistant"):
                    return RecordError(line, "invalid_role", f"messages[{index}] has an unknown role", raw)
                where = (
                    "the first message must be from user"
                    if index == 0
                    else f"messages[{index}] repeats {role}"
                )
                return RecordError(line, "alternation", where, raw)
            if not text or text.isspace():
                return RecordError(line, "empty_text", f"messages[{index}] has empty text", raw)
            if (rule := find(text)) is not None:
                return RecordError(line, "reserved_string", f"messages[{index}] holds {rule}", raw)
            expected = "assistant" if expected == "user" else "user"
        if turns[-1][0] != "assistant":
            return RecordError(line, "alternation", "the last message must be from assistant", raw)
        if system is not None:
            if not system or system.isspace():
                return RecordError(line, "empty_text", "the system prompt is empty", raw)
            if (rule := find(system)) is not None:
                return RecordError(line, "reserved_string", f"the system prompt holds {rule}", raw)
        return None
