"""The document as an HTML page and a Markdown page (Jinja2 templates; HTML autoescaped).

The HTML page stands alone: its styles are inline and its charts are inline ``<svg>``
elements, so it opens from a presigned link, an e-mail attachment or a local file alike.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from mixtune.report.document import Document

TEMPLATES = Path(__file__).parent / "templates"


def markdown_text(value: Any) -> str:
    """Text safe inside a Markdown table cell or list item: one line, pipes escaped."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|")


@lru_cache(maxsize=2)
def _environment(html: bool) -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = markdown_text
    return env


def to_html(document: Document) -> str:
    return str(_environment(True).get_template("report.html.j2").render(doc=document))


def to_markdown(document: Document) -> str:
    text = str(_environment(False).get_template("report.md.j2").render(doc=document))
    # Blocks are separated by one blank line, however the template's conditionals fall.
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() or (lines and lines[-1].strip()):
            lines.append(line.rstrip())
    return "\n".join(lines).strip() + "\n"
