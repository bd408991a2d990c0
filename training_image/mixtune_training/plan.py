"""The training plan: global batch, steps, warm-up, learning rate, tokens per step, GPU memory.

Pure arithmetic (no torch), so ``mixtune-train --dry-run`` prints it in a second for any
model, instance type and node count, and ``train`` uses the same numbers it printed.

Batch rules (``TrainConfig``): the global batch is ``per_device x accumulation x world size``.
Given ``global_batch_size``, it is met with the largest per-device batch up to
``per_device_batch_size`` and the accumulation that makes up the rest. Otherwise an
epoch-based run aims at ``target_steps`` optimizer steps: global batch = units / target steps,
at least one sequence per GPU and at most :data:`MAX_AUTO_GLOBAL_BATCH` (units are records, or
packed rows of ``max_length`` tokens when packing); a run with ``max_steps`` keeps one
per-device batch per GPU and no accumulation. Unless set, the learning rate is
``base_learning_rate x sqrt(global batch / 16)`` (square-root scaling for Adam).

The memory figure is an estimate for LoRA with bf16 weights on one GPU; see
:func:`estimate_memory` for what it counts. It has not been checked against a GPU here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mixtune.instances import INSTANCE_TYPES, Accelerator, canonical_name
from mixtune.training_config import TrainConfig

MAX_AUTO_GLOBAL_BATCH = 128
REFERENCE_BATCH = 16
GIB = 2**30
OVERHEAD_GIB = 3.0  # CUDA context, NCCL buffers, allocator slack
FIT_FRACTION = 0.9  # leave a tenth of the GPU for fragmentation


# SageMaker / HyperPod instance types: (GPUs, accelerator), from the one table in
# mixtune.instances (which the backends size their jobs with too). The ``ml.`` prefix is optional.
INSTANCES: dict[str, tuple[int, Accelerator]] = {
    name: (shape.gpus, shape.accelerator)
    for name, shape in INSTANCE_TYPES.items()
    if shape.accelerator is not None
}

# Architecture classes for plans without a model folder at hand (public config.json values).
PRESETS: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": {
        "model_type": "llama",
        "vocab_size": 128256,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
    },
    "llama-3.1-70b": {
        "model_type": "llama",
        "vocab_size": 128256,
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
    },
}


class PlanError(ValueError):
    """The plan cannot be made (unknown instance type, a config without the needed sizes)."""


@dataclass(frozen=True)
class Hardware:
    nodes: int
    processes_per_node: int  # one per GPU; CPU processes when there is no accelerator
    accelerator: Accelerator | None
    instance_type: str | None = None

    @property
    def world_size(self) -> int:
        return self.nodes * max(self.processes_per_node, 1)

    def describe(self) -> str:
        if self.accelerator is None:
            return f"{self.nodes} x CPU ({self.world_size} process{'es' if self.world_size > 1 else ''})"
        where = f"{self.nodes} x {self.instance_type}" if self.instance_type else f"{self.nodes} node(s)"
        return (
            f"{where} = {self.world_size} GPU(s), {self.accelerator.name} "
            f"({self.accelerator.memory_gib:.1f} GiB each)"
        )


def hardware_for(instance_type: str, nodes: int = 1, gpus_per_node: int | None = None) -> Hardware:
    name = canonical_name(instance_type)
    if name not in INSTANCES:
        raise PlanError(f"unknown instance type {instance_type!r}; known: {', '.join(sorted(INSTANCES))}")
    gpus, accelerator = INSTANCES[name]
    return Hardware(nodes, gpus if gpus_per_node is None else gpus_per_node, accelerator, name)


@dataclass(frozen=True)
class ModelShape:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tied_embeddings: bool
    attention_bias: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelShape:
        """From a decoder-only config.json (Llama, Mistral, Qwen2, SmolLM, ... vocabulary)."""
        text = config.get("text_config") or config
        try:
            hidden, heads = int(text["hidden_size"]), int(text["num_attention_heads"])
            return cls(
                vocab_size=int(text["vocab_size"]),
                hidden_size=hidden,
                intermediate_size=int(text["intermediate_size"]),
                num_layers=int(text["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(text.get("num_key_value_heads") or heads),
                head_dim=int(text.get("head_dim") or hidden // heads),
                tied_embeddings=bool(
                    config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))
                ),
                attention_bias=bool(text.get("attention_bias", text.get("model_type") == "qwen2")),
            )
        except KeyError as missing:
            raise PlanError(f"model config has no {missing}: cannot size the model") from None

    def layer_linears(self) -> dict[str, tuple[int, int]]:
        """The linear layers of one decoder block: name -> (in features, out features)."""
        h, q, kv, i = (
            self.hidden_size,
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
            self.intermediate_size,
        )
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def layer_parameters(self) -> int:
        linears = self.layer_linears()
        weights = sum(a * b for a, b in linears.values())
        biases = sum(linears[n][1] for n in ("q_proj", "k_proj", "v_proj")) if self.attention_bias else 0
        return weights + biases + 2 * self.hidden_size  # two RMSNorm weights

    @property
    def parameters(self) -> int:
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        return embeddings + self.num_layers * self.layer_parameters() + self.hidden_size

    def lora_parameters(self, rank: int, target_modules: list[str] | str) -> int:
        """Trainable LoRA parameters (A: r x in, B: out x r) on the targeted block linears;
        ``all-linear`` is PEFT's: every linear layer but the output head."""
        linears = self.layer_linears()
        if target_modules == "all-linear":
            names = list(linears)
        else:
            wanted = [target_modules] if isinstance(target_modules, str) else target_modules
            names = [n for n in linears if n in wanted]
        return self.num_layers * sum(rank * (linears[n][0] + linears[n][1]) for n in names)


@dataclass(frozen=True)
class DataStats:
    """What the plan needs to know of the tokenised data."""

    records: int
    tokens: int  # all tokens of the kept records (after the max_length cut)
    dropped: int = 0

    @property
    def mean_tokens(self) -> float:
        return self.tokens / self.records if self.records else 0.0


@dataclass(frozen=True)
class Batch:
    per_device: int
    accumulation: int
    world_size: int
    rule: str

    @property
    def global_size(self) -> int:
        return self.per_device * self.accumulation * self.world_size


def choose_batch(config: TrainConfig, world_size: int, units: int | None) -> Batch:
    """Per-device batch and accumulation for ``world_size`` processes and ``units`` training rows."""
    cap = config.per_device_batch_size
    if config.global_batch_size is not None:
        wanted, rule = config.global_batch_size, f"global_batch_size {config.global_batch_size}"
    elif config.gradient_accumulation_steps is not None:
        return Batch(
            cap, config.gradient_accumulation_steps, world_size, "per-device batch x accumulation as given"
        )
    elif config.max_steps > 0 or units is None:
        return Batch(cap, 1, world_size, "max_steps given: one per-device batch per process")
    else:
        ideal = round(units * config.num_epochs / config.target_steps)
        wanted = min(max(ideal, world_size), max(MAX_AUTO_GLOBAL_BATCH, world_size))
        rule = (
            f"auto: {units:,} rows x {config.num_epochs:g} epoch(s) / {config.target_steps} target steps"
            f" = {ideal}, kept within [{world_size}, {max(MAX_AUTO_GLOBAL_BATCH, world_size)}]"
        )
    per_device = min(cap, max(1, math.ceil(wanted / world_size)))
    accumulation = max(1, round(wanted / (per_device * world_size)))
    return Batch(per_device, accumulation, world_size, rule)


def update_steps(units: int, batch: Batch, config: TrainConfig) -> tuple[int, int]:
    """(optimizer steps, steps per epoch) as transformers' Trainer counts them."""
    batches_per_rank = math.ceil(units / (batch.per_device * batch.world_size))
    per_epoch = max(math.ceil(batches_per_rank / batch.accumulation), 1)
    if config.max_steps > 0:
        return config.max_steps, per_epoch
    return math.ceil(config.num_epochs * per_epoch), per_epoch


def learning_rate(config: TrainConfig, global_batch: int) -> float:
    if config.learning_rate is not None:
        return config.learning_rate
    return config.base_learning_rate * math.sqrt(global_batch / REFERENCE_BATCH)


@dataclass(frozen=True)
class Memory:
    """Estimated peak memory of one GPU, GiB."""

    weights: float
    trainable: float  # LoRA weights, gradients and Adam states, fp32
    activations: float
    overhead: float
    capacity: float | None

    @property
    def total(self) -> float:
        return self.weights + self.trainable + self.activations + self.overhead

    @property
    def fits(self) -> bool | None:
        return None if self.capacity is None else self.total <= FIT_FRACTION * self.capacity


def estimate_memory(
    shape: ModelShape,
    config: TrainConfig,
    per_device: int,
    world_size: int,
    capacity_gib: float | None,
    gradient_checkpointing: bool,
    fsdp: bool = False,
    value_bytes: int = 2,
) -> Memory:
    """Peak GPU memory of LoRA SFT, GiB.

    - weights: bf16 (2 bytes a parameter); QLoRA 4-bit NF4 with double quantization about 0.52
      bytes a parameter on the block linears, embeddings and head staying bf16. FSDP shards
      them over the world and gathers one block at a time (two, with prefetch).
    - LoRA: fp32 weights, gradients and the two Adam moments, 16 bytes a trainable parameter.
    - activations, bf16, for ``per_device x max_length`` tokens (packed rows are full): with
      gradient checkpointing each block keeps its input (hidden size) and one block at a
      time holds all it saves for backward; without, every block does. A Llama block with
      LoRA on its linears saves about ``14 hidden + 2 kv + 5 intermediate`` values a token
      (norms, q/k/v, attention output, MLP gate/up/product, LoRA dropout copies of inputs);
      attention is SDPA or flash (no seq x seq matrix). TRL's fused LM head scores labelled
      positions in tiles, so no (tokens x vocabulary) logits are held.
    - overhead: a fixed 3 GiB for the CUDA context, NCCL buffers and allocator slack.

    ``value_bytes`` is 2 for bf16 (GPUs), 4 for float32 (a CPU run).
    """
    parameters = shape.parameters
    if config.quantization == "4bit":
        block = shape.num_layers * shape.layer_parameters()
        weight_bytes = block * 0.52 + (parameters - block) * 2
    else:
        weight_bytes = parameters * value_bytes
    if fsdp:
        weight_bytes = weight_bytes / world_size + 2 * shape.layer_parameters() * value_bytes
    trainable = shape.lora_parameters(config.lora_r, config.target_modules) * 16
    if fsdp:
        trainable /= world_size
    tokens = per_device * config.max_length
    h, kv, i = shape.hidden_size, shape.num_kv_heads * shape.head_dim, shape.intermediate_size
    per_token_block = (14 * h + 2 * kv + 5 * i) * value_bytes
    if gradient_checkpointing:
        activations = tokens * (shape.num_layers * h * value_bytes + per_token_block)
    else:
        activations = tokens * shape.num_layers * per_token_block
    activations += tokens * h * value_bytes * 2  # final norm output and its gradient
    return Memory(
        weights=weight_bytes / GIB,
        trainable=trainable / GIB,
        activations=activations / GIB,
        overhead=OVERHEAD_GIB if capacity_gib is not None else 0.0,
        capacity=capacity_gib,
    )


@dataclass
class Plan:
    model: str
    parameters: int
    trainable_parameters: int
    hardware: str
    world_size: int
    parallelism: str
    packing: bool
    units: int | None  # training rows: records, or packed rows
    records: int | None
    tokens: int | None
    per_device_batch: int
    accumulation: int
    global_batch: int
    batch_rule: str
    steps: int | None
    steps_per_epoch: int | None
    warmup_steps: int | None
    learning_rate: float
    tokens_per_step: int
    memory: Memory
    gradient_checkpointing: bool
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["memory"] = {**asdict(self.memory), "total": self.memory.total, "fits": self.memory.fits}
        return data

    def render(self) -> str:
        def count(n: int | None) -> str:
            return "?" if n is None else f"{n:,}"

        lines = [
            f"model        {self.model}: {_count(self.parameters)} parameters; LoRA "
            f"{_count(self.trainable_parameters)} trainable "
            f"({100 * self.trainable_parameters / self.parameters:.2f} %)",
            f"hardware     {self.hardware}; {self.parallelism.upper()}",
        ]
        if self.records is not None:
            unit = f"{count(self.units)} packed rows" if self.packing else f"{count(self.units)} sequences"
            lines.append(f"data         {count(self.records)} records, {count(self.tokens)} tokens -> {unit}")
        lines += [
            f"batch        global {self.global_batch} = {self.per_device_batch} per device x "
            f"{self.accumulation} accumulation x {self.world_size} process(es)  [{self.batch_rule}]",
            f"steps        {count(self.steps)} optimizer steps"
            + (f" ({self.steps_per_epoch:,} an epoch)" if self.steps_per_epoch else "")
            + f", warm-up {count(self.warmup_steps)}",
            f"lr           {self.learning_rate:.3g}",
            f"tokens/step  {self.tokens_per_step:,}"
            + (" (packed rows)" if self.packing else " (without padding)"),
        ]
        m = self.memory
        if m.capacity is not None:
            verdict = "fits" if m.fits else f"does NOT fit in {FIT_FRACTION:.0%} of it"
            lines.append(
                f"memory/GPU   ~{m.total:.1f} GiB of {m.capacity:.1f} ({verdict}): weights {m.weights:.1f}, "
                f"LoRA+Adam {m.trainable:.2f}, activations {m.activations:.1f} "
                f"(gradient checkpointing {'on' if self.gradient_checkpointing else 'off'}), overhead {m.overhead:.1f}"
            )
        else:
            lines.append(f"memory       ~{m.total:.1f} GiB (CPU)")
        lines += [f"warning      {w}" for w in self.warnings]
        return "\n".join(lines)


def _count(n: int) -> str:
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def make_plan(
    config: TrainConfig,
    shape: ModelShape,
    hardware: Hardware,
    data: DataStats | None,
    packing: bool,
    gradient_checkpointing: bool,
    model_name: str = "",
) -> Plan:
    world = hardware.world_size
    units = None
    if data is not None:
        units = max(math.ceil(data.tokens / config.max_length), 1) if packing else data.records
    batch = choose_batch(config, world, units)
    steps = per_epoch = warmup = None
    if units is not None or config.max_steps > 0:
        steps, per_epoch = update_steps(units or 1, batch, config)
        per_epoch = per_epoch if units is not None else None
        warmup = math.ceil(steps * config.warmup_ratio)
    if packing or data is None:
        tokens_per_step = batch.global_size * config.max_length
    else:
        tokens_per_step = round(batch.global_size * min(data.mean_tokens, config.max_length))
    accelerator = hardware.accelerator
    memory = estimate_memory(
        shape,
        config,
        batch.per_device,
        world,
        accelerator.memory_gib if accelerator else None,
        gradient_checkpointing,
        fsdp=config.parallelism == "fsdp",
        value_bytes=2 if accelerator is not None else 4,
    )
    warnings = []
    if config.max_steps < 0 and steps is not None and steps < config.target_steps // 4:
        warnings.append(
            f"only {steps} optimizer steps: fewer GPUs, packing off, more epochs or a smaller "
            "global_batch_size give more"
        )
    if units is not None and units < world:
        warnings.append(f"{units} training rows for {world} processes: some processes get repeats")
    if memory.fits is False:
        warnings.append(
            "estimated memory exceeds the GPU: lower per_device_batch_size (accumulation keeps the global "
            "batch), turn gradient checkpointing on, or use FSDP / QLoRA"
        )
    return Plan(
        model=model_name,
        parameters=shape.parameters,
        trainable_parameters=shape.lora_parameters(config.lora_r, config.target_modules),
        hardware=hardware.describe(),
        world_size=world,
        parallelism=config.parallelism,
        packing=packing,
        units=units,
        records=data.records if data else None,
        tokens=data.tokens if data else None,
        per_device_batch=batch.per_device,
        accumulation=batch.accumulation,
        global_batch=batch.global_size,
        batch_rule=batch.rule,
        steps=steps,
        steps_per_epoch=per_epoch,
        warmup_steps=warmup,
        learning_rate=learning_rate(config, batch.global_size),
        tokens_per_step=tokens_per_step,
        memory=memory,
        gradient_checkpointing=gradient_checkpointing,
        warnings=warnings,
    )
