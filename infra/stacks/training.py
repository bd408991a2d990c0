"""Training backends' identities: the launcher role, the SageMaker execution role and the
HyperPod job role.

The launcher role is what the `launch_job` and `poll_job` Lambdas run as. It reaches only
its job resources: the EKS cluster behind HyperPod (mapped through an access entry to a
Kubernetes Role limited to `hyperpodpytorchjobs` in one namespace), SageMaker training jobs
tagged by mixtune, passing the SageMaker execution role, and (granted by the pipeline stack)
the run's item in the runs table and the job outputs under `runs/` in the work bucket.

The jobs themselves read the mix and write adapters, checkpoints and results in the work bucket
(with the data key): SageMaker jobs as the execution role, HyperPod pods as the job role, which
EKS Pod Identity gives to the pods' service account in the jobs' namespace.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, CfnOutput, Stack
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from .config import InfraConfig
from .grants import S3_READ_BUCKET, S3_READ_OBJECTS, Targets, grant_bucket
from .image import TrainingImage
from .k8s_rbac import rbac_manifest
from .nag import acknowledge
from .names import NAG_PARTITION

# The tag the sagemaker backend puts on every job it creates (mixtune.backends.sagemaker).
JOB_TAG = "mixtune:job"
ECR_PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


class TrainingIdentities(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: InfraConfig,
        targets: Targets,
        image: TrainingImage | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.config = config

        self.sagemaker_role = iam.Role(
            self,
            "SageMakerExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="mixtune SageMaker training jobs: the work bucket, their logs and metrics, the image",
        )
        grant_bucket(self.sagemaker_role, targets, "work", "read_write")
        # A prepare job (a dataset too large for Lambda) reads the dropped file.
        grant_bucket(self.sagemaker_role, targets, "raw", "read")
        # EBS volumes encrypted with the data key (ResourceConfig.VolumeKmsKeyId): a grant for EC2.
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[targets.key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
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
        if image is not None:
            image.grant_pull(self.sagemaker_role)
        model_reasons = grant_model_reads(self.sagemaker_role, config.readable_model_uris)
        acknowledge(
            self.sagemaker_role,
            {
                **model_reasons,
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
        self.job_role: iam.Role | None = None
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
            self.job_role = self._hyperpod_job_role(targets, self.cluster_arn)
            CfnOutput(
                self,
                "HyperPodRbacManifest",
                description="Apply with kubectl (see docs/infra.md): the jobs' namespace and service account, "
                "the launcher's namespaced Role and RoleBinding",
                value=rbac_manifest(
                    config.hyperpod_namespace,
                    config.hyperpod_kubernetes_group,
                    config.hyperpod_service_account,
                ),
            )
            CfnOutput(
                self,
                "HyperPodJobRoleArn",
                description=f"The role of the job pods (service account {config.hyperpod_namespace}/"
                f"{config.hyperpod_service_account}, by EKS Pod Identity: the cluster needs the "
                "eks-pod-identity-agent add-on)",
                value=self.job_role.role_arn,
            )
        acknowledge(self.launcher_role, reasons)
        CfnOutput(
            self,
            "SageMakerExecutionRoleArn",
            description="The role of mixtune's SageMaker training jobs",
            value=self.sagemaker_role.role_arn,
        )
        if image is not None:
            CfnOutput(self, "TrainingImageUri", description="The image every job runs", value=image.uri)
        if image is not None and image.asset is not None and config.hyperpod_enabled:
            CfnOutput(
                self,
                "TrainingImageRepositoryArn",
                description="HyperPod nodes pull the image as the cluster's instance role: allow it "
                "ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on this repository",
                value=image.asset.repository.repository_arn,
            )

    def _hyperpod_job_role(self, targets: Targets, cluster_arn: str) -> iam.Role:
        """The pods' AWS identity: the work bucket and the data key, base models to read, nothing else."""
        config, stack = self.config, Stack.of(self)
        role = iam.Role(
            self,
            "HyperPodJobRole",
            assumed_by=iam.ServicePrincipal(
                "pods.eks.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": cluster_arn},
                },
            ).with_session_tags(),
            description="mixtune HyperPod job pods: the work bucket with the data key, base models to read",
        )
        grant_bucket(role, targets, "work", "read_write")
        grant_bucket(role, targets, "raw", "read")  # a prepare job reads the dropped file
        acknowledge(role, grant_model_reads(role, config.readable_model_uris))
        eks.CfnPodIdentityAssociation(
            self,
            "HyperPodJobPodIdentity",
            cluster_name=config.hyperpod_eks_cluster_name,
            namespace=config.hyperpod_namespace,
            service_account=config.hyperpod_service_account,
            role_arn=role.role_arn,
        )
        return role


def grant_model_reads(role: iam.IRole, uris: tuple[str, ...]) -> dict[str, str]:
    """Read access to s3:// folders of base models; returns the cdk-nag reasons it needs."""
    reasons = {}
    for uri in uris:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        keys = f"{prefix.rstrip('/')}/*" if prefix.strip("/") else "*"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(S3_READ_OBJECTS), resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}/{keys}"]
            )
        )
        listing = iam.PolicyStatement(
            actions=list(S3_READ_BUCKET), resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}"]
        )
        if keys != "*":
            listing.add_condition("StringLike", {"s3:prefix": [keys]})
        role.add_to_principal_policy(listing)
        reasons[f"AwsSolutions-IAM5[Resource::arn:{NAG_PARTITION}:s3:::{bucket}/{keys}]"] = (
            f"The files of the base model folder {uri} (a Hugging Face checkpoint), read only."
        )
    return reasons
