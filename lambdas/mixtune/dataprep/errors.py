"""Errors of data preparation: a whole file (DatasetError) or one record (RecordError)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DatasetError(Exception):
    """The file as a whole cannot be prepared. The message names the file and the line."""

    def __init__(self, uri: str, message: str, line: int | None = None) -> None:
        self.uri = uri
        self.line = line
        self.reason = message
        where = f"{uri} line {line}" if line is not None else uri
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple:  # picklable across process boundaries despite the custom init
        return (type(self), (self.uri, self.reason, self.line))


class SpillBudgetExceeded(RuntimeError):
    """Preparation needs more temporary disk than it was allowed (``spill_budget_bytes``).

    Not a fault of the data: the file is too large for where it is being prepared (for
    example a Lambda function's ``/tmp``); prepare it where there is more room.
    """


@dataclass(slots=True)
class RecordError:
    """Why one record was rejected: its line (or row) number, the rule and a short reason.

    ``raw`` keeps the input value (or a prefix of an unparsable line) for ``rejected.jsonl``;
    ``message`` never quotes dataset text, so it is safe for logs and summaries.
    """

    line: int
    rule: str
    message: str
    raw: Any = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.rule}: {self.message}"
