"""A mix-ratio sweep in moto's interpreter: one run, one smoke run, one baseline, a Map over the
arms, the choice recorded and promoted, failures tolerated or not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.workflow.test_workflow_pipeline import drop_dataset, intents

SWEEP = [100, 75, 50]


@pytest.fixture
def sweep_stack(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stack with a service default run config that sweeps (what a dropped file gets)."""
    from mixtune.settings import get_settings

    monkeypatch.setenv(
        "MIXTUNE_DEFAULT_RUN_CONFIG",
        json.dumps(
            {
                "sweep": {"arms": SWEEP, "max_concurrency": 2},
                "evaluation": {"domain_task": "classification"},
                "mix": {"max_oversample": 20},  # the test catalog's general data is small
            }
        ),
    )
    get_settings.cache_clear()
    # The planned model answers these shares of the 23 eval items (240 records, 12 intents) and of
    # the MMLU questions right. a1 (all domain) learns most but forgets MMLU; a2 and a3 keep it,
    # and a2's domain interval clears a3's: a2 is chosen.
    stack.plan.arm_tuned = {
        "a1": {"domain": 1.0, "mmlu": 0.40},
        "a2": {"domain": 0.9, "mmlu": 0.497},
        "a3": {"domain": 0.3, "mmlu": 0.50},
    }
    return stack


def run_sweep(stack: Any) -> tuple[dict[str, Any], Any]:
    result = drop_dataset(stack, rows=intents(240))
    assert result["status"] == "PREPARED", result
    execution = stack.wait_for_execution(result["execution_arn"])
    return execution, stack.repo().get(result["run_id"])


def test_a_three_arm_sweep_shares_smoke_and_baseline_and_promotes_the_chosen_arm(sweep_stack: Any) -> None:
    stack = sweep_stack
    stack.plan.train_wall_s = 1800.0
    execution, run = run_sweep(stack)
    assert execution["status"] == "SUCCEEDED", execution
    assert run.status == "SUCCEEDED"
    sweep = run.metrics["sweep"]
    assert sweep["chosen"] == "a2"
    assert sweep["frontier"][0] == "a1"  # the best domain score, refused by the gate
    assert set(sweep["passing"]) == {"a2", "a3"}
    # shared: one smoke run (on a3, the most general data), one baseline; three trainings
    assert stack.plan.submitted.count("smoke") == 1
    assert ("smoke", "a3") in stack.plan.submitted_arms
    assert stack.plan.submitted.count("evaluate_baseline") == 1
    assert sorted(arm for step, arm in stack.plan.submitted_arms if step == "train") == ["a1", "a2", "a3"]
    assert sorted(arm for step, arm in stack.plan.submitted_arms if step == "evaluate_tuned") == [
        "a1",
        "a2",
        "a3",
    ]
    # the chosen arm is promoted, and the run's lineage and headline figures are its own
    promoted = stack.repo().get_promoted("tiny")
    assert promoted.run_id == run.run_id and f"{run.run_id}-a2/train/" in promoted.adapter_uri
    assert run.lineage.adapter_uri == promoted.adapter_uri
    # every arm's item: lineage, figures, job seconds, cost
    arms = {a.arm: a for a in stack.repo().get_arms(run.run_id, ["a1", "a2", "a3"])}
    assert {a.arm_status for a in arms.values()} == {"SUCCEEDED"}
    assert arms["a2"].chosen and not arms["a1"].chosen
    assert run.metrics["tuned"] == arms["a2"].metrics["tuned"]
    assert arms["a1"].gate["verdict"] == "REJECT"
    for arm in arms.values():
        assert arm.manifest_uri and arm.adapter_uri and arm.eval_uri and arm.train_uri
        assert arm.job_seconds["train"] == 1800.0
        assert arm.cost_usd == pytest.approx(0.5 * 1.408, abs=1e-3)  # ml.g5.xlarge, half an hour
    for row in sweep["arms"]:  # each arm's changes with their paired intervals, as a single run's
        assert row["delta_intervals"]["domain_f1_points"]["low"] <= row["deltas"]["domain_f1_points"]
    cost = sweep["cost"]
    assert cost["total_usd"] == pytest.approx(3 * 0.704 + cost["shared_usd"], abs=1e-3)
    # the jobs of every arm are in the run's lineage (MarkFailed would stop them all)
    assert {"a1/train", "a2/train", "a3/train", "a3/smoke"} <= set(run.lineage.job_ids)
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    assert "promoted 75% domain" in message["Subject"]
    body = message["Message"]["sweep"]
    assert body["chosen"] == "a2" and body["chosen_mix"] == "75% domain"
    assert [arm["arm"] for arm in body["arms"]] == ["a1", "a2", "a3"]
    assert body["arms"][0]["verdict"] == "REJECT"
    assert body["arms"][1]["domain_f1_points"] == pytest.approx(run.metrics["deltas"]["domain_f1_points"])
    assert "saved" in body["cost_text"]
    # the report: the arms table and the trade-off plot beside the other sections
    run = stack.repo().get(run.run_id)
    bucket, key = run.lineage.run_report_uri.removeprefix("s3://").split("/", 1)
    page = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert "Sweep: 3 mixes" in page and "domain vs general, per arm" in page
    assert "75% domain (chosen)" in page and "base model" in page


def test_one_failed_arm_is_tolerated(sweep_stack: Any) -> None:
    stack = sweep_stack
    stack.plan.fail_steps["train@a2"] = "CUDA out of memory at step 3"
    execution, run = run_sweep(stack)
    assert execution["status"] == "SUCCEEDED", execution
    assert run.status == "SUCCEEDED"
    assert run.metrics["sweep"]["chosen"] == "a3"
    rows = {row["arm"]: row for row in run.metrics["sweep"]["arms"]}
    assert rows["a2"]["status"] == "FAILED"
    assert "CUDA out of memory" in rows["a2"]["failure"]["cause"]
    (a2,) = stack.repo().get_arms(run.run_id, ["a2"])
    assert a2.arm_status == "FAILED" and a2.failure["error"] == "JobFailedError"


def test_all_arms_failing_ends_failed_with_every_cause_and_a_message(sweep_stack: Any) -> None:
    stack = sweep_stack
    for arm in ("a1", "a2", "a3"):
        stack.plan.fail_steps[f"train@{arm}"] = f"disk full on {arm}"
    execution, run = run_sweep(stack)
    assert execution["status"] == "FAILED"
    assert run.status == "FAILED"
    assert run.failure.error == "SweepArmsFailed"
    assert all(f"disk full on {arm}" in run.failure.cause for arm in ("a1", "a2", "a3"))
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"
    assert "SweepArmsFailed" in message["Subject"]


def test_a_sweep_no_arm_passes_ends_rejected_by_gate_with_the_frontier(sweep_stack: Any) -> None:
    stack = sweep_stack
    stack.plan.arm_tuned = {
        arm: {"domain": f1, "mmlu": 0.40} for arm, f1 in (("a1", 0.9), ("a2", 0.8), ("a3", 0.7))
    }
    execution, run = run_sweep(stack)
    assert execution["status"] == "SUCCEEDED"
    assert run.status == "REJECTED_BY_GATE"
    sweep = run.metrics["sweep"]
    assert sweep.get("chosen") is None and sweep["frontier"] == ["a1"]  # None is not stored
    assert run.gate["promote"] is False and "no arm passed the gate" in run.gate["reasons"][0]
    assert stack.repo().get_promoted("tiny") is None
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "REJECTED_BY_GATE"


def test_a_run_without_a_sweep_takes_the_single_path(stack: Any) -> None:
    result = drop_dataset(stack)
    execution = stack.wait_for_execution(result["execution_arn"])
    assert execution["status"] == "SUCCEEDED"
    entered = stack.states_entered(execution["executionArn"])
    assert "Mix" in entered and not any(name.startswith(("Sweep", "Arm")) for name in entered)
