"""``EvalResult``: the schema of ``eval.json`` written by ``mixtune-evaluate``."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from mixtune.evaluation.metrics import ClassificationScores, FreeformScores
from mixtune.evaluation.mmlu import MmluScores

EVAL_SCHEMA_VERSION = "mixtune-eval-1"


class DomainScores(BaseModel):
    task: Literal["classification", "freeform"]
    n: int
    classification: ClassificationScores | None = None
    freeform: FreeformScores | None = None

    @property
    def headline(self) -> float:
        """The one domain number the gate compares: macro-F1, or token F1 for free-form answers."""
        if self.classification is not None:
            return self.classification.macro_f1
        return self.freeform.token_f1 if self.freeform is not None else 0.0


class GeneralLoss(BaseModel):
    n: int
    loss: float
    tokens: int


class EvalResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: str = EVAL_SCHEMA_VERSION
    base_model: str
    adapter: str | None = None
    config: dict[str, Any]
    config_hash: str
    domain: DomainScores | None = None
    mmlu: MmluScores | None = None
    general: GeneralLoss | None = None
    wall_time_s: float = 0.0
    created_at: str = ""

    def summary(self) -> str:
        parts = [f"model={self.base_model}" + ("+adapter" if self.adapter else "")]
        if self.domain is not None:
            parts.append(
                f"domain_{'macro_f1' if self.domain.task == 'classification' else 'token_f1'}="
                f"{self.domain.headline:.3f}"
            )
        if self.mmlu is not None:
            parts.append(f"mmlu={self.mmlu.micro_accuracy:.3f} (n={self.mmlu.n})")
        if self.general is not None:
            parts.append(f"general_loss={self.general.loss:.3f}")
        return " ".join(parts)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes | str) -> EvalResult:
        return cls.model_validate(orjson.loads(data))
