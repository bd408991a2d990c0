"""The service's Lambda functions: one list that the CDK app, the local cloud and the
state machine's placeholders all derive from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

# Lambda's own limits (AWS Lambda Developer Guide, "Lambda quotas"): what a size may be set to.
LAMBDA_TIMEOUT_S = (1, 900)
LAMBDA_MEMORY_MB = (128, 10240)
LAMBDA_EPHEMERAL_MB = (512, 10240)
SIZE_FIELDS = {
    "timeout_s": LAMBDA_TIMEOUT_S,
    "memory_mb": LAMBDA_MEMORY_MB,
    "ephemeral_mb": LAMBDA_EPHEMERAL_MB,
}


@dataclass(frozen=True)
class FunctionDef:
    name: str  # logical name, e.g. "prepare"
    handler: str  # "module.function" inside the `lambdas/` asset
    timeout_s: int
    memory_mb: int
    in_state_machine: bool  # invoked by the state machine: its ARN is an ASL placeholder
    # mixtune.settings.Settings fields the function cannot work without: checked at its first
    # invocation inside Lambda (mixtune.observability.lambda_entry).
    needs: tuple[str, ...] = ()
    # Invoked asynchronously (S3, EventBridge, the API's hand-over): Lambda retries an error
    # ASYNC_RETRY_ATTEMPTS times, then sends the invocation record to this function.
    on_failure: str | None = None
    # /tmp (MB): Lambda's ephemeral storage, 512 by default. The CDK app and the local cloud
    # both deploy it, and tell the function its own size (Settings.ephemeral_storage_mb).
    ephemeral_mb: int = 512

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def asl_placeholder(self) -> str:
        """The `${...}` name the ASL file uses for this function's ARN."""
        return f"{self.camel}FunctionArn"


# Asynchronous invocations (AWS Lambda Developer Guide, "Asynchronous invocation"): retries
# after a function error (0-2) and the age after which an event is dropped (60 s - 6 h).
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE_S = 6 * 3600

_RUNS = ("runs_table",)
FUNCTIONS: tuple[FunctionDef, ...] = (
    # prepare and mix: sized from measurements (docs/dataprep.md, "Where data steps run"): one
    # full vCPU (Lambda gives CPU in proportion to memory: 1,769 MB is one vCPU), the longest
    # timeout, and /tmp for the dedupe spill and the mixer's shuffle buckets. Inputs larger
    # than Settings.prepare_lambda_max_bytes / mix_lambda_max_bytes run as jobs instead.
    FunctionDef(
        "prepare",
        "mixtune.handlers.prepare.handler",
        900,
        1769,
        False,
        (*_RUNS, "work_bucket", "idempotency_table", "topic_arn", "state_machine_arn"),
        on_failure="on_failure",
        ephemeral_mb=2048,
    ),
    FunctionDef(
        "mix", "mixtune.handlers.mix.handler", 900, 1769, True, (*_RUNS, "work_bucket"), ephemeral_mb=2048
    ),
    # After a prepare or mix job: reads its report or manifest into the run (and announces a
    # dataset the job rejected).
    FunctionDef(
        "conclude_job",
        "mixtune.handlers.conclude_job.handler",
        60,
        256,
        True,
        (*_RUNS, "work_bucket", "topic_arn"),
    ),
    FunctionDef("launch_job", "mixtune.handlers.launch_job.handler", 60, 256, True, (*_RUNS, "work_bucket")),
    FunctionDef("poll_job", "mixtune.handlers.poll_job.handler", 60, 256, True),
    FunctionDef("baseline_lookup", "mixtune.handlers.baseline_lookup.handler", 30, 256, True, _RUNS),
    FunctionDef("record", "mixtune.handlers.record.handler", 60, 256, True, _RUNS),
    # A sweep's arms against the baseline, the choice and what it cost (mixtune.steps.sweep).
    FunctionDef(
        "record_sweep", "mixtune.handlers.record_sweep.handler", 120, 512, True, (*_RUNS, "work_bucket")
    ),
    FunctionDef("mark_failed", "mixtune.handlers.mark_failed.handler", 30, 256, True, _RUNS),
    FunctionDef(
        "notify", "mixtune.handlers.notify.handler", 30, 256, True, (*_RUNS, "topic_arn", "work_bucket")
    ),
    FunctionDef(
        "api", "mixtune.handlers.api.handler", 30, 512, False, (*_RUNS, "raw_bucket", "prepare_function_name")
    ),
    # Hears what the state machine cannot catch: an execution that failed, timed out or was
    # aborted (EventBridge rule) and the exhausted async invocations of prepare and schedule.
    FunctionDef(
        "on_failure",
        "mixtune.handlers.on_failure.handler",
        120,
        256,
        False,
        (*_RUNS, "topic_arn", "mark_failed_function_name"),
    ),
    FunctionDef(
        "schedule",
        "mixtune.handlers.schedule.handler",
        60,
        256,
        False,
        (*_RUNS, "prepare_function_name", "state_machine_arn"),
        on_failure="on_failure",
    ),
)

# Placeholders in the ASL that are not function ARNs.
EXTRA_ASL_PLACEHOLDERS: tuple[str, ...] = ("TopicArn",)


def function_environment(fn: FunctionDef) -> dict[str, str]:
    """What each function's environment adds to the shared settings: its own size of /tmp
    (``Settings.ephemeral_storage_mb``; Lambda does not tell a function), so its temporary
    files stay within it. The CDK app and the local cloud both set it."""
    from mixtune.settings import ENV_PREFIX

    return {f"{ENV_PREFIX}EPHEMERAL_STORAGE_MB": str(fn.ephemeral_mb)}


def resized(fn: FunctionDef, sizes: Mapping[str, int] | None) -> FunctionDef:
    """``fn`` with some of its sizes replaced (``timeout_s``, ``memory_mb``, ``ephemeral_mb``),
    each checked against Lambda's limits: how a deployment (CDK context ``functionSizes``,
    the local cloud) overrides the sizes above."""
    if not sizes:
        return fn
    unknown = set(sizes) - set(SIZE_FIELDS)
    if unknown:
        raise ValueError(f"function {fn.name}: unknown size(s) {sorted(unknown)}; use {sorted(SIZE_FIELDS)}")
    for field, value in sizes.items():
        low, high = SIZE_FIELDS[field]
        if not isinstance(value, int) or not low <= value <= high:
            raise ValueError(
                f"function {fn.name}: {field} must be an integer from {low} to {high}, got {value!r}"
            )
    return replace(fn, **dict(sizes))


def resized_functions(
    overrides: Mapping[str, Mapping[str, int]] | None, functions: tuple[FunctionDef, ...] | None = None
) -> tuple[FunctionDef, ...]:
    """Every function with its overrides applied; an override for no known function is an error."""
    functions = FUNCTIONS if functions is None else functions
    overrides = overrides or {}
    unknown = set(overrides) - {fn.name for fn in functions}
    if unknown:
        raise ValueError(f"sizes for unknown function(s) {sorted(unknown)}")
    return tuple(resized(fn, overrides.get(fn.name)) for fn in functions)


def function(name: str) -> FunctionDef:
    for fn in FUNCTIONS:
        if fn.name == name:
            return fn
    raise KeyError(f"unknown function {name!r}; known: {', '.join(f.name for f in FUNCTIONS)}")
