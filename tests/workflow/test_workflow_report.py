"""Every outcome writes the run's report beside its outputs, and its SNS message links to it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support.html import parse_html
from tests.workflow.test_workflow_pipeline import run_to_end
from tests.workflow.test_workflow_prepare import _event, _invoke_prepare, _put


def _report(stack: Any, run: Any, message: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The page (parsed) and summary.json of a run, checked against its SNS message."""
    uri = f"s3://mixtune-work/reports/{run.run_id}/report.html"
    link = message["Message"]["report"]
    assert link["uri"] == uri == run.lineage.run_report_uri
    url = urlparse(link["url"])
    assert url.path.endswith(f"/reports/{run.run_id}/report.html")
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["604800"] and "X-Amz-Signature" in query  # 7 days by default
    assert query["response-content-type"] == ["text/html; charset=utf-8"]
    assert link["expires_at"]
    s3 = stack.client("s3")
    page = s3.get_object(Bucket="mixtune-work", Key=f"reports/{run.run_id}/report.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    html = page["Body"].read().decode()
    markdown = s3.get_object(Bucket="mixtune-work", Key=f"reports/{run.run_id}/report.md")["Body"].read()
    assert markdown.decode().startswith("# mixtune run report")
    summary = json.loads(
        s3.get_object(Bucket="mixtune-work", Key=f"reports/{run.run_id}/summary.json")["Body"].read()
    )
    assert summary["run_id"] == run.run_id and summary["status"] == run.status
    parsed = parse_html(html)
    assert not parsed.unclosed and not parsed.mismatched
    assert "| --- |" not in html and "![" not in html  # rendered, not Markdown
    return parsed, summary


def test_a_promoted_run_gets_a_report_with_scores_loss_curve_and_states(stack: Any) -> None:
    _, run = run_to_end(stack)
    (message,) = stack.messages()
    page, summary = _report(stack, run, message)
    assert summary["verdict"]["headline"] == "Promoted"
    scores = page.table_with("metric")
    assert scores[1][:3] == ["domain macro-F1", "0.300 [0.100, 0.495]", "0.800 [0.596, 0.950]"]
    assert page.tags["svg"] >= 4  # scores, loss, mix shares, state timeline
    states = [row[0] for row in page.table_with("state")[1:]]
    assert states[:3] == ["Mix", "SmokeTrain", "Train"] and "Record" in states
    assert all(row[1] == "done" for row in page.table_with("state")[1:-1])
    assert summary["mix"]["parts"][0]["name"] == "domain"
    assert summary["data"]["counts"]["input"] == 60
    # GET /runs/{id} links to the same page
    from mixtune.api.models import RunDetail
    from mixtune.report.links import link_to

    stored = stack.repo().get(run.run_id)
    detail = RunDetail.of(stored, link_to(stored.lineage.run_report_uri))
    assert detail.report is not None and detail.report.uri == message["Message"]["report"]["uri"]


def test_a_failed_run_gets_a_report_naming_the_failed_step_and_its_cause(stack: Any) -> None:
    stack.plan.fail_steps["train"] = "CUDA out of memory at step 3"
    execution, run = run_to_end(stack)
    assert execution["status"] == "FAILED"
    (message,) = stack.messages()
    page, summary = _report(stack, run, message)
    assert summary["verdict"]["tone"] == "bad"
    assert summary["failure"]["step"] == "Train"
    assert summary["failure"]["error"] == "JobFailedError"
    failed = page.table_with("failed step")
    assert failed[1][0] == "Train" and "CUDA out of memory at step 3" in failed[1][2]
    statuses = {row[0]: row[1] for row in page.table_with("state")[1:]}
    assert statuses["Train"] == "failed" and statuses["SmokeTrain"] == "done"
    assert "Scores: base vs tuned" not in page.text  # never evaluated


def test_a_run_the_gate_refuses_gets_a_report_with_the_gate_reasons(stack: Any) -> None:
    stack.plan.tuned = {"f1": 0.9, "mmlu": 0.40}
    _, run = run_to_end(stack)
    assert run.status == "REJECTED_BY_GATE"
    (message,) = stack.messages()
    page, summary = _report(stack, run, message)
    assert summary["verdict"]["headline"] == "Rejected by the gate"
    reason = "MMLU drop +10.00 pts, 95% CI [+8.12, +11.86], credibly over budget 1.00"
    assert reason in summary["verdict"]["reasons"]
    assert reason in page.text
    mmlu = next(row for row in page.table_with("metric") if row[0] == "MMLU accuracy")
    assert mmlu[3].startswith("-10.0 pts")


def test_rejected_data_gets_a_report_with_its_rejection_reasons_and_line_numbers(stack: Any) -> None:
    rows = [{"text": "", "intent": ""} for _ in range(30)]
    etag = _put(stack, "incoming/broken.jsonl", rows)
    (result,) = _invoke_prepare(stack, _event("incoming/broken.jsonl", etag))["results"]
    assert result["status"] == "REJECTED"
    run = stack.repo().get(result["run_id"])
    (message,) = stack.messages()
    page, summary = _report(stack, run, message)
    assert summary["verdict"]["headline"] == "Data rejected"
    assert summary["data"]["counts"]["rejected"] == 30
    rules = page.table_with("rule")
    assert rules[1][1] == "30"
    first = page.table_with("line")
    assert first[1][0] == "1"  # line numbers, never the records' text
    assert not summary["states"]  # nothing ran
