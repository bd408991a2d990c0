"""The run report's pages: real HTML tables and inline SVG charts, Markdown tables, summary.json."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from mixtune.report.document import SECTIONS, Paragraph, Section, register_section
from mixtune.report.publish import render_report
from mixtune.report.summary import RunSummary
from mixtune.runs import Failure, RunStatus
from tests.support import report as sample
from tests.support.html import parse_html

NOW = sample.T0 + timedelta(seconds=700)
SVG_NS = "{http://www.w3.org/2000/svg}"


def _files(status: RunStatus = RunStatus.SUCCEEDED, **run_update: object) -> dict[str, str]:
    return render_report(sample.inputs(status, **run_update), now=NOW).files


def test_the_html_page_has_real_tables_and_inline_svg_charts_and_no_markdown_left() -> None:
    html = _files()["report.html"]
    page = parse_html(html)

    assert not page.unclosed and not page.mismatched
    assert page.tags["table"] >= 8 and page.tags["svg"] == 4  # scores, loss, mix shares, timeline
    assert page.table_with("metric")[0] == ["metric", "base", "tuned", "change", "n"]
    assert page.table_with("metric")[1] == ["domain macro-F1", "0.100", "0.743", "+64.3 pts", "45"]
    for marker in ("| --- |", "|---", "![", "](", "**", "<pre"):
        assert marker not in html
    assert "Promoted" in page.text and "domain gain +64.30 pts >= required 1.00" in page.text


def test_the_html_page_stands_alone() -> None:
    html = _files()["report.html"]
    page = parse_html(html)

    assert page.tags["style"] == 1  # the styles are inline
    for external in ("<link", "<script", "<img", "src=", "http://", "https://"):
        assert external not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_every_chart_is_well_formed_svg_with_a_title() -> None:
    html = _files()["report.html"]
    charts = [html[i : html.index("</svg>", i) + 6] for i in range(len(html)) if html.startswith("<svg", i)]

    assert len(charts) == 4
    for chart in charts:
        root = ET.fromstring(chart)
        assert root.tag == f"{SVG_NS}svg" and root.find(f"{SVG_NS}title") is not None
        assert root.findall(f"{SVG_NS}rect") or root.findall(f"{SVG_NS}polyline")


def test_the_loss_curve_plots_every_step_of_the_training_metrics() -> None:
    html = _files()["report.html"]
    start = html.index("<svg", html.index('id="training"'))
    root = ET.fromstring(html[start : html.index("</svg>", start) + 6])

    training, smoke = root.findall(f"{SVG_NS}polyline")
    assert len(training.get("points", "").split()) == 32
    assert len(smoke.get("points", "").split()) == 2


def test_text_from_the_run_is_escaped_in_the_html_page() -> None:
    failure = Failure(error="JobFailedError", cause='<img src=x onerror="alert(1)"> & <script>x</script>')
    html = _files(RunStatus.FAILED)["report.html"]
    assert "<img" not in html
    html = render_report(
        sample.inputs(RunStatus.FAILED).model_copy(
            update={"run": sample.inputs(RunStatus.FAILED).run.model_copy(update={"failure": failure})}
        ),
        now=NOW,
    ).files["report.html"]
    page = parse_html(html)

    assert page.tags["img"] == 0 and page.tags["script"] == 0
    assert "&lt;img src=x" in html and '<img src=x onerror="alert(1)"> & <script>x</script>' in page.text


def test_the_markdown_page_has_tables_and_says_where_the_charts_are() -> None:
    markdown = _files()["report.md"]
    lines = markdown.splitlines()

    assert lines[0] == "# mixtune run report: support"
    assert "| metric | base | tuned | change | n |" in lines
    separator = lines[lines.index("| metric | base | tuned | change | n |") + 1]
    assert separator == "| --- | ---: | ---: | ---: | ---: |"
    assert "| domain macro-F1 | 0.100 | 0.743 | +64.3 pts | 45 |" in lines
    assert "| `<\\|im_start\\|>` | 6 |" in lines  # pipes inside a cell are escaped
    assert sum(line.startswith("*Figure:") for line in lines) == 4
    assert "<svg" not in markdown and "<table" not in markdown
    assert "\n\n\n" not in markdown


def test_summary_json_holds_the_facts_of_both_pages() -> None:
    files = _files()
    summary = RunSummary.model_validate_json(files["summary.json"])

    assert summary.status == "SUCCEEDED" and summary.verdict.headline == "Promoted"
    assert [s.name for s in summary.states][:3] == ["Mix", "SmokeTrain", "Train"]
    assert summary.states[2].job_seconds == pytest.approx(262.5)
    assert summary.mix is not None and [p.name for p in summary.mix.parts] == ["domain", "self_rehearsal"]
    assert summary.data is not None and summary.data.top_rules[0].rule == "empty_text"


@pytest.mark.parametrize(
    ("status", "headline", "sections"),
    [
        (RunStatus.SUCCEEDED, "Promoted", ["Scores: base vs tuned", "The gate", "Training", "The mix"]),
        (RunStatus.REJECTED_BY_GATE, "Rejected by the gate", ["Scores: base vs tuned", "The gate"]),
        (RunStatus.FAILED, "Failed in Train", ["What failed", "Data accounting", "Pipeline states"]),
        (RunStatus.REJECTED, "Data rejected", ["Data accounting"]),
    ],
)
def test_every_outcome_has_a_verdict_and_the_sections_it_can_show(
    status: RunStatus, headline: str, sections: list[str]
) -> None:
    files = _files(status)
    page = parse_html(files["report.html"])

    assert RunSummary.model_validate_json(files["summary.json"]).verdict.headline == headline
    assert headline in page.text
    for title in sections:
        assert f"## {title}" in files["report.md"] and title in page.text


def test_a_rejected_dataset_shows_its_reasons_and_the_rejected_line_numbers() -> None:
    page = parse_html(_files(RunStatus.REJECTED)["report.html"])

    assert "9.4% of records rejected > max_reject_share 5.0%" in page.text
    assert page.table_with("line")[1:] == [
        ["17", "empty_text", "messages[1] has empty text"],
        ["42", "reserved_string", "messages[0] holds <|endoftext|>"],
    ]
    assert "Scores: base vs tuned" not in page.text and page.tags["svg"] == 0


def test_a_registered_section_appears_in_both_pages_where_it_was_put() -> None:
    def arms(summary: RunSummary, inputs: object) -> Section:
        return Section("arms", "Sweep arms", [Paragraph("three arms, 75/25 chosen")])

    saved = list(SECTIONS)
    try:
        register_section("arms", arms, after="scores")
        files = _files()
    finally:
        SECTIONS[:] = saved

    markdown = files["report.md"]
    assert markdown.index("## Scores") < markdown.index("## Sweep arms") < markdown.index("## The gate")
    assert "three arms, 75/25 chosen" in parse_html(files["report.html"]).text


def test_a_markdown_parser_reads_every_table_of_the_markdown_page() -> None:
    from markdown_it import MarkdownIt

    files = _files()
    rendered = MarkdownIt("commonmark").enable("table").render(files["report.md"])
    page = parse_html(rendered)

    assert page.tags["table"] == parse_html(files["report.html"]).tags["table"]
    assert ["<|im_start|>", "6"] in page.table_with("repair")  # the escaped pipes stay in their cell
    assert "| ---" not in rendered
