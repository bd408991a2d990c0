"""The report's sweep section: the arms table, the trade-off plot and the cost, for a run whose
config has ``sweep`` (registered into :data:`mixtune.report.document.SECTIONS` after the gate)."""

from __future__ import annotations

from mixtune.report import plots
from mixtune.report.document import (
    Block,
    Bullets,
    Cell,
    Column,
    Figure,
    Paragraph,
    Section,
    Table,
    register_section,
)
from mixtune.report.inputs import ReportInputs
from mixtune.report.summary import RunSummary
from mixtune.sweeps.summary import ARM_COLUMNS, arm_table, cost_line, sweep_of

_NUMERIC = {"domain F1", "MMLU", "general loss", "domain Δ pts", "MMLU Δ pts", "job s", "est. $"}


def sweep_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    sweep = sweep_of(inputs.run.metrics)
    if sweep is None:
        return None
    rows = [
        [
            Cell(
                text,
                "good" if text == "chosen" or text == "PROMOTE" else ("bad" if text == "FAILED" else None),
            )
            for text in row
        ]
        for row in arm_table(sweep)
    ]
    blocks: list[Block] = [Table([Column(name or "choice", name in _NUMERIC) for name in ARM_COLUMNS], rows)]
    blocks.append(Bullets([str(reason) for reason in sweep.get("reasons", [])]))
    if (figure := tradeoff_figure(inputs.run.metrics)) is not None:
        blocks.append(figure)
    notes = []
    if line := cost_line(sweep):
        notes.append(line[0].upper() + line[1:] + ".")
    shared = sweep.get("shared_job_seconds") or {}
    if shared:
        notes.append(
            "Shared by every arm: "
            + ", ".join(f"{name.replace('_', ' ')} {seconds:,.0f} s" for name, seconds in shared.items())
            + " (one smoke run and one baseline evaluation for the whole sweep)."
        )
    if notes:
        blocks.append(Paragraph(" ".join(notes)))
    title = f"Sweep: {len(sweep['arms'])} mixes"
    return Section("sweep", title, blocks)


def tradeoff_figure(metrics: dict | None) -> Figure | None:
    """The trade-off plot of a finished sweep (None when no arm was scored)."""
    sweep = sweep_of(metrics)
    if sweep is None:
        return None
    uses_mmlu = sweep.get("general_score") == "mmlu_accuracy"
    general_key = "mmlu_accuracy" if uses_mmlu else "general_loss"
    points = [
        plots.TradeoffPoint(
            label=str(row.get("label") or row["arm"]),
            general=float(row[general_key]),
            domain=float(row["domain_f1"]),
            on_frontier=bool(row.get("on_frontier")),
            chosen=bool(row.get("chosen")),
            passes=row.get("verdict") == "PROMOTE",
            undecided=row.get("verdict") == "INCONCLUSIVE",
        )
        for row in sweep["arms"]
        if row.get("status") == "SUCCEEDED"
        and row.get(general_key) is not None
        and row.get("domain_f1") is not None
    ]
    if not points:
        return None
    base = (metrics or {}).get("baseline") or {}
    baseline = (
        (float(base[general_key]), float(base["domain_f1"]))
        if base.get(general_key) is not None and base.get("domain_f1") is not None
        else None
    )
    return Figure(
        plots.tradeoff_chart(
            points,
            title="domain vs general, per arm",
            x_label="MMLU accuracy" if uses_mmlu else "general loss (nats, lower is better)",
            y_label="domain F1",
            baseline=baseline,
            lower_x_is_better=not uses_mmlu,
        ),
        "Each arm's domain score against its general score; the dashed line is the Pareto"
        " frontier, the ringed arm the one promoted, hollow red arms the gate refused, hollow amber"
        " arms its eval sets could not decide on, the grey square the base model.",
        "; ".join(f"{p.label}: domain {p.domain:.3f}, general {p.general:.3f}" for p in points),
    )


register_section("sweep", sweep_section, after="gate")
