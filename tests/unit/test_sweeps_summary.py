"""A finished sweep in rows and words (CLI, report, SNS), its trade-off plot, and its cost."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from mixtune.report import plots
from mixtune.sweeps.cost import job_usd, sweep_cost
from mixtune.sweeps.summary import arm_table, cost_line, sweep_message


def sweep_metrics() -> dict[str, Any]:
    cost = sweep_cost("ml.g5.xlarge", {"a1": 0.7, "a2": 0.7}, 1800.0, {})
    return {
        "sweep": {
            "arms": [
                {
                    "arm": "a1",
                    "label": "100% domain",
                    "status": "SUCCEEDED",
                    "domain_f1": 0.9,
                    "domain_f1_ci": [0.8, 0.95],
                    "mmlu_accuracy": 0.4,
                    "general_loss": 1.731,
                    "general_loss_ci": [1.474, 1.988],
                    "deltas": {"domain_f1_points": 60.0, "mmlu_points": -10.0},
                    "verdict": "REJECT",
                    "job_seconds": {"train": 1700.0, "evaluate_tuned": 100.0},
                    "cost_usd": 0.7,
                    "on_frontier": True,
                },
                {
                    "arm": "a2",
                    "label": "75% domain",
                    "status": "SUCCEEDED",
                    "domain_f1": 0.85,
                    "mmlu_accuracy": 0.5,
                    "deltas": {"domain_f1_points": 55.0, "mmlu_points": -0.2},
                    "verdict": "PROMOTE",
                    "cost_usd": 0.7,
                    "on_frontier": True,
                    "chosen": True,
                },
                {
                    "arm": "a3",
                    "label": "50% domain",
                    "status": "FAILED",
                    "failure": {"error": "JobFailedError", "cause": "out of memory"},
                },
            ],
            "chosen": "a2",
            "frontier": ["a1", "a2"],
            "reasons": ["2 of 3 arms passed"],
            "cost": {**cost.model_dump(), "saved_usd": cost.saved_usd},
        }
    }


def test_the_arms_table_shows_figures_intervals_verdicts_and_the_choice() -> None:
    rows = arm_table(sweep_metrics()["sweep"])
    assert rows[0][:4] == ["a1", "100% domain", "SUCCEEDED", "0.900 [0.800, 0.950]"]
    assert rows[0][5] == "1.731 [1.474, 1.988]" and rows[1][5] == "n/a"
    assert arm_table(sweep_metrics()["sweep"], intervals=False)[0][5] == "1.731"
    assert rows[0][6:] == ["+60.0", "-10.0", "REJECT", "1,800", "0.70", "frontier"]
    assert rows[1][-1] == "chosen"
    assert rows[2][2] == "FAILED" and rows[2][8] == "JobFailedError" and rows[2][3] == "n/a"


def test_cost_counts_the_shared_smoke_and_baseline_once() -> None:
    assert job_usd(3600, 2, "ml.g5.xlarge", {}) == pytest.approx(2 * 1.408)
    assert job_usd(3600, 1, "g5.xlarge", {"ml.g5.xlarge": 1.0}) == pytest.approx(1.0)  # the setting wins
    assert job_usd(3600, 1, "ml.unknown.xlarge", {}) is None
    cost = sweep_cost("ml.g5.xlarge", {"a1": 1.0, "a2": 2.0}, 3600.0, {})
    assert cost.shared_usd == pytest.approx(1.408)
    assert cost.total_usd == pytest.approx(3.0 + 1.408)
    assert cost.single_runs_usd == pytest.approx(3.0 + 2 * 1.408)
    assert cost.saved_usd == pytest.approx(1.408)
    assert "saved $0.70" in cost_line(sweep_metrics()["sweep"])
    unpriced = sweep_cost("ml.unknown.xlarge", {"a1": None}, 10.0, {})
    assert unpriced.total_usd is None


def test_the_sns_sweep_names_the_chosen_mix_and_each_arms_headline() -> None:
    message = sweep_message(sweep_metrics())
    assert message["chosen_mix"] == "75% domain"
    assert [arm["arm"] for arm in message["arms"]] == ["a1", "a2", "a3"]
    assert (
        message["arms"][0]["mmlu_points"] == -10.0
        and message["arms"][2]["failure"]["error"] == "JobFailedError"
    )
    assert sweep_message({"deltas": {}}) is None


def test_the_tradeoff_plot_is_well_formed_svg_with_every_arm_the_base_and_the_frontier() -> None:
    svg = plots.tradeoff_chart(
        [
            plots.TradeoffPoint("100% <domain>", 0.40, 0.90, on_frontier=True, passes=False),
            plots.TradeoffPoint("75% domain", 0.50, 0.85, on_frontier=True, chosen=True),
            plots.TradeoffPoint("50% domain", 0.49, 0.60),
            plots.TradeoffPoint("25% domain", 0.51, 0.40, passes=False, undecided=True),
        ],
        title="trade-off",
        x_label="MMLU accuracy",
        y_label="domain F1",
        baseline=(0.50, 0.30),
    )
    root = ET.fromstring(svg)
    texts = [element.text for element in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "100% <domain> (refused)" in texts and "75% domain (chosen)" in texts and "base model" in texts
    assert "25% domain (undecided)" in texts and "50% domain" in texts
    assert len(list(root.iter("{http://www.w3.org/2000/svg}polyline"))) == 1  # the frontier
    circles = list(root.iter("{http://www.w3.org/2000/svg}circle"))
    assert len(circles) == 5  # four arms and the ring of the chosen one
    strokes = [circle.get("stroke") for circle in circles]
    assert strokes.count(plots.BAD_COLOUR) == 1 and strokes.count(plots.SMOKE_COLOUR) == 1


def test_runs_show_prints_the_arms_table_the_reasons_failures_and_cost() -> None:
    import io

    from rich.console import Console

    from mixtune.commands.runs import print_arms

    out = io.StringIO()
    print_arms({"metrics": sweep_metrics()}, Console(file=out, width=160))
    text = out.getvalue()
    assert "sweep: 3 arms, chosen: a2" in text
    assert "100% domain" in text and "PROMOTE" in text and "REJECT" in text and "frontier" in text
    assert "a3 failed: JobFailedError: out of memory" in text and "saved $0.70" in text
    assert "ΔMMLU" in text and "loss" not in text.split("\n")[2]
    out = io.StringIO()
    print_arms({"metrics": {"deltas": {}}}, Console(file=out))
    assert out.getvalue() == ""  # not a sweep: nothing


def test_the_arms_table_shows_the_held_out_loss_when_the_arms_were_ranked_on_it() -> None:
    import io

    from rich.console import Console

    from mixtune.commands.runs import print_arms

    metrics = sweep_metrics()
    metrics["sweep"]["general_score"] = "general_loss"
    metrics["sweep"]["arms"][0]["general_loss"] = 2.112
    metrics["sweep"]["arms"][0]["general_loss_ci"] = [1.7, 2.5]
    metrics["sweep"]["arms"][1]["general_loss"] = 0.556
    out = io.StringIO()
    print_arms({"metrics": metrics}, Console(file=out, width=160))
    text = out.getvalue()
    assert "2.112" in text and "0.556" in text and "ΔMMLU" not in text
