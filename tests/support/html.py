"""Parse a report page with the standard library's HTML parser: the elements it holds, its
tables as cell text, its visible text (scripts and styles left out)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"meta", "br", "img", "hr", "input", "link", "col", "source", "wbr"}
# SVG shapes written as <rect/>: self-closing, so they need no end tag either.


@dataclass
class Page:
    tags: Counter[str] = field(default_factory=Counter)
    tables: list[list[list[str]]] = field(default_factory=list)
    text: str = ""
    unclosed: list[str] = field(default_factory=list)  # elements left open at the end
    mismatched: list[str] = field(default_factory=list)  # end tags that closed another element

    def table_with(self, header: str) -> list[list[str]]:
        """The first table whose header row holds ``header``."""
        for table in self.tables:
            if table and header in table[0]:
                return table
        raise AssertionError(
            f"no table with a {header!r} column; headers: {[t[0] for t in self.tables if t]}"
        )


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags[tag] += 1
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self.page.tables.append([])
        elif tag == "tr" and self.page.tables:
            self.page.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags[tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.page.tables:
            self.page.tables[-1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        if tag in VOID:
            return
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.page.mismatched.append(tag)

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] in ("style", "script", "title"):
            return
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def parse_html(text: str) -> Page:
    parser = _Parser()
    parser.feed(text)
    parser.close()
    parser.page.text = " ".join("".join(parser.text).split())
    parser.page.unclosed = list(parser.stack)
    return parser.page
