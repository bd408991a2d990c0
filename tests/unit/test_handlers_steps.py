"""Pure helpers of the step handlers: failure causes, default mix, deltas, transient errors."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from mixtune.errors import TransientError, as_transient
from mixtune.evaluation.comparison import deltas
from mixtune.steps.mix import mix_spec_fields
from mixtune.steps.outcome import readable_cause
from mixtune.steps.state import StepError


def test_readable_cause_keeps_the_lambda_error_message() -> None:
    cause = json.dumps(
        {"errorType": "JobFailedError", "errorMessage": "train job x failed: OOM", "stackTrace": []}
    )
    assert readable_cause(StepError(Error="JobFailedError", Cause=cause)) == "train job x failed: OOM"
    assert readable_cause(StepError(Error="States.Timeout", Cause="Task timed out")) == "Task timed out"


def test_default_mix_splits_the_general_share_over_the_catalog_categories() -> None:
    assert mix_spec_fields({}, ["code", "math"]) == {
        "domain_percent": 70.0,
        "categories": {"code": 50.0, "math": 50.0},
    }
    assert mix_spec_fields({"domain_percent": 80, "catalog_uri": "s3://c"}, ["math"]) == {
        "domain_percent": 80,
        "categories": {"math": 100.0},
    }
    assert mix_spec_fields({"domain_percent": 60}, []) == {"domain_percent": 100.0, "categories": {}}


def test_deltas_are_points_for_scores_and_nats_for_loss() -> None:
    baseline = {"domain_f1": 0.25, "mmlu_accuracy": 0.5, "general_loss": 2.0}
    tuned = {"domain_f1": 0.75, "mmlu_accuracy": 0.49, "general_loss": 2.1}
    assert deltas(baseline, tuned) == {"domain_f1_points": 50.0, "mmlu_points": -1.0, "general_loss": 0.1}
    assert deltas({"domain_f1": 0.1}, {}) == {}


def test_throttling_and_5xx_become_transient_errors_others_do_not() -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "StartExecution")
    server = ClientError({"Error": {"Code": "Boom"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "Publish")
    denied = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "Publish"
    )
    assert isinstance(as_transient(throttled), TransientError)
    assert isinstance(as_transient(server), TransientError)
    assert as_transient(denied) is denied
    plain = ValueError("x")
    assert as_transient(plain) is plain
