"""API stack: IAM-authorised REST API with validation, access logs, throttling, tracing."""

from __future__ import annotations

from aws_cdk.assertions import Match

STACK = "MixtuneApi"


def test_every_method_requires_iam_auth_and_a_request_validator(synthesized):
    methods = synthesized.resources(STACK, "AWS::ApiGateway::Method")
    assert methods
    (validator_id,) = synthesized.resources(STACK, "AWS::ApiGateway::RequestValidator")
    for method in methods.values():
        props = method["Properties"]
        if props["HttpMethod"] == "OPTIONS":
            continue
        assert props["AuthorizationType"] == "AWS_IAM"
        assert props["RequestValidatorId"] == {"Ref": validator_id}
        assert props["Integration"]["Type"] == "AWS_PROXY"


def test_request_validator_checks_bodies_and_parameters(synthesized):
    synthesized.templates[STACK].has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )


def test_stage_has_access_logs_throttling_tracing_and_no_data_trace(synthesized):
    synthesized.templates[STACK].has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("requestId"),
            },
            "TracingEnabled": True,
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "DataTraceEnabled": False,
                            "ThrottlingRateLimit": 10,
                            "ThrottlingBurstLimit": 20,
                            "HttpMethod": "*",
                            "ResourcePath": "/*",
                        }
                    )
                ]
            ),
        },
    )


def test_api_gateway_may_invoke_only_the_api_function(synthesized):
    permissions = synthesized.resources(STACK, "AWS::Lambda::Permission")
    functions = {
        k
        for k, r in synthesized.resources(STACK, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == "mixtune.handlers.api.handler"
    }
    assert permissions
    for permission in permissions.values():
        props = permission["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert props["FunctionName"]["Fn::GetAtt"][0] in functions
