"""The one shape of mixtune's CloudWatch alarms: any occurrence in 5 minutes notifies the topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct


def alarm_on_any(
    scope: Construct,
    construct_id: str,
    metric: cloudwatch.IMetric,
    what: str,
    topic: sns.ITopic,
    statistic: str = "Sum",
) -> cloudwatch.Alarm:
    """An alarm when ``metric`` reaches 1 within 5 minutes, sent to ``topic``."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=f"mixtune: {what}",
        metric=metric.with_(period=Duration.minutes(5), statistic=statistic),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(topic))
    return alarm
