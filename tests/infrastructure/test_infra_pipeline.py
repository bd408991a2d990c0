"""Pipeline stack: functions derived from mixtune.functions, the trigger, the state machine,
schedules and alarms."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from mixtune.functions import FUNCTIONS, function
from mixtune.settings import Settings
from mixtune.statemachine import ASL_PATH, expected_placeholders, load_definition, placeholders_in, substitute

PIPELINE = "MixtunePipeline"
API = "MixtuneApi"
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}


def _functions_by_handler(synthesized) -> dict[str, tuple[str, dict]]:
    found = {}
    for stack in (PIPELINE, API):
        for logical_id, resource in synthesized.resources(stack, "AWS::Lambda::Function").items():
            handler = resource["Properties"].get("Handler", "")
            if handler.startswith("mixtune."):
                found[handler] = (logical_id, resource["Properties"])
    return found


def test_every_declared_function_is_deployed_once_with_its_handler_timeout_and_memory(synthesized):
    found = _functions_by_handler(synthesized)
    assert set(found) == {fn.handler for fn in FUNCTIONS}
    for fn in FUNCTIONS:
        props = found[fn.handler][1]
        assert props["Timeout"] == fn.timeout_s
        assert props["MemorySize"] == fn.memory_mb


def test_functions_run_python_312_on_arm64_with_the_layer_and_active_tracing(synthesized):
    for _logical_id, props in _functions_by_handler(synthesized).values():
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 1


def test_layer_is_for_python_312_on_arm64(synthesized):
    synthesized.templates[PIPELINE].has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleRuntimes": ["python3.12"], "CompatibleArchitectures": ["arm64"]},
    )


def test_function_environment_is_exactly_the_settings_fields_plus_powertools(synthesized):
    expected = {f"MIXTUNE_{name.upper()}" for name in Settings.model_fields} | POWERTOOLS
    for handler, (_logical_id, props) in _functions_by_handler(synthesized).items():
        variables = props["Environment"]["Variables"]
        assert set(variables) == expected, handler
        assert variables["POWERTOOLS_SERVICE_NAME"] == "mixtune"
        assert variables["MIXTUNE_PREPARE_FUNCTION_NAME"] == "mixtune-prepare"
        assert variables["MIXTUNE_HYPERPOD_CLUSTER_NAME"] == "ml-hyperpod"
        assert variables["MIXTUNE_HYPERPOD_NAMESPACE"] == "team-a"
        assert variables["MIXTUNE_SCHEDULED_DATASETS"] == "s3://raw/incoming/a.jsonl"
        # Resource names are references to the deployed resources, not literals.
        assert isinstance(variables["MIXTUNE_RAW_BUCKET"], dict)
        assert isinstance(variables["MIXTUNE_TOPIC_ARN"], dict)


def test_prepare_is_named_so_api_and_schedule_can_invoke_it(synthesized):
    _logical_id, props = _functions_by_handler(synthesized)[function("prepare").handler]
    assert props["FunctionName"] == "mixtune-prepare"


def test_reserved_concurrency_protects_what_lies_downstream(synthesized):
    found = _functions_by_handler(synthesized)
    for name, limit in {"prepare": 5, "launch_job": 5, "schedule": 1, "api": 10}.items():
        assert found[function(name).handler][1]["ReservedConcurrentExecutions"] == limit


def test_failed_async_invocations_go_to_on_failure_and_its_own_to_an_encrypted_queue(synthesized):
    """prepare and schedule: two retries, then the invocation record to on_failure (which ends
    the run FAILED and announces it); on_failure's own failures go to the dead-letter queue."""
    (queue_id, queue), *others = synthesized.resources(PIPELINE, "AWS::SQS::Queue").items()
    assert others == [] and "KmsMasterKeyId" in queue["Properties"]
    found = _functions_by_handler(synthesized)
    targets = {}
    for config in synthesized.resources(PIPELINE, "AWS::Lambda::EventInvokeConfig").values():
        props = config["Properties"]
        targets[props["FunctionName"]["Ref"]] = props["DestinationConfig"]["OnFailure"]["Destination"]
        assert props["MaximumRetryAttempts"] == 2
    on_failure_id = found[function("on_failure").handler][0]
    for name in ("prepare", "schedule"):
        assert targets[found[function(name).handler][0]] == {"Fn::GetAtt": [on_failure_id, "Arn"]}
    assert targets[on_failure_id] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_failed_timed_out_and_aborted_executions_go_to_on_failure(synthesized):
    on_failure_id = _functions_by_handler(synthesized)[function("on_failure").handler][0]
    synthesized.templates[PIPELINE].has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                    "stateMachineArn": Match.any_value(),
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [on_failure_id, "Arn"]},
                        "DeadLetterConfig": Match.any_value(),
                        "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600},
                    }
                )
            ],
        },
    )


def test_the_cost_guard_and_the_platform_reach_every_function(synthesized):
    for _, props in _functions_by_handler(synthesized).values():
        variables = props["Environment"]["Variables"]
        assert variables["MIXTUNE_PLATFORM"] == "aws"
        assert variables["MIXTUNE_MAX_NODE_COUNT"] == "4"
        assert "ml.p5.48xlarge" in json.loads(variables["MIXTUNE_ALLOWED_INSTANCE_TYPES"])
        assert json.loads(variables["MIXTUNE_ALLOWED_BASE_MODELS"]) == ["HuggingFaceTB/SmolLM2-135M-Instruct"]


def test_prepare_runs_on_uploads_under_incoming_for_each_supported_suffix(synthesized):
    notifications = synthesized.resources(PIPELINE, "Custom::S3BucketNotifications")
    assert len(notifications) == 1
    config = next(iter(notifications.values()))["Properties"]["NotificationConfiguration"]
    prepare_id = _functions_by_handler(synthesized)[function("prepare").handler][0]
    suffixes = set()
    for entry in config["LambdaFunctionConfigurations"]:
        assert entry["Events"] == ["s3:ObjectCreated:*"]
        assert entry["LambdaFunctionArn"] == {"Fn::GetAtt": [prepare_id, "Arn"]}
        rules = {r["Name"]: r["Value"] for r in entry["Filter"]["Key"]["FilterRules"]}
        assert rules["prefix"] == "incoming/"
        suffixes.add(rules["suffix"])
    assert suffixes == {".jsonl", ".json", ".csv", ".parquet"}


def test_state_machine_logs_all_levels_without_execution_data_and_traces(synthesized):
    synthesized.templates[PIPELINE].has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": "mixtune-pipeline",
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": False,
                "Destinations": Match.any_value(),
            },
            "TracingConfiguration": {"Enabled": True},
        },
    )


def _state_machine(synthesized) -> dict:
    (machine,) = synthesized.resources(PIPELINE, "AWS::StepFunctions::StateMachine").values()
    return machine["Properties"]


def _render(value: object) -> str:
    """A readable stand-in for an intrinsic: which resource (or export) the value points at."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"arn:test:{logical_id}:{attribute}"
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return f"arn:test:import:{value['Fn::ImportValue']}"
    if isinstance(value, dict) and "Ref" in value:
        return f"arn:test:ref:{value['Ref']}"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    raise AssertionError(f"unexpected intrinsic in the definition: {value!r}")


def _definition_text(props: dict) -> str:
    body = props["DefinitionString"]
    return _render(body)


def test_definition_string_is_the_asl_file_with_every_placeholder_substituted(synthesized):
    props = _state_machine(synthesized)
    asl = load_definition()
    assert _definition_text(props) == asl

    substitutions = {key: _render(value) for key, value in props["DefinitionSubstitutions"].items()}
    assert set(substitutions) == expected_placeholders()
    assert placeholders_in(asl) <= set(substitutions)

    found = _functions_by_handler(synthesized)
    for fn in FUNCTIONS:
        if fn.in_state_machine:
            logical_id = found[fn.handler][0]
            assert substitutions[fn.asl_placeholder] == f"arn:test:{logical_id}:Arn"
    topic = synthesized.raw["MixtuneStorage"]["Resources"]
    assert any(t["Type"] == "AWS::SNS::Topic" for t in topic.values())
    assert substitutions["TopicArn"].startswith("arn:test:import:MixtuneStorage:")

    resolved = substitute(asl, substitutions)
    assert not placeholders_in(resolved)
    definition = json.loads(resolved)
    resources = [state.get("Resource", "") for state in _all_states(definition)]
    assert any(r.startswith("arn:test:") for r in resources)


def _all_states(definition: dict):
    for state in definition.get("States", {}).values():
        yield state
        for branch in state.get("Branches", []):
            yield from _all_states(branch)
        if "Iterator" in state:
            yield from _all_states(state["Iterator"])
        if "ItemProcessor" in state:
            yield from _all_states(state["ItemProcessor"])


def test_state_machine_may_invoke_exactly_its_own_functions(synthesized):
    role_id = _state_machine(synthesized)["RoleArn"]["Fn::GetAtt"][0]
    policies = [
        p["Properties"]
        for p in synthesized.resources(PIPELINE, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]
    invoked = set()
    for policy in policies:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "lambda:InvokeFunction" in _as_list(statement["Action"]):
                for resource in _as_list(statement["Resource"]):
                    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
                        invoked.add(resource["Fn::GetAtt"][0])
    found = _functions_by_handler(synthesized)
    assert invoked == {found[fn.handler][0] for fn in FUNCTIONS if fn.in_state_machine}


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(
    ("expression", "payload"),
    [
        ("cron(0 3 * * ? *)", {"action": "rerun", "datasets": ["s3://raw/incoming/a.jsonl"]}),
        ("rate(7 days)", {"action": "reevaluate"}),
    ],
)
def test_schedules_from_context_target_the_schedule_function_with_their_input(
    synthesized, expression, payload
):
    schedule_id = _functions_by_handler(synthesized)[function("schedule").handler][0]
    synthesized.templates[PIPELINE].has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": expression,
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [schedule_id, "Arn"]},
                        "Input": json.dumps(payload, separators=(",", ":")),
                        "DeadLetterConfig": Match.any_value(),
                    }
                )
            ],
        },
    )


def test_alarms_on_failed_executions_and_every_function_error_go_to_the_topic(synthesized):
    alarms = list(synthesized.resources(PIPELINE, "AWS::CloudWatch::Alarm").values())
    alarms += list(synthesized.resources(API, "AWS::CloudWatch::Alarm").values())
    for alarm in alarms:
        (action,) = alarm["Properties"]["AlarmActions"]
        assert "Fn::ImportValue" in action and "RunEventsTopic" in action["Fn::ImportValue"]
    metrics = [(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms]
    assert ("AWS/States", "ExecutionsFailed") in metrics
    function_errors = [a for a in alarms if a["Properties"]["MetricName"] == "Errors"]
    alarmed = {d["Value"]["Ref"] for a in function_errors for d in a["Properties"]["Dimensions"]}
    assert len(alarmed) == len(FUNCTIONS)


def test_asl_file_exists_where_the_stack_loads_it():
    assert ASL_PATH.is_file()
