"""The service's Lambda functions: one list that the CDK app, the local cloud and the
state machine's placeholders all derive from."""

from __future__ import annotations

from dataclasses import dataclass


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
    FunctionDef(
        "prepare",
        "mixtune.handlers.prepare.handler",
        900,
        1024,
        False,
        (*_RUNS, "work_bucket", "idempotency_table", "topic_arn", "state_machine_arn"),
        on_failure="on_failure",
    ),
    FunctionDef("mix", "mixtune.handlers.mix.handler", 900, 1024, True, (*_RUNS, "work_bucket")),
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


def function(name: str) -> FunctionDef:
    for fn in FUNCTIONS:
        if fn.name == name:
            return fn
    raise KeyError(f"unknown function {name!r}; known: {', '.join(f.name for f in FUNCTIONS)}")
