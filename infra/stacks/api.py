"""API: a REST API (IAM auth, request validation, access logs, throttling) proxying to `api`."""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from constructs import Construct

from .alarms import alarm_on_any
from .config import InfraConfig
from .functions import retention
from .grants import ACCESS, acknowledge_lambda_basics, grant_access
from .nag import acknowledge
from .pipeline import PipelineStack
from .storage import StorageStack


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: InfraConfig,
        storage: StorageStack,
        pipeline: PipelineStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        fn = config.function("api")
        self.function = pipeline.factory.create(self, fn)
        grant_access(self.function.role, ACCESS[fn.name], pipeline.targets)
        acknowledge_lambda_basics(self.function, self.function.role)

        access_logs = logs.LogGroup(
            self,
            "ApiAccessLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{config.prefix}-api",
            description="mixtune: start and inspect runs (IAM-signed requests only)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies may carry dataset text
                tracing_enabled=True,
                throttling_rate_limit=config.api_throttle.rate_limit,
                throttling_burst_limit=config.api_throttle.burst_limit,
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        validator = self.api.add_request_validator(
            "RequestValidator",
            request_validator_name="body-and-parameters",
            validate_request_body=True,
            validate_request_parameters=True,
        )
        integration = apigw.LambdaIntegration(self.function, proxy=True)
        proxy = self.api.root.add_resource("{proxy+}")
        for resource in (self.api.root, proxy):
            resource.add_method(
                "ANY",
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                request_validator=validator,
            )

        CfnOutput(self, "ApiUrl", value=self.api.url, description="POST /runs, GET /runs (SigV4-signed)")

        alarm_on_any(
            self, "ApiServerErrorsAlarm", self.api.metric_server_error(), "API 5XX responses", storage.topic
        )
        alarm_on_any(self, "ApiErrorsAlarm", self.function.metric_errors(), "api errors", storage.topic)

        acknowledge(
            self.api,
            {
                "AwsSolutions-APIG3": (
                    "Every method requires SigV4-signed IAM requests and the stage is throttled; "
                    "attach a WAF web ACL per deployment where the account has one."
                ),
                "AwsSolutions-COG4": "The API uses IAM authorization (SigV4), not Cognito user pools.",
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]": (
                    "The account-level role API Gateway needs to write access logs; AWS maintains its policy."
                ),
            },
        )
