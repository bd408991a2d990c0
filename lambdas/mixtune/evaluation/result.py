"""``EvalResult``: the schema of ``eval.json`` written by ``mixtune-evaluate``."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from mixtune.evaluation.metrics import ClassificationScores, FreeformScores
from mixtune.evaluation.mmlu import MmluScores
from mixtune.evaluation.stats import Interval

# 2: intervals, per-item outcomes, the task rule. 3: the eval data's content hashes, the runtime
# (dtype, device, library versions), a config hash without data locations. Older files still
# read (those fields empty).
EVAL_SCHEMA_VERSION = "mixtune-eval-3"


class DomainItems(BaseModel):
    """Per-item outcomes, no text: item ids (content hashes) and what each scored."""

    ids: list[str]
    labels: list[str] | None = None  # classification: the label set, indexed by the codes below
    gold: list[int] | None = None
    predicted: list[int] | None = None  # -1: no label (or several) named
    token_f1: list[float] | None = None  # free-form
    exact_match: list[float] | None = None
    finished: list[bool] | None = None  # the answer ended on its own before max_new_tokens


class DomainScores(BaseModel):
    task: Literal["classification", "freeform"]
    n: int
    classification: ClassificationScores | None = None
    freeform: FreeformScores | None = None
    task_rule: str | None = None  # why this task: detected from the answers, --labels or --domain-task
    max_new_tokens: int | None = None  # as used (the default follows the longest label)
    truncated: int | None = None  # answers cut by max_new_tokens
    items: DomainItems | None = None

    @property
    def headline(self) -> float:
        """The one domain number the gate compares: macro-F1, or token F1 for free-form answers."""
        if self.classification is not None:
            return self.classification.macro_f1
        return self.freeform.token_f1 if self.freeform is not None else 0.0

    @property
    def headline_ci(self) -> Interval | None:
        if self.classification is not None:
            return self.classification.macro_f1_ci
        return self.freeform.token_f1_ci if self.freeform is not None else None


class LossItems(BaseModel):
    ids: list[str]
    loss_sums: list[float]  # summed cross-entropy over the record's assistant tokens (nats)
    tokens: list[int]


class GeneralLoss(BaseModel):
    n: int
    loss: float
    tokens: int
    se: float | None = None  # standard error, records as the sampling unit
    items: LossItems | None = None


class EvalResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: str = EVAL_SCHEMA_VERSION
    base_model: str
    adapter: str | None = None
    config: dict[str, Any]
    config_hash: str  # EvalConfig.config_hash(): the scoring setup, not where the data is
    # sha256 of the eval data as read: "domain", "general" (the whole file; limits are in config)
    data_sha256: dict[str, str] = {}
    # what scored it: dtype, device, and the torch / transformers / peft / mixtune versions
    runtime: dict[str, str] = {}
    domain: DomainScores | None = None
    mmlu: MmluScores | None = None
    general: GeneralLoss | None = None
    wall_time_s: float = 0.0
    created_at: str = ""

    def summary(self) -> str:
        parts = [f"model={self.base_model}" + ("+adapter" if self.adapter else "")]
        if self.domain is not None:
            ci = self.domain.headline_ci
            parts.append(
                f"domain_{'macro_f1' if self.domain.task == 'classification' else 'token_f1'}="
                f"{self.domain.headline:.3f}" + (f" {ci.text()}" if ci else "") + f" (n={self.domain.n})"
            )
        if self.mmlu is not None:
            ci = self.mmlu.micro_accuracy_ci
            parts.append(
                f"mmlu={self.mmlu.micro_accuracy:.3f}"
                + (f" {ci.text()}" if ci else "")
                + f" (n={self.mmlu.n})"
            )
        if self.general is not None:
            se = f" ± {self.general.se:.3f} se" if self.general.se is not None else ""
            parts.append(f"general_loss={self.general.loss:.3f}{se}")
        return " ".join(parts)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes | str) -> EvalResult:
        return cls.model_validate(orjson.loads(data))
