"""Training backends' identities: the HyperPod launcher role and the SageMaker execution role.

The launcher role is what the `launch_job` and `poll_job` Lambdas run as. It reaches only
its job resources: the EKS cluster behind HyperPod (mapped through an access entry to a
Kubernetes Role limited to `hyperpodpytorchjobs` in one namespace), SageMaker training jobs
tagged by mixtune, passing the SageMaker execution role, and (granted by the pipeline stack)
the run's item in the runs table and the job outputs under `runs/` in the work bucket.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, Stack
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from .config import InfraConfig
from .grants import Targets, grant_bucket
from .k8s_rbac import rbac_manifest
from .nag import acknowledge

# The tag the sagemaker backend puts on every job it creates (mixtune.backends.sagemaker).
JOB_TAG = "mixtune:job"
ECR_PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


class TrainingIdentities(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: InfraConfig, targets: Targets) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.sagemaker_role = iam.Role(
            self,
            "SageMakerExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="mixtune SageMaker training jobs: the work bucket, their logs and metrics, the image",
        )
        grant_bucket(self.sagemaker_role, targets, "work", "read_write")
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/TrainingJobs:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(
                actions=ECR_PULL_ACTIONS,
                resources=[
                    stack.format_arn(service="ecr", resource="repository", resource_name=f"{config.prefix}*")
                ],
            )
        )
        acknowledge(
            self.sagemaker_role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
                    "permissions; metrics are limited to SageMaker namespaces by a condition."
                ),
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:*]": (
                    "SageMaker names one log stream per job and instance; the group is fixed."
                ),
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/{config.prefix}*]": (
                    "The training image repositories of this deployment, named after its prefix."
                ),
            },
        )

        self.launcher_role = iam.Role(
            self,
            "HyperPodLauncherRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="mixtune launch_job/poll_job: training jobs on HyperPod (EKS) and SageMaker only",
        )
        # Job names are derived from run ids (no fixed prefix): the job tag marks mixtune's jobs.
        training_jobs = stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")
        self.launcher_role.add_to_policy(
            iam.PolicyStatement(
                sid="CreateTaggedTrainingJobs",
                actions=["sagemaker:CreateTrainingJob", "sagemaker:AddTags"],
                resources=[training_jobs],
                conditions={"Null": {f"aws:RequestTag/{JOB_TAG}": "false"}},
            )
        )
        self.launcher_role.add_to_policy(
            iam.PolicyStatement(
                sid="WatchAndStopTaggedTrainingJobs",
                actions=["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
                resources=[training_jobs],
                conditions={"Null": {f"aws:ResourceTag/{JOB_TAG}": "false"}},
            )
        )
        self.launcher_role.add_to_policy(
            iam.PolicyStatement(
                sid="PassTheTrainingJobRole",
                actions=["iam:PassRole"],
                resources=[self.sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        reasons = {
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*]": (
                "Training job names derive from run ids; a tag condition limits the role to mixtune's jobs."
            ),
            "AwsSolutions-IAM5[Resource::*]": "X-Ray tracing (PutTraceSegments/PutTelemetryRecords) has no resource-level permissions.",
        }

        self.cluster_arn: str | None = None
        if config.hyperpod_enabled:
            self.cluster_arn = stack.format_arn(
                service="eks", resource="cluster", resource_name=config.hyperpod_eks_cluster_name
            )
            # The backend resolves the HyperPod cluster to its EKS cluster, then gets the endpoint
            # and CA; its Kubernetes rights come from the access entry below, nothing else.
            self.launcher_role.add_to_policy(
                iam.PolicyStatement(
                    sid="FindTheHyperPodCluster",
                    actions=["sagemaker:DescribeCluster"],
                    resources=[stack.format_arn(service="sagemaker", resource="cluster", resource_name="*")],
                )
            )
            self.launcher_role.add_to_policy(
                iam.PolicyStatement(
                    sid="FindTheEksEndpoint", actions=["eks:DescribeCluster"], resources=[self.cluster_arn]
                )
            )
            reasons[
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:cluster/*]"
            ] = "HyperPod cluster ARNs carry a generated id, not the name the backend is given; describe only."
            eks.CfnAccessEntry(
                self,
                "HyperPodAccessEntry",
                cluster_name=config.hyperpod_eks_cluster_name,
                principal_arn=self.launcher_role.role_arn,
                kubernetes_groups=[config.hyperpod_kubernetes_group],
                type="STANDARD",
            )
            CfnOutput(
                self,
                "HyperPodRbacManifest",
                description="Apply with kubectl (see docs/infra.md): the launcher's namespaced Role and RoleBinding",
                value=rbac_manifest(config.hyperpod_namespace, config.hyperpod_kubernetes_group),
            )
        acknowledge(self.launcher_role, reasons)
