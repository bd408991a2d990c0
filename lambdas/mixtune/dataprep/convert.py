"""Conversion of input rows to conversations: shape detection and column mapping.

Shapes (detected from the first row's field names, case-insensitive, or set by a mapping):

==================  ====================================================================
``messages``        OpenAI ``messages`` (content strings) or Converse (content blocks)
``sharegpt``        ``conversations: [{"from": "human"|"gpt"|..., "value": ...}]``
``alpaca``          ``instruction`` [+ ``input``] -> ``output``
``prompt_completion``  ``prompt`` -> ``completion``
``question_answer`` question/answer columns (any names through the mapping)
``classification``  text/label (label also ``category``, ``intent``, ``class``); the
                    assistant turn is the label verbatim; optional instruction template
``multi_turn``      numbered columns ``question_1, answer_1, question_2, answer_2 ...``
==================  ====================================================================

A converted row is a :data:`Conversation` ``(system, turns, label)``: plain strings and
tuples, so the hot loop builds no pydantic objects. Roles are kept as found (``system`` in
the middle of ``messages`` stays) so that the validator can reject them with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mixtune.dataprep.errors import DatasetError, RecordError
from mixtune.records import SCHEMA_VERSION

Conversation = tuple[str | None, list[tuple[str, str]], str | None]

ALIASES: dict[str, tuple[str, ...]] = {
    "messages": ("messages",),
    "conversations": ("conversations",),
    "instruction": ("instruction",),
    "input": ("input", "context"),
    "output": ("output", "response"),
    "prompt": ("prompt",),
    "completion": ("completion",),
    "question": ("question", "query", "prompt", "input", "user", "human", "instruction"),
    "answer": ("answer", "response", "output", "completion", "assistant", "reply", "target"),
    "text": ("text", "sentence", "utterance", "query", "content", "input", "question"),
    "label": ("label", "category", "intent", "class", "labels"),
    "system": ("system", "system_prompt"),
}
MAPPING_KEYS = frozenset(ALIASES)
SHAPES = (
    "messages",
    "sharegpt",
    "alpaca",
    "prompt_completion",
    "question_answer",
    "classification",
    "multi_turn",
)
# The roles each shape needs, in the order auto-detection tries them.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "messages": ("messages",),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "output"),
    "prompt_completion": ("prompt", "completion"),
    "question_answer": ("question", "answer"),
    "classification": ("text", "label"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {"alpaca": ("input",)}
_NUMBERED_USER = re.compile(r"^(?:question|q|user|prompt|human|input)[ _-]?(\d+)$", re.IGNORECASE)
_NUMBERED_ASSISTANT = re.compile(r"^(?:answer|a|assistant|response|bot|output)[ _-]?(\d+)$", re.IGNORECASE)
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "system": "system",
}


@dataclass
class Shape:
    """A detected input shape: its name and the column of each role (``question`` -> col)."""

    name: str
    columns: dict[str, str] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # multi_turn (user, assistant) columns

    def describe(self) -> str:
        cols = ", ".join(f"{role}={col}" for role, col in self.columns.items())
        return f"{self.name} ({cols})" if cols else self.name


def _find(keys: Mapping[str, str], role: str) -> str | None:
    for alias in ALIASES[role]:
        if alias in keys:
            return keys[alias]
    return None


def detect_shape(
    keys: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    uri: str = "",
    tabular: bool = False,
    line: int | None = None,
) -> Shape:
    """The shape of rows with these field names; a mapping fixes columns by role.

    Raises :class:`DatasetError` when no shape fits, or (for tabular files, where the header
    is known) when a mapped column is absent.
    """
    lowered = {key.lower().strip(): key for key in keys if isinstance(key, str)}
    mapping = dict(mapping or {})
    unknown = set(mapping) - MAPPING_KEYS
    if unknown:
        raise DatasetError(
            uri, f"unknown mapping key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(MAPPING_KEYS))}"
        )
    if tabular:
        for role, column in mapping.items():
            if column not in keys and column.lower() not in lowered:
                raise DatasetError(
                    uri,
                    f"mapped column {column!r} (for {role}) is not in the header; columns: {', '.join(keys)}",
                    1,
                )
            mapping[role] = column if column in keys else lowered[column.lower()]
    chosen = [name for name, roles in _REQUIRED.items() if mapping and any(role in mapping for role in roles)]
    for name in chosen or list(_REQUIRED):
        columns: dict[str, str] = {}
        for role in (*_REQUIRED[name], *_OPTIONAL.get(name, ())):
            column = mapping.get(role) or _find(lowered, role)
            if column is not None:
                columns[role] = column
        if all(role in columns for role in _REQUIRED[name]) and len(set(columns.values())) == len(columns):
            system = mapping.get("system") or _find(lowered, "system")
            if system is not None and name not in ("messages", "sharegpt"):
                columns["system"] = system
            return Shape(name, columns)
        if chosen:
            missing = [role for role in _REQUIRED[name] if role not in columns]
            raise DatasetError(
                uri,
                f"shape {name}: no column for {', '.join(missing) or 'every role'}; add it to the mapping",
            )
    pairs = _numbered_pairs(keys)
    if pairs:
        shape = Shape("multi_turn", pairs=pairs)
        system = mapping.get("system") or _find(lowered, "system")
        if system is not None:
            shape.columns["system"] = system
        return shape
    shown = ", ".join(str(key) for key in list(keys)[:12]) or "(none)"
    raise DatasetError(
        uri,
        f"cannot detect the record shape from the fields {shown}; "
        "pass a mapping such as question=COL,answer=COL or text=COL,label=COL",
        1 if tabular else line,
    )


def _numbered_pairs(keys: Sequence[str]) -> list[tuple[str, str]]:
    users: dict[int, str] = {}
    assistants: dict[int, str] = {}
    for key in keys:
        if not isinstance(key, str):
            continue
        if match := _NUMBERED_USER.match(key.strip()):
            users[int(match.group(1))] = key
        elif match := _NUMBERED_ASSISTANT.match(key.strip()):
            assistants[int(match.group(1))] = key
    return [(users[n], assistants[n]) for n in sorted(users) if n in assistants]


def _text(value: Any) -> str | None:
    """A field as text: strings as they are, numbers and booleans printed; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


class Converter:
    """Turns rows of one shape into conversations; errors come back as RecordError."""

    def __init__(
        self,
        shape: Shape,
        system_prompt: str | None = None,
        instruction_template: str | None = None,
    ) -> None:
        self.shape = shape
        self.system_prompt = system_prompt or None
        self.template = instruction_template or None
        self._system_column = shape.columns.get("system")
        self.convert: Callable[[int, Any], Conversation | RecordError] = getattr(self, f"_{shape.name}")

    def _field(self, line: int, row: dict, role: str, optional: bool = False) -> str | RecordError | None:
        column = self.shape.columns[role]
        value = row.get(column)
        if value is None:
            if optional:
                return None
            return RecordError(line, "missing_field", f"field {column!r} ({role}) is missing or null", row)
        text = _text(value)
        if text is None:
            return RecordError(line, "not_text", f"field {column!r} ({role}) is not text", row)
        return text

    def _system(self, row: dict) -> str | None:
        if self._system_column is not None:
            value = _text(row.get(self._system_column))
            if value and value.strip():
                return value
        return self.system_prompt

    def _apply_template(self, text: str) -> str:
        template = self.template
        if template is None:
            return text
        if "{text}" in template or "{question}" in template:
            return template.replace("{text}", text).replace("{question}", text)
        return f"{template}\n\n{text}"

    def _pair(self, line: int, row: Any, user_role: str, assistant_role: str) -> Conversation | RecordError:
        if not isinstance(row, dict):
            return _not_object(line, row)
        user = self._field(line, row, user_role)
        if isinstance(user, RecordError):
            return user
        answer = self._field(line, row, assistant_role)
        if isinstance(answer, RecordError):
            return answer
        return self._system(row), [("user", self._apply_template(user)), ("assistant", answer)], None  # type: ignore[arg-type]

    def _question_answer(self, line: int, row: Any) -> Conversation | RecordError:
        return self._pair(line, row, "question", "answer")

    def _prompt_completion(self, line: int, row: Any) -> Conversation | RecordError:
        return self._pair(line, row, "prompt", "completion")

    def _classification(self, line: int, row: Any) -> Conversation | RecordError:
        if row.__class__ is not dict:
            return _not_object(line, row)
        columns = self.shape.columns
        text = row.get(columns["text"])
        if text.__class__ is not str:
            text = self._field(line, row, "text")
            if isinstance(text, RecordError):
                return text
        label = row.get(columns["label"])
        if label.__class__ is not str:
            label = self._field(line, row, "label")
            if isinstance(label, RecordError):
                return label
        if self._system_column is None and self.template is None:
            return self.system_prompt, [("user", text), ("assistant", label)], label
        return self._system(row), [("user", self._apply_template(text)), ("assistant", label)], label  # type: ignore[arg-type]

    def _alpaca(self, line: int, row: Any) -> Conversation | RecordError:
        if not isinstance(row, dict):
            return _not_object(line, row)
        instruction = self._field(line, row, "instruction")
        if isinstance(instruction, RecordError):
            return instruction
        output = self._field(line, row, "output")
        if isinstance(output, RecordError):
            return output
        extra = self._field(line, row, "input", optional=True) if "input" in self.shape.columns else None
        if isinstance(extra, RecordError):
            return extra
        user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
        return self._system(row), [("user", self._apply_template(user)), ("assistant", output)], None  # type: ignore[list-item]

    def _multi_turn(self, line: int, row: Any) -> Conversation | RecordError:
        if not isinstance(row, dict):
            return _not_object(line, row)
        turns: list[tuple[str, str]] = []
        for user_col, assistant_col in self.shape.pairs:
            user, answer = row.get(user_col), row.get(assistant_col)
            if (user is None or user == "") and (answer is None or answer == ""):
                break  # the conversation ended before the last pair of columns
            user_text, answer_text = _text(user), _text(answer)
            if user_text is None or answer_text is None:
                return RecordError(
                    line, "not_text", f"columns {user_col!r}/{assistant_col!r} are not text", row
                )
            turns.append(("user", user_text))
            turns.append(("assistant", answer_text))
        if turns:
            turns[0] = ("user", self._apply_template(turns[0][1]))
        return self._system(row), turns, None

    def _messages(self, line: int, row: Any) -> Conversation | RecordError:
        if not isinstance(row, dict):
            return _not_object(line, row)
        version = row.get("schemaVersion", row.get("schema_version"))
        if version is not None and version != SCHEMA_VERSION:
            return RecordError(line, "schema_version", f"schemaVersion must be {SCHEMA_VERSION!r}", row)
        messages = row.get(self.shape.columns["messages"])
        if not isinstance(messages, list):
            return RecordError(line, "missing_field", "field 'messages' is missing or not a list", row)
        system: str | None = None
        if "system" in row and row["system"] is not None:
            system = _blocks_text(row["system"])
            if system is None:
                return RecordError(
                    line, "non_text_content", "'system' must be text or a list of text blocks", row
                )
        turns: list[tuple[str, str]] = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                return RecordError(line, "invalid_message", f"messages[{index}] is not an object", row)
            role = message.get("role")
            text = _blocks_text(message.get("content"))
            if not isinstance(role, str):
                return RecordError(line, "invalid_message", f"messages[{index}] has no role", row)
            if text is None:
                return RecordError(line, "non_text_content", f"messages[{index}] content is not text", row)
            if role == "system" and not turns and system is None:
                system = text  # OpenAI puts the system prompt first in messages
                continue
            turns.append((role, text))
        return system or self.system_prompt, turns, None

    def _sharegpt(self, line: int, row: Any) -> Conversation | RecordError:
        if not isinstance(row, dict):
            return _not_object(line, row)
        messages = row.get(self.shape.columns["conversations"])
        if not isinstance(messages, list):
            return RecordError(line, "missing_field", "field 'conversations' is missing or not a list", row)
        system = _text(row.get("system")) or None
        turns: list[tuple[str, str]] = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                return RecordError(line, "invalid_message", f"conversations[{index}] is not an object", row)
            speaker = message.get("from", message.get("role"))
            text = _text(message.get("value", message.get("content")))
            if not isinstance(speaker, str) or text is None:
                return RecordError(
                    line, "invalid_message", f"conversations[{index}] needs from and value", row
                )
            role = _SHAREGPT_ROLES.get(speaker.lower(), speaker)
            if role == "system" and not turns and system is None:
                system = text
                continue
            turns.append((role, text))
        return system or self.system_prompt, turns, None


def _blocks_text(content: Any) -> str | None:
    """Text of a Converse content list (text blocks only) or of an OpenAI content string."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif (isinstance(block, dict) and isinstance(block.get("text"), str) and len(block) == 1) or (
                isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
            ):
                parts.append(block["text"])
            else:
                return None
        return "".join(parts)
    return None


def _not_object(line: int, row: Any) -> RecordError:
    return RecordError(
        line, "not_an_object", f"the record is a JSON {type(row).__name__}, not an object", row
    )
