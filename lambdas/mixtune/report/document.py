"""The report as a document: a header, highlights and sections made of a few kinds of block.

Both pages render this one document (:mod:`mixtune.report.render`): HTML with tables and
inline SVG charts, Markdown with tables and a line of text per chart. Sections come from
builders registered in order in :data:`SECTIONS`; a feature with more to show (a sweep's arm
table and trade-off plot) registers its own builder with :func:`register_section` instead
of editing the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mixtune.report import plots
from mixtune.report.inputs import ReportInputs
from mixtune.report.summary import Interval, RunSummary, ScoreRow, Tone

# ---- blocks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    text: str
    tone: Tone | None = None
    code: bool = False  # URIs, hashes, ids: monospace
    nowrap: bool = False  # short values that must stay on one line


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool = False  # right-aligned


@dataclass(frozen=True)
class Table:
    columns: list[Column]
    rows: list[list[Cell]]
    kind: Literal["table"] = "table"


@dataclass(frozen=True)
class Paragraph:
    text: str
    tone: Tone | None = None
    kind: Literal["paragraph"] = "paragraph"


@dataclass(frozen=True)
class Bullets:
    items: list[str]
    tone: Tone | None = None
    kind: Literal["bullets"] = "bullets"


@dataclass(frozen=True)
class Figure:
    svg: str  # an inline <svg> element
    caption: str
    text: str  # what the chart shows, in words (the Markdown page's stand-in, and the alt text)
    kind: Literal["figure"] = "figure"


Block = Table | Paragraph | Bullets | Figure


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: list[Block]


@dataclass(frozen=True)
class Highlight:
    label: str
    value: str
    tone: Tone = "neutral"


@dataclass
class Document:
    title: str
    summary: RunSummary
    facts: list[tuple[str, str]]  # run id, dataset, base model... under the title
    highlights: list[Highlight] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


SectionBuilder = Callable[[RunSummary, ReportInputs], Section | None]

# ---- formatting ----------------------------------------------------------------------------------


def number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 120:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def interval(value: Interval | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return ""
    sign = "+" if signed else ""
    return f" [{value.low:{sign}.{digits}f}, {value.high:{sign}.{digits}f}]"


def change(row: ScoreRow) -> str:
    if row.delta is None:
        return "n/a"
    digits = 1 if row.delta_unit == "pts" else 3
    return f"{row.delta:+.{digits}f} {row.delta_unit}".strip() + interval(row.delta_interval, digits, True)


def count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def score_cells(row: ScoreRow) -> list[str]:
    """One score as shown everywhere (report, demo, ``runs show``): metric, base and tuned with
    their 95 % intervals, the change with its paired interval, items."""
    return [
        row.name,
        number(row.base) + interval(row.base_interval),
        number(row.tuned) + interval(row.tuned_interval),
        change(row),
        count(row.n),
    ]


def records_used(selected: int | None, available: int | None) -> str:
    if selected is not None and available is not None and selected > available:
        return f"{count(selected)} ({count(available)} available, repeated)"
    return f"{count(selected)} of {count(available)}"


def short_hash(value: str | None) -> str:
    return "n/a" if not value else value[:12]


# ---- sections ------------------------------------------------------------------------------------


def failure_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    failure = summary.failure
    if failure is None:
        return None
    blocks: list[Block] = [
        Table(
            [Column("failed step"), Column("error"), Column("cause")],
            [[Cell(failure.step or "unknown", "bad"), Cell(failure.error, code=True), Cell(failure.cause)]],
        )
    ]
    failed_at = next((row.start_s for row in summary.states if row.name == failure.step), None)
    done = [
        row.name
        for row in summary.states
        if row.status == "done" and (failed_at is None or row.start_s < failed_at)
    ]
    if done:
        blocks.append(Paragraph("Steps that completed before it: " + ", ".join(done) + "."))
    return Section("failure", "What failed", blocks)


def scores_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    if not summary.scores:
        return None
    has_intervals = any(r.base_interval or r.tuned_interval or r.delta_interval for r in summary.scores)
    rows = [
        [Cell(text, row.tone if column == 3 else None) for column, text in enumerate(score_cells(row))]
        for row in summary.scores
    ]
    blocks: list[Block] = [
        Table(
            [
                Column("metric"),
                Column("base", True),
                Column("tuned", True),
                Column("change", True),
                Column("n", True),
            ],
            rows,
        )
    ]
    notes = [
        "F1 and accuracy changes are in percentage points; the general loss is in nats (lower is better)."
    ]
    if has_intervals:
        notes.append("Brackets hold 95% intervals; a change whose interval holds zero is shown as no change.")
    if summary.baseline_cached:
        notes.append(
            "The base model's scores were cached from an earlier run on the same eval data, scored the same way."
        )
    blocks.append(Paragraph(" ".join(notes)))
    bars = [
        plots.Bar(
            r.name,
            r.base,
            r.tuned,
            (r.base_interval.low, r.base_interval.high) if r.base_interval else None,
            (r.tuned_interval.low, r.tuned_interval.high) if r.tuned_interval else None,
        )
        for r in summary.scores
    ]
    blocks.append(
        Figure(
            plots.bar_panels(bars, title="base vs tuned"),
            "Base model (grey) against the tuned adapter (blue), each metric on its own scale.",
            "; ".join(f"{r.name} {number(r.base)} -> {number(r.tuned)}" for r in summary.scores),
        )
    )
    return Section("scores", "Scores: base vs tuned", blocks)


def gate_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    gate = summary.gate
    if gate is None:
        return None
    decisions: dict[str | None, tuple[str, Tone]] = {
        "PROMOTE": ("promote", "good"),
        "REJECT": ("refuse", "bad"),
        "INCONCLUSIVE": ("inconclusive: the eval sets are too small to decide", "warn"),
    }
    verdict, tone = decisions.get(gate.verdict) or (
        ("promote", "good") if gate.promote else ("refuse", "bad")
    )
    shown = gate.reasons == summary.verdict.reasons[: len(gate.reasons)]
    blocks: list[Block] = [
        Paragraph(f"The gate's decision: {verdict}" + (", for the reasons above." if shown else "."), tone)
    ]
    if gate.reasons and not shown:
        blocks.append(Bullets(gate.reasons))
    if gate.comparable is False:
        blocks.append(
            Paragraph(
                "The two evaluations are not comparable (see the reasons): the gate refused them.", "bad"
            )
        )
    policy = [(name, value) for name, value in gate.policy.items() if value is not None]
    if policy:
        blocks.append(
            Table(
                [Column("policy"), Column("value", True)],
                [[Cell(name.replace("_", " ")), Cell(str(value))] for name, value in policy],
            )
        )
    return Section("gate", "The gate", blocks)


def training_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    training = summary.training
    if training is None:
        return None
    facts = [
        ("steps", f"{count(training.steps)}" + (f" of {training.max_steps}" if training.max_steps else "")),
        ("loss", f"{number(training.first_loss)} -> {number(training.final_loss)}"),
        ("training records", count(training.records)),
        ("records too long (dropped)", count(training.records_dropped_too_long)),
        ("tokens", count(training.tokens)),
        ("tokens/s", number(training.tokens_per_s, 0) if training.tokens_per_s else "n/a"),
        ("job wall time", seconds(training.wall_time_s)),
        ("device", training.device or "n/a"),
    ]
    blocks: list[Block] = [
        Table(
            [Column("training"), Column("value", True)], [[Cell(k), Cell(v)] for k, v in facts if v != "n/a"]
        )
    ]
    series = [plots.Series("training", [(p.step, p.loss) for p in training.loss], plots.TUNED_COLOUR)]
    if training.smoke_loss:
        series.append(
            plots.Series("smoke run", [(p.step, p.loss) for p in training.smoke_loss], plots.SMOKE_COLOUR)
        )
    if training.loss or training.smoke_loss:
        points = training.loss or training.smoke_loss
        blocks.append(
            Figure(
                plots.line_chart(
                    series, title="training loss", x_label="step", y_label="loss", integer_x=True
                ),
                "Training loss by step"
                + (" (the smoke run's in amber)" if training.smoke_loss and training.loss else ""),
                f"loss {points[0].loss:.3f} at step {points[0].step} -> {points[-1].loss:.3f} at step {points[-1].step}",
            )
        )
    return Section("training", "Training", blocks)


def data_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    data = summary.data
    if data is None:
        return None
    counts = data.counts
    order = ("input", "kept", "sanitized", "rejected", "train", "eval")
    rows = [
        [
            Cell(name),
            Cell(count(counts.get(name)), "bad" if name == "rejected" and counts.get(name) else None),
        ]
        for name in order
        if name in counts
    ]
    if data.reject_share is not None:
        rows.append([Cell("rejected share"), Cell(f"{data.reject_share:.1%}")])
    if data.tokens_total:
        rows.append(
            [
                Cell("tokens (total / longest record)"),
                Cell(f"{count(data.tokens_total)} / {count(data.tokens_max)}"),
            ]
        )
    blocks: list[Block] = [Table([Column("records"), Column("count", True)], rows)]
    described = ", ".join(
        x
        for x in (data.format, data.shape and f"shape {data.shape}", data.labels and f"{data.labels} labels")
        if x
    )
    if described:
        blocks.append(Paragraph(f"Read as {described}."))
    if data.reasons:
        blocks.append(Paragraph("Why the dataset was rejected:", "bad"))
        blocks.append(Bullets(data.reasons, "bad"))
    if data.top_rules:
        blocks.append(Paragraph("Top rejection reasons (records per rule):"))
        blocks.append(
            Table(
                [Column("rule"), Column("records", True)],
                [[Cell(r.rule, code=True), Cell(count(r.count))] for r in data.top_rules],
            )
        )
    if data.first_rejections:
        blocks.append(
            Paragraph(
                "The first rejected records (line numbers in the source file; their text is not shown):"
            )
        )
        blocks.append(
            Table(
                [Column("line", True), Column("rule"), Column("why")],
                [
                    [Cell(str(e.line)), Cell(e.rule, code=True), Cell(e.message)]
                    for e in data.first_rejections
                ],
            )
        )
    if data.repairs:
        blocks.append(Paragraph("Sanitizer repairs (chat-template collisions neutralised):"))
        blocks.append(
            Table(
                [Column("repair"), Column("times", True)],
                [[Cell(k, code=True), Cell(count(v))] for k, v in sorted(data.repairs.items())],
            )
        )
    return Section("data", "Data accounting", blocks)


def mix_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    mix = summary.mix
    if mix is None:
        return None
    unit = mix.unit or "records"
    blocks: list[Block] = [
        Table(
            [
                Column("part"),
                Column("target", True),
                Column(f"realised ({unit})", True),
                Column("records", True),
                Column("tokens", True),
            ],
            [
                [
                    Cell(p.name),
                    Cell(f"{p.target_percent:.1f}%"),
                    Cell("n/a" if p.realised_percent is None else f"{p.realised_percent:.1f}%"),
                    Cell(count(p.records)),
                    Cell(count(p.tokens)),
                ]
                for p in mix.parts
            ],
        ),
        Figure(
            plots.share_bars(
                [(p.name, p.target_percent, p.realised_percent) for p in mix.parts], title="mix shares"
            ),
            f"Target and realised share of each part of the mix (in {unit}).",
            "; ".join(
                f"{p.name} target {p.target_percent:.1f}% realised {number(p.realised_percent, 1)}%"
                for p in mix.parts
            ),
        ),
        Table(
            [
                Column("source"),
                Column("category"),
                Column("records used", True),
                Column("sha256"),
                Column("uri"),
            ],
            [
                [
                    Cell(s.name + (f" ({', '.join(s.notes)})" if s.notes else "")),
                    Cell(s.category),
                    Cell(records_used(s.selected_records, s.available_records)),
                    Cell(short_hash(s.sha256), code=True, nowrap=True),
                    Cell(s.uri, code=True),
                ]
                for s in mix.sources
            ],
        ),
    ]
    output = [f"{count(mix.output_records)} records"]
    if mix.output_tokens is not None:
        output.append(f"{count(mix.output_tokens)} tokens")
    if mix.output_sha256:
        output.append(f"sha256 {mix.output_sha256}")
    if mix.seed is not None:
        output.append(f"seed {mix.seed}")
    if mix.decontaminated is not None:
        output.append(f"{mix.decontaminated} records dropped as overlapping the eval split")
    blocks.append(Paragraph("Mixed file: " + ", ".join(output) + "."))
    if mix.warnings:
        blocks.append(Bullets(mix.warnings, "warn"))
    return Section("mix", "The mix", blocks)


def states_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    if not summary.states:
        return None
    rows = [
        [
            Cell(row.name),
            Cell(row.status, {"done": "good", "failed": "bad"}.get(row.status, "warn")),
            Cell(f"{row.start_s:.1f}"),
            Cell(f"{row.seconds:.1f}"),
            Cell("" if row.job_seconds is None else f"{row.job_seconds:.1f}"),
        ]
        for row in summary.states
    ]
    notes = [
        "Launch, wait and poll states of one job count as one state; job seconds are the time the job "
        "itself measured (model loading included).",
        f"Wall time {seconds(summary.wall_time_s)}"
        + (f", job seconds {summary.job_seconds:.1f}." if summary.job_seconds else "."),
    ]
    if any(row.status == "running" for row in summary.states):
        notes.append(
            "A state still running is counted up to the moment it wrote this report (Notify writes it)."
        )
    return Section(
        "states",
        "Pipeline states",
        [
            Table(
                [
                    Column("state"),
                    Column("status"),
                    Column("start (s)", True),
                    Column("seconds", True),
                    Column("job seconds", True),
                ],
                rows,
            ),
            Paragraph(" ".join(notes)),
            Figure(
                plots.timeline(
                    [(r.name, r.start_s, r.seconds, r.status) for r in summary.states], title="state timeline"
                ),
                "When each state ran (the baseline and tuned evaluations run in parallel).",
                "; ".join(f"{r.name} {r.seconds:.1f} s" for r in summary.states),
            ),
        ],
    )


def lineage_section(summary: RunSummary, inputs: ReportInputs) -> Section | None:
    if not summary.lineage:
        return None
    blocks: list[Block] = [
        Table(
            [Column("what"), Column("where")],
            [[Cell(label), Cell(value, code=True)] for label, value in summary.lineage],
        )
    ]
    if summary.missing:
        blocks.append(
            Paragraph("Not found when this report was written: " + ", ".join(summary.missing) + ".")
        )
    return Section("lineage", "Lineage", blocks)


SECTIONS: list[tuple[str, SectionBuilder]] = [
    ("failure", failure_section),
    ("scores", scores_section),
    ("gate", gate_section),
    ("training", training_section),
    ("data", data_section),
    ("mix", mix_section),
    ("states", states_section),
    ("lineage", lineage_section),
]


def register_section(key: str, builder: SectionBuilder, *, after: str | None = None) -> None:
    """Add a section (at the end, or after the section ``after``); a key registered again is replaced."""
    keys = [k for k, _ in SECTIONS]
    if key in keys:
        SECTIONS[keys.index(key)] = (key, builder)
        return
    position = keys.index(after) + 1 if after is not None else len(SECTIONS)
    SECTIONS.insert(position, (key, builder))


# ---- the document --------------------------------------------------------------------------------


def highlights(summary: RunSummary) -> list[Highlight]:
    cards = []
    for row in summary.scores:
        if row.key in ("domain_f1", "mmlu_accuracy", "general_loss") and row.delta is not None:
            cards.append(Highlight(row.name, change(row), row.tone))
    data = summary.data
    if data is not None and not summary.scores:
        for name in ("input", "kept", "rejected"):
            if name in data.counts:
                tone: Tone = "bad" if name == "rejected" and data.counts[name] else "neutral"
                cards.append(Highlight(f"records {name}", count(data.counts[name]), tone))
    if summary.wall_time_s is not None:
        cards.append(Highlight("wall time", seconds(summary.wall_time_s)))
    return cards


def build_document(summary: RunSummary, inputs: ReportInputs) -> Document:
    facts = [
        ("run", summary.run_id),
        ("dataset", summary.dataset),
        ("status", summary.status),
        ("base model", summary.base_model or "n/a"),
        ("backend", summary.backend or "n/a"),
        ("trigger", summary.trigger or "n/a"),
        ("started", summary.created_at or "n/a"),
        ("report written", summary.generated_at),
    ]
    sections = [section for _, build in SECTIONS if (section := build(summary, inputs)) is not None]
    return Document(
        title=f"mixtune run report: {summary.dataset}",
        summary=summary,
        facts=facts,
        highlights=highlights(summary),
        sections=sections,
    )


# The sweep section registers itself (mixtune.report.sweep); imported last, as it builds on this module.
from mixtune.report import sweep as _sweep  # noqa: E402, F401
