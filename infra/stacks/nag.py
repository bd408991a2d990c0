"""cdk-nag acknowledgments: every one carries its reason (cdk-nag 3 uses CDK's Validations)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge findings on `scope` and its children; `reasons` maps finding id -> why."""
    for rule_id, reason in reasons.items():
        if not reason.strip():
            raise ValueError(f"acknowledgment of {rule_id} has no reason")
        Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
