"""The demo's result: the final table, and a report (Markdown + HTML) with two plots."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class ScoreRow(BaseModel):
    name: str
    base: float | None
    tuned: float | None
    higher_is_better: bool = True
    scale: float = 1.0  # 100 for points

    @property
    def delta(self) -> float | None:
        if self.base is None or self.tuned is None:
            return None
        return self.tuned - self.base


class StateTiming(BaseModel):
    name: str
    seconds: float
    status: str = "done"


class DemoSummary(BaseModel):
    title: str
    run_id: str
    status: str
    base_model: str
    mix: str
    wall_time_s: float
    scores: list[ScoreRow] = Field(default_factory=list)
    gate: dict[str, Any] | None = None
    states: list[StateTiming] = Field(default_factory=list)
    loss: list[tuple[int, float]] = Field(default_factory=list)
    prepare_counts: dict[str, int] = Field(default_factory=dict)
    where: dict[str, str] = Field(default_factory=dict)
    failure: str | None = None


def fmt_number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _delta(row: ScoreRow) -> str:
    if row.delta is None:
        return "n/a"
    good = (row.delta >= 0) == row.higher_is_better
    return f"{row.delta:+.3f} ({'better' if good else 'worse'})" if row.delta != 0 else "+0.000"


def gate_line(gate: dict[str, Any] | None) -> str:
    if not gate:
        return "no gate decision"
    verdict = "PROMOTE" if gate.get("promote") else "REJECT"
    reasons = gate.get("reasons") or []
    return f"{verdict}: " + "; ".join(str(r) for r in reasons) if reasons else verdict


def plot_loss(points: list[tuple[int, float]], path: Path) -> Path | None:
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("LoRA fine-tuning loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_scores(rows: list[ScoreRow], path: Path) -> Path | None:
    rows = [r for r in rows if r.base is not None and r.tuned is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(2.6 * len(rows) + 1, 3.5), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        bars = ax.bar(["base", "tuned"], [row.base or 0.0, row.tuned or 0.0], color=["#9aa5b1", "#2f80ed"])
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ax.set_title(row.name, fontsize=9)
        top = max(row.base or 0.0, row.tuned or 0.0)
        ax.set_ylim(0, top * 1.2 if top > 0 else 1.0)  # scores and losses are >= 0
    fig.suptitle("base vs tuned")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(summary: DemoSummary, loss_png: str | None, scores_png: str | None) -> str:
    lines = [
        f"# {summary.title}",
        "",
        f"- run: `{summary.run_id}`, status **{summary.status}**",
        f"- base model: `{summary.base_model}`; mix: {summary.mix}",
        f"- wall time: {summary.wall_time_s:.0f} s",
        f"- gate: {gate_line(summary.gate)}",
    ]
    if summary.failure:
        lines.append(f"- failure: {summary.failure}")
    lines += ["", "## Scores", "", "| metric | base | tuned | delta |", "| --- | ---: | ---: | --- |"]
    for row in summary.scores:
        lines.append(f"| {row.name} | {fmt_number(row.base)} | {fmt_number(row.tuned)} | {_delta(row)} |")
    if scores_png:
        lines += ["", f"![base vs tuned]({scores_png})"]
    if loss_png:
        lines += ["", "## Training loss", "", f"![training loss]({loss_png})"]
    if summary.prepare_counts:
        lines += ["", "## Data preparation", ""]
        lines += [f"- {key}: {value}" for key, value in summary.prepare_counts.items()]
    if summary.states:
        lines += ["", "## Pipeline states", "", "| state | seconds | status |", "| --- | ---: | --- |"]
        lines += [f"| {s.name} | {s.seconds:.1f} | {s.status} |" for s in summary.states]
    if summary.where:
        lines += ["", "## Where things are", ""]
        lines += [f"- {key}: `{value}`" for key, value in summary.where.items()]
    return "\n".join(lines) + "\n"


def write_report(summary: DemoSummary, out_dir: Path) -> Path:
    """Write ``report.md``, ``report.html``, ``loss.png`` and ``scores.png``; returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    loss_png = plot_loss(summary.loss, out_dir / "loss.png")
    scores_png = plot_scores(summary.scores, out_dir / "scores.png")
    text = markdown(summary, loss_png.name if loss_png else None, scores_png.name if scores_png else None)
    md_path = out_dir / "report.md"
    md_path.write_text(text, encoding="utf-8")
    (out_dir / "summary.json").write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    body = [f"<h1>{html.escape(summary.title)}</h1><pre>{html.escape(text)}</pre>"]
    for png in (scores_png, loss_png):
        if png:
            body.append(f'<p><img src="{png.name}" alt="{png.stem}"></p>')
    (out_dir / "report.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>mixtune demo</title>" + "".join(body), encoding="utf-8"
    )
    return md_path
