"""Write a run's report to the work bucket, record where it is, and link to it.

:func:`publish_run_report` is called when a run's outcome is announced
(:func:`mixtune.notifications.announce`), so every outcome gets a report: promoted, refused
by the gate, failed, data rejected.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from mixtune import layout, storage
from mixtune.report.document import build_document
from mixtune.report.inputs import ReportInputs, gather_inputs
from mixtune.report.links import HTML_TYPE, ReportLink, link_to
from mixtune.report.render import to_html, to_markdown
from mixtune.report.summary import RunSummary, summarize
from mixtune.runs.model import Run

CONTENT_TYPES = {
    layout.REPORT_HTML: HTML_TYPE,
    layout.REPORT_MARKDOWN: "text/markdown; charset=utf-8",
    layout.REPORT_SUMMARY: "application/json",
}


class RenderedReport(BaseModel):
    summary: RunSummary
    files: dict[str, str]  # file name -> text


def render_report(inputs: ReportInputs, now: datetime | None = None) -> RenderedReport:
    """The three files of a report, from what was gathered (pure)."""
    summary = summarize(inputs, now)
    document = build_document(summary, inputs)
    return RenderedReport(
        summary=summary,
        files={
            layout.REPORT_HTML: to_html(document),
            layout.REPORT_MARKDOWN: to_markdown(document),
            layout.REPORT_SUMMARY: summary.model_dump_json(indent=2) + "\n",
        },
    )


def save(rendered: RenderedReport, folder: str) -> str:
    """Write the files into ``folder`` (s3:// or local); returns the page's URI."""
    for name, text in rendered.files.items():
        uri = storage.join(folder, name)
        if storage.is_s3(uri):
            bucket, key = storage.split_s3(uri)
            # A content type, so the link opens as a page (storage.write_bytes sets none).
            storage.s3_client().put_object(
                Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=CONTENT_TYPES[name]
            )
        else:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            Path(uri).write_text(text, encoding="utf-8")
    return storage.join(folder, layout.REPORT_HTML)


def write_run_report(run: Run) -> str:
    """Gather, render and write the run's report beside its outputs; returns the page's S3 URI."""
    from mixtune.runs.execution import execution_history
    from mixtune.settings import get_settings

    inputs = gather_inputs(run, history=execution_history)
    return save(render_report(inputs), layout.report_folder(get_settings().work_bucket, run.run_id))


def publish_run_report(run: Run) -> tuple[Run, ReportLink | None]:
    """Write the run's report, record its URI in the run's lineage and presign a link to it.

    A report that cannot be written must not keep the outcome from being announced: the
    error is logged (and counted) and the run is announced without a link.
    """
    from mixtune.observability import logger, metrics
    from mixtune.runs.repository import RunsRepository

    try:
        uri = write_run_report(run)
        run = RunsRepository.from_settings().update(run.run_id, lineage={"run_report_uri": uri})
        logger.info("run report written", extra={"run_id": run.run_id, "uri": uri})
    except Exception:
        logger.exception("run report not written", extra={"run_id": run.run_id})
        metrics.add_metric(name="ReportsFailed", unit="Count", value=1)
        return run, None
    return run, link_to(uri)
