"""Physical names and ARNs of the data resources, computed from the prefix in one place.

Fixed names let every stack write its IAM statements against plain ARN strings (no
cross-stack tokens), so the policies read as what they allow and cdk-nag findings on them
have stable ids that the acknowledgments can name.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws

# How cdk-nag prints the pseudo parameters inside a finding id.
NAG_PARTITION, NAG_REGION, NAG_ACCOUNT = "<AWS::Partition>", "<AWS::Region>", "<AWS::AccountId>"


@dataclass(frozen=True)
class ResourceNames:
    prefix: str

    def bucket(self, purpose: str) -> str:
        # Bucket names are global: the account and region make them unique.
        return f"{self.prefix}-{purpose}-{Aws.ACCOUNT_ID}-{Aws.REGION}"

    def bucket_arn(self, purpose: str, keys: str | None = None) -> str:
        arn = f"arn:{Aws.PARTITION}:s3:::{self.bucket(purpose)}"
        return arn if keys is None else f"{arn}/{keys}"

    def nag_bucket_arn(self, purpose: str, keys: str) -> str:
        return f"arn:{NAG_PARTITION}:s3:::{self.prefix}-{purpose}-{NAG_ACCOUNT}-{NAG_REGION}/{keys}"

    def table(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}"

    def table_arn(self, purpose: str, suffix: str = "") -> str:
        return (
            f"arn:{Aws.PARTITION}:dynamodb:{Aws.REGION}:{Aws.ACCOUNT_ID}:table/{self.table(purpose)}{suffix}"
        )

    def nag_table_arn(self, purpose: str, suffix: str) -> str:
        return f"arn:{NAG_PARTITION}:dynamodb:{NAG_REGION}:{NAG_ACCOUNT}:table/{self.table(purpose)}{suffix}"
