"""A run's whole config, checked at the door: every trigger (``POST /runs``, a dropped file, a
schedule) builds it here, and nothing is created when it breaks a rule.

One rule for every trigger: the request's fields over the service's default run config
(``MIXTUNE_DEFAULT_RUN_CONFIG``) over the code's defaults (:meth:`RunConfig.resolved`).

Checked: each section with its owner's model (``prepare``: dataprep's ``PrepareOptions``,
``mix``: mixing's ``MixSpec``, ``gate``: evaluation's ``GatePolicy``, ``train``/``evaluation``:
``TrainConfig``/``EvalConfig``), with unknown fields refused at every level; bounds on every
number (finite, and a range where the owner's model leaves one open); the base model's name;
the backend's name; the poll loops (:func:`poll_problems`); and the deployment's cost guard
(:func:`cost_problems`, checked again before any job is launched).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mixtune.errors import CostLimitExceeded, RunConfigError
from mixtune.runs.model import RunConfig
from mixtune.settings import Settings

if TYPE_CHECKING:
    pass

# Step Functions standard workflows: an execution's history holds at most 25,000 events
# (AWS Step Functions Developer Guide, "Quotas related to state machine executions"). Each
# poll of a job costs 9 events: Wait (entered, exited), Task (entered, LambdaFunctionScheduled,
# Started, Succeeded, exited), Choice (entered, exited); a run has four poll loops (smoke,
# train, baseline and tuned evaluation), and two more when its data is too large for Lambda
# (the prepare and mix jobs), which get what is left of the budget (see data_job_polling).
# We keep a run well inside: 80 % of the quota.
HISTORY_EVENT_QUOTA = 25_000
HISTORY_EVENT_BUDGET = 20_000
EVENTS_PER_POLL = 9
POLL_LOOPS = 4
EVENTS_OUTSIDE_LOOPS = 200  # every other state, with a few retries
EVENTS_PER_ARM = 60  # a sweep arm's states outside its poll loops (Map iteration, Mix, launches)
DATA_POLL_LOOPS = 2
MIN_DATA_JOB_POLLS = 20  # what the data jobs' loops must have left, each, at least
# On AWS a poll waits at least this long: polling faster buys nothing but history events and
# Lambda invocations (the local cloud, where jobs are subprocesses, may poll every second).
MIN_POLL_SECONDS_ON_AWS = 10

# Base model names: a Hugging Face id `owner/name`, a name the training image knows, or an
# s3:// folder of weights. Never a path on the job's machine.
HUB_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
S3_FOLDER = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.*'()/=+-]*$")
LOCAL_MODELS = ("tiny", "smollm2")  # mixtune_training.models

# Any number in a config: finite and of a size a person means (DynamoDB numbers hold 38 digits).
MAX_MAGNITUDE = 1e9
# Ranges the owners' models leave open: (section, field) -> (lowest, highest).
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("train", "lora_r"): (1, 1024),
    ("train", "lora_alpha"): (1, 4096),
    ("train", "learning_rate"): (1e-9, 1.0),
    ("train", "max_steps"): (-1, 1_000_000),
    ("train", "num_epochs"): (0.01, 100),
    ("train", "per_device_batch_size"): (1, 4096),
    ("train", "gradient_accumulation_steps"): (1, 4096),
    ("train", "max_length"): (8, 131_072),
    ("train", "weight_decay"): (0, 10),
    ("train", "seed"): (0, 2**32 - 1),
    ("train", "logging_steps"): (1, 1_000_000),
    ("train", "max_records"): (1, 10**9),
    ("evaluation", "domain_limit"): (1, 1_000_000),
    ("evaluation", "max_new_tokens"): (1, 8192),
    ("evaluation", "mmlu_limit_per_subject"): (1, 100_000),
    ("evaluation", "general_limit"): (1, 1_000_000),
    ("evaluation", "batch_size"): (1, 4096),
    ("evaluation", "max_length"): (8, 131_072),
    ("prepare", "max_tokens"): (1, 1_000_000),
    ("prepare", "seed"): (0, 2**32 - 1),
    ("prepare", "min_records"): (0, 10**9),
    ("prepare", "max_records"): (1, 10**10),
    ("prepare", "dedupe_memory_digests"): (1, 10**8),
    ("prepare", "max_record_bytes"): (1, 64 * 2**20),
    ("prepare", "max_errors"): (0, 10_000),
    ("mix", "seed"): (0, 2**32 - 1),
    ("mix", "total"): (1, 10**10),
    ("mix", "decontamination_ngram"): (1, 64),
    ("gate", "max_general_drop"): (0, 100),
    ("gate", "min_domain_gain"): (-100, 100),
    ("gate", "max_general_loss_increase"): (-100, 100),
}
# Fields of a section that the pipeline sets for each job; a request may not.
PIPELINE_FIELDS = {
    "train": ("base_model", "data", "eval_data", "output"),
    "evaluation": ("base_model", "adapter", "output"),
}


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, section by section (nested mappings merge, the rest replaces)."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def run_config_for(requested: dict[str, Any], settings: Settings) -> RunConfig:
    """The resolved config of a new run: the request's fields over the service default over
    the code's defaults; raises :class:`RunConfigError` listing every problem."""
    fields = merged(settings.default_run_config, requested)
    try:
        config = RunConfig.model_validate(fields)
    except ValidationError as exc:
        raise RunConfigError(describe_errors(exc, "config")) from None
    set_fields = config.model_dump(exclude_unset=True)
    resolved = config.resolved(settings)
    problems = [
        *section_problems(resolved, set_fields),
        *number_problems(resolved.model_dump(mode="python"), "config"),
        *poll_problems(resolved, settings),
        *sweep_problems(resolved),
    ]
    costs = cost_problems(resolved, settings)
    if problems:
        raise RunConfigError(problems + costs)
    if costs:
        raise CostLimitExceeded(costs)
    return resolved


def sweep_problems(config: RunConfig) -> list[str]:
    """Each arm's mix (the run's mix with the arm's fields over it) with mixing's ``MixSpec``."""
    from mixtune.mixing.spec import MixSpec
    from mixtune.steps.mix import mix_spec_fields
    from mixtune.sweeps.config import arm_mix_fields

    if config.sweep is None:
        return []
    problems: list[str] = []
    for index, arm in enumerate(config.sweep.arms):
        fields = arm_mix_fields(config.mix, arm)
        problems += _owner_problems(
            f"config.sweep.arms[{index}].mix", MixSpec, mix_spec_fields(fields, ["general"])
        )
    return problems


def describe_errors(exc: ValidationError, prefix: str) -> list[str]:
    lines = []
    for error in exc.errors():
        where = ".".join([prefix, *(str(part) for part in error["loc"])])
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown field")
        else:
            lines.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return lines


def _owner_problems(where: str, model: type[BaseModel], fields: dict[str, Any]) -> list[str]:
    unknown = sorted(set(fields) - set(model.model_fields))
    problems = [f"{where}.{name}: unknown field" for name in unknown]
    try:
        model.model_validate({k: v for k, v in fields.items() if k not in unknown})
    except ValidationError as exc:
        problems.extend(describe_errors(exc, where))
    return problems


def prepare_problems(fields: dict[str, Any], where: str = "config.prepare") -> list[str]:
    """Data-preparation options (dataprep's ``PrepareOptions``), with the bounds of :data:`BOUNDS`."""
    from mixtune.dataprep.report import PrepareOptions

    problems = _owner_problems(where, PrepareOptions, fields)
    return problems + number_problems(fields, where, section="prepare")


def section_problems(config: RunConfig, set_fields: dict[str, Any]) -> list[str]:
    """Each free-form section with its owner's model; the base model's name; the pipeline's fields."""
    from mixtune.dataprep.report import PrepareOptions  # the whole of dataprep: imported when used
    from mixtune.evaluation.gate import GatePolicy
    from mixtune.mixing.spec import MixSpec
    from mixtune.steps.mix import mix_spec_fields

    problems = _owner_problems("config.prepare", PrepareOptions, config.prepare)
    mix = {k: v for k, v in config.mix.items() if k != "catalog_uri"}
    # The catalog's categories are known only when Mix runs: one stands in for them here.
    problems += _owner_problems("config.mix", MixSpec, mix_spec_fields(mix, ["general"]))
    catalog_uri = config.mix.get("catalog_uri")
    if catalog_uri is not None and not (isinstance(catalog_uri, str) and catalog_uri.startswith("s3://")):
        problems.append("config.mix.catalog_uri: must be an s3:// URI")
    problems += _owner_problems("config.gate", GatePolicy, config.gate)
    for section, names in PIPELINE_FIELDS.items():
        given = sorted(set(set_fields.get(section) or {}) & set(names))
        problems += [f"config.{section}.{name}: set by the pipeline for each job" for name in given]
    if config.base_model and not valid_model_name(config.base_model):
        problems.append(
            f"config.base_model: {config.base_model[:100]!r} is not a model id (owner/name), "
            f"a known local model ({', '.join(LOCAL_MODELS)}) or an s3:// folder"
        )
    return problems


def valid_model_name(name: str) -> bool:
    if name in LOCAL_MODELS or HUB_MODEL_ID.match(name):
        return True
    return bool(S3_FOLDER.match(name)) and ".." not in name.split("/")


def number_problems(
    value: Any, where: str, section: str | None = None, field: str | None = None
) -> list[str]:
    """Every number finite and of a sane size; the ranges of :data:`BOUNDS` for the fields of
    ``section`` (a config's sections are found by name below ``config``)."""
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if section is None and where == "config":
                problems += number_problems(item, f"{where}.{key}", section=str(key))
            else:
                problems += number_problems(item, f"{where}.{key}", section, field or str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problems += number_problems(item, f"{where}[{index}]", section, field)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            problems.append(f"{where}: must be a finite number")
        elif abs(value) > MAX_MAGNITUDE:
            problems.append(f"{where}: {value:g} is out of range (at most {MAX_MAGNITUDE:g} in size)")
        else:
            bounds = BOUNDS.get((section or "", field or ""))
            if bounds and not bounds[0] <= value <= bounds[1]:
                problems.append(f"{where}: {value:g} is outside [{bounds[0]:g}, {bounds[1]:g}]")
    return problems


def history_events(max_polls: int, arms: int = 0) -> int:
    """The most history events a run's training and evaluation loops (and every other state)
    can write (see :data:`HISTORY_EVENT_QUOTA`); the data jobs' loops get the rest. A sweep of
    ``arms`` arms has more poll loops, and an inline Map's iterations write into the execution's
    own history."""
    from mixtune.sweeps.config import poll_loops

    loops = poll_loops(arms) if arms else POLL_LOOPS
    return loops * max_polls * EVENTS_PER_POLL + EVENTS_OUTSIDE_LOOPS + arms * EVENTS_PER_ARM


def arm_count(config: RunConfig) -> int:
    return len(config.sweep.arms) if config.sweep is not None else 0


def data_job_polling(config: RunConfig) -> dict[str, int]:
    """How the state machine polls a prepare or mix job (the execution input's ``data_jobs``):
    each of the two loops may use half of what the history budget leaves after the training
    and evaluation loops, and waits long enough between polls for that to cover the job's
    budget (``max_runtime_s``), never less than the run's ``poll_seconds``."""
    left = HISTORY_EVENT_BUDGET - history_events(config.max_polls or 1, arm_count(config))
    max_polls = max(1, left // (DATA_POLL_LOOPS * EVENTS_PER_POLL))
    runtime = config.max_runtime_s or 1
    return {
        "poll_seconds": max(config.poll_seconds or 0, math.ceil(runtime / max_polls)),
        "max_polls": max_polls,
    }


def most_polls(arms: int = 0) -> int:
    """The largest ``max_polls`` that keeps a run's history inside :data:`HISTORY_EVENT_BUDGET`
    and leaves the data jobs' loops :data:`MIN_DATA_JOB_POLLS` each."""
    from mixtune.sweeps.config import poll_loops

    loops = poll_loops(arms) if arms else POLL_LOOPS
    data = DATA_POLL_LOOPS * MIN_DATA_JOB_POLLS * EVENTS_PER_POLL
    return (HISTORY_EVENT_BUDGET - EVENTS_OUTSIDE_LOOPS - arms * EVENTS_PER_ARM - data) // (
        loops * EVENTS_PER_POLL
    )


def min_poll_seconds(settings: Settings) -> int:
    return MIN_POLL_SECONDS_ON_AWS if settings.platform == "aws" else 0


def poll_problems(config: RunConfig, settings: Settings) -> list[str]:
    """The poll loops of a resolved config: a sane interval, a poll budget at least the job
    budget, an execution history well inside the Step Functions quota."""
    poll_seconds, max_polls, runtime = (
        config.poll_seconds or 0,
        config.max_polls or 0,
        config.max_runtime_s or 0,
    )
    problems = []
    floor = min_poll_seconds(settings)
    if poll_seconds < floor:
        problems.append(f"config.poll_seconds: {poll_seconds} is below the minimum of {floor} s on AWS")
    if poll_seconds * max_polls < runtime:
        problems.append(
            f"config.poll_seconds x config.max_polls ({poll_seconds} x {max_polls} = {poll_seconds * max_polls} s)"
            f" is shorter than the job budget config.max_runtime_s ({runtime} s): the run would give up"
            " polling a job that may still finish"
        )
    arms = arm_count(config)
    if max_polls > (most := most_polls(arms)):
        problems.append(
            f"config.max_polls: {max_polls} polls per job could write {history_events(max_polls, arms)} history"
            f" events (Step Functions allows {HISTORY_EVENT_QUOTA}); at most {most}:"
            " poll less often instead"
        )
    return problems


def cost_problems(config: RunConfig, settings: Settings) -> list[str]:
    """The deployment's cost guard (settings from CDK context) and the backend's name."""
    from mixtune.backends.base import JobSpec, backend_names

    problems = []
    backend = config.backend or settings.default_backend
    if backend not in backend_names():
        problems.append(f"config.backend: unknown backend {backend!r}; known: {', '.join(backend_names())}")
    elif settings.platform == "aws" and backend == "local":
        problems.append("config.backend: 'local' runs jobs on the machine of the service; refused on AWS")
    elif settings.allowed_backends and backend not in settings.allowed_backends:
        problems.append(
            f"config.backend: {backend!r} is not allowed by this deployment (allowed_backends:"
            f" {', '.join(settings.allowed_backends)})"
        )
    instance_type = config.instance_type or JobSpec.model_fields["instance_type"].default
    if settings.allowed_instance_types and instance_type not in settings.allowed_instance_types:
        problems.append(
            f"config.instance_type: {instance_type!r} is not allowed by this deployment"
            f" (allowed_instance_types: {', '.join(settings.allowed_instance_types)})"
        )
    if config.node_count > settings.max_node_count:
        problems.append(
            f"config.node_count: {config.node_count} is over this deployment's limit"
            f" (max_node_count: {settings.max_node_count})"
        )
    base_model = config.base_model or settings.base_model
    if settings.allowed_base_models and base_model not in settings.allowed_base_models:
        problems.append(
            f"config.base_model: {base_model[:100]!r} is not allowed by this deployment"
            f" (allowed_base_models: {', '.join(settings.allowed_base_models)})"
        )
    return problems


def check_costs(config: RunConfig, settings: Settings) -> None:
    """Raise :class:`CostLimitExceeded` naming each limit the config breaks."""
    problems = cost_problems(config, settings)
    if problems:
        raise CostLimitExceeded(problems)
