"""The conversation record: the one format inside mixtune.

Every example is one compact JSON line in the Converse format that Bedrock and Nova use
(``schemaVersion: "bedrock-conversation-2024"``). Structural rules (roles alternate, the
conversation starts with ``user`` and ends with ``assistant``) are checked by the validator
in :mod:`mixtune.dataprep`, not here, so that an invalid record can still be represented,
reported and rejected with its line number.
"""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "bedrock-conversation-2024"

Role = Literal["user", "assistant"]


class ContentBlock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str


class SystemBlock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: tuple[ContentBlock, ...]

    @property
    def text(self) -> str:
        return "".join(block.text for block in self.content)


class ConversationRecord(BaseModel):
    """One training or evaluation example."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_version: str = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    system: tuple[SystemBlock, ...] | None = None
    messages: tuple[Message, ...]

    @classmethod
    def from_turns(
        cls, turns: list[tuple[Role, str]] | list[tuple[str, str]], system: str | None = None
    ) -> ConversationRecord:
        """Build a record from ``(role, text)`` pairs and an optional system prompt."""
        return cls(
            system=(SystemBlock(text=system),) if system else None,
            messages=tuple(
                Message(role=role, content=(ContentBlock(text=text),))  # type: ignore[arg-type]
                for role, text in turns
            ),
        )

    @classmethod
    def from_json_line(cls, line: str | bytes) -> ConversationRecord:
        return cls.model_validate(orjson.loads(line))

    @property
    def system_text(self) -> str | None:
        return "".join(block.text for block in self.system) if self.system else None

    def turns(self) -> list[tuple[Role, str]]:
        return [(message.role, message.text) for message in self.messages]

    def texts(self) -> list[str]:
        """Every text in the record, system first: what sanitizing and token counting see."""
        out = [block.text for block in self.system or ()]
        out.extend(block.text for message in self.messages for block in message.content)
        return out

    @property
    def final_answer(self) -> str:
        """The last assistant turn: the label for classification data."""
        for message in reversed(self.messages):
            if message.role == "assistant":
                return message.text
        return ""

    def to_dict(self) -> dict:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def to_json_line(self) -> str:
        """One compact JSON line without the trailing newline; stable key order."""
        return orjson.dumps(self.to_dict()).decode()
