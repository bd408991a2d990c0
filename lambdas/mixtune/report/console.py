"""The scores table on a terminal or in a log: what the demo and `mixtune runs show` print."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixtune.report.document import score_cells
from mixtune.report.summary import ScoreRow

# Intervals make the scores table wider than the 80 columns rich assumes off a terminal (a log, a pipe).
TABLE_WIDTH = 110
COLUMNS = (("metric", "left"), ("base", "right"), ("tuned", "right"), ("change", "right"), ("n", "right"))


def output_console() -> Any:
    """A rich console for stdout, 110 columns wide when stdout is not a terminal (rich assumes 80)."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=TABLE_WIDTH)


def print_scores(console: Any, rows: Sequence[ScoreRow]) -> None:
    """Base vs tuned with 95% intervals, one row a metric, and the note that reads the brackets."""
    from rich.table import Table

    table = Table()
    for column, justify in COLUMNS:
        table.add_column(column, justify=justify)
    for row in rows:
        table.add_row(*score_cells(row))
    console.print(table)
    console.print("[dim]brackets: 95% intervals (the change's is paired, base vs tuned)[/dim]")
