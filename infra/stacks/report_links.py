"""The identity that signs links to run reports: an IAM user that may read ``reports/`` only.

A presigned URL is only as good as the credentials that signed it. A Lambda role's
credentials are temporary (hours), so a link signed with them dies long before the default
7 days of ``MIXTUNE_REPORT_LINK_EXPIRY_S`` (SigV4's own limit). A long-lived access key of a
user is the one signer whose links live their full expiry; this user's only permission is
reading the report objects of the work bucket (and decrypting them through S3), so a link,
leaked or not, reaches a report and nothing else, never dataset text.

The key lives in a Secrets Manager secret encrypted with the data key; the functions that
sign links (``notify``, ``prepare``, ``api``) may read that secret and nothing more of it.
Deactivating the key revokes every link at once.
"""

from __future__ import annotations

from aws_cdk import Aws, SecretValue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from mixtune import layout

from .nag import acknowledge
from .names import ResourceNames

REPORT_KEYS = f"{layout.REPORTS}/*"


class ReportLinkSigner(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.secret_name = f"{names.prefix}-report-link-signer"
        # Secrets Manager appends six random characters to a secret's name in its ARN.
        self.secret_arn = f"arn:{Aws.PARTITION}:secretsmanager:{Aws.REGION}:{Aws.ACCOUNT_ID}:secret:{self.secret_name}-??????"
        self.user = iam.User(self, "User")  # no password: no console, only the access key below
        self.user.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadRunReportsOnly",
                actions=["s3:GetObject"],
                resources=[names.bucket_arn("work", REPORT_KEYS)],
            )
        )
        self.user.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DecryptReportsThroughS3Only",
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
            )
        )
        access_key = iam.AccessKey(self, "AccessKey", user=self.user)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=self.secret_name,
            description="mixtune: the access key that signs links to run reports (reads reports/ only)",
            encryption_key=key,
            secret_object_value={
                "access_key_id": SecretValue.unsafe_plain_text(access_key.access_key_id),
                "secret_access_key": access_key.secret_access_key,
            },
        )
        acknowledge(
            self.user,
            {
                f"AwsSolutions-IAM5[Resource::{names.nag_bucket_arn('work', REPORT_KEYS)}]": (
                    "Every run's report lies under reports/<run id>/; this prefix holds reports only."
                )
            },
        )
        acknowledge(
            self.secret,
            {
                "AwsSolutions-SMG4": (
                    "Rotating the signer's access key revokes every report link already sent; rotate it "
                    "by hand when links may go (docs/pipeline.md, 'Report links')."
                )
            },
        )
