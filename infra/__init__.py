"""The mixtune CDK app (see docs/infra.md)."""
