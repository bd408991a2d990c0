"""The facts of one run's report (``summary.json``), distilled from :class:`ReportInputs`.

Pure: no I/O. Everything the HTML and Markdown pages show comes from here, so a program
reading ``summary.json`` sees the same numbers a person reads. No dataset text: counts,
rules, line numbers, hashes, URIs and scores only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mixtune.report.inputs import ReportInputs
from mixtune.report.timeline import JOB_PHASES, phases_from_history
from mixtune.runs.model import RunStatus

SCHEMA_VERSION = "mixtune-report-1"
Tone = Literal["good", "bad", "warn", "neutral"]
TOP_RULES = 5
FIRST_REJECTIONS = 10
MESSAGE_MAX = 200  # a rejection's message (rule text, never record text) is cut here


class Interval(BaseModel):
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


class ScoreRow(BaseModel):
    key: str
    name: str
    base: float | None = None
    tuned: float | None = None
    delta: float | None = None
    delta_unit: str = ""
    higher_is_better: bool = True
    n: int | None = None
    base_interval: Interval | None = None
    tuned_interval: Interval | None = None
    delta_interval: Interval | None = None

    @property
    def tone(self) -> Tone:
        """Better, worse, or not told apart from no change (its interval holds zero)."""
        if self.delta is None or self.delta == 0:
            return "neutral"
        if self.delta_interval is not None and self.delta_interval.contains(0.0):
            return "neutral"
        return "good" if (self.delta > 0) == self.higher_is_better else "bad"


class GateSummary(BaseModel):
    promote: bool | None = None
    verdict: str | None = None  # PROMOTE, REJECT, INCONCLUSIVE (a gate before verdicts: None)
    comparable: bool | None = None
    reasons: list[str] = Field(default_factory=list)
    items_needed: dict[str, int] = Field(default_factory=dict)  # INCONCLUSIVE: items that would decide
    figures: dict[str, Any] = Field(default_factory=dict)  # domain_gain, general_drop, ... as recorded
    policy: dict[str, Any] = Field(default_factory=dict)


class LossPoint(BaseModel):
    step: int
    loss: float


class TrainingSummary(BaseModel):
    steps: int | None = None
    max_steps: int | None = None
    first_loss: float | None = None
    final_loss: float | None = None
    tokens: int | None = None
    tokens_per_s: float | None = None
    wall_time_s: float | None = None
    records: int | None = None
    records_dropped_too_long: int | None = None
    device: str | None = None
    loss: list[LossPoint] = Field(default_factory=list)
    smoke_loss: list[LossPoint] = Field(default_factory=list)


class RuleCount(BaseModel):
    rule: str
    count: int


class Rejection(BaseModel):
    line: int
    rule: str
    message: str


class DataSummary(BaseModel):
    accepted: bool | None = None
    format: str | None = None
    shape: str | None = None
    labels: int | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    reject_share: float | None = None
    top_rules: list[RuleCount] = Field(default_factory=list)
    first_rejections: list[Rejection] = Field(default_factory=list)
    repairs: dict[str, int] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    tokens_total: int | None = None
    tokens_max: int | None = None
    input_sha256: str | None = None
    output_sha256: dict[str, str] = Field(default_factory=dict)


class MixPart(BaseModel):
    name: str
    target_percent: float
    realised_percent: float | None = None
    records: int | None = None
    tokens: int | None = None


class MixSource(BaseModel):
    name: str
    category: str
    uri: str
    sha256: str | None = None
    original_sha256: str | None = None
    selected_records: int | None = None
    available_records: int | None = None
    notes: list[str] = Field(default_factory=list)


class MixSummary(BaseModel):
    unit: str | None = None
    seed: int | None = None
    parts: list[MixPart] = Field(default_factory=list)
    sources: list[MixSource] = Field(default_factory=list)
    output_uri: str | None = None
    output_sha256: str | None = None
    output_records: int | None = None
    output_tokens: int | None = None
    warnings: list[str] = Field(default_factory=list)
    decontaminated: int | None = None


class StateRow(BaseModel):
    name: str
    status: str
    start_s: float  # from the first state's start
    seconds: float
    job_seconds: float | None = None
    error: str | None = None


class FailureSummary(BaseModel):
    step: str | None = None
    error: str
    cause: str


class Verdict(BaseModel):
    tone: Tone
    headline: str
    reasons: list[str] = Field(default_factory=list)


class RunSummary(BaseModel):
    schema_version: str = SCHEMA_VERSION
    run_id: str
    dataset: str
    status: str
    stage: str | None = None
    trigger: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    generated_at: str
    base_model: str | None = None
    backend: str | None = None
    verdict: Verdict
    scores: list[ScoreRow] = Field(default_factory=list)
    baseline_cached: bool | None = None
    gate: GateSummary | None = None
    training: TrainingSummary | None = None
    data: DataSummary | None = None
    mix: MixSummary | None = None
    states: list[StateRow] = Field(default_factory=list)
    wall_time_s: float | None = None
    job_seconds: float | None = None
    failure: FailureSummary | None = None
    lineage: list[tuple[str, str]] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


# ---- intervals, wherever the evaluation puts them ------------------------------------------------

_BOUNDS = (("low", "high"), ("lo", "hi"), ("lower", "upper"), ("ci_low", "ci_high"))
_SUFFIXES = ("_ci", "_interval", "_ci95", "_ci_95")
_GROUPS = ("intervals", "ci", "cis", "confidence_intervals")
_POINT = ("value", "estimate", "point", "mean")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def as_interval(value: Any) -> Interval | None:
    """``[low, high]``, or a mapping with low/high (lo/hi, lower/upper, ci_low/ci_high)."""
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = _number(value[0]), _number(value[1])
    elif isinstance(value, dict):
        low = high = None
        for low_key, high_key in _BOUNDS:
            if low_key in value and high_key in value:
                low, high = _number(value[low_key]), _number(value[high_key])
                break
    else:
        return None
    return Interval(low=low, high=high) if low is not None and high is not None else None


def find_value(container: Any, key: str) -> float | None:
    """A number, or the point estimate of a ``{"value": .., "low": .., "high": ..}`` mapping."""
    if not isinstance(container, dict):
        return None
    value = container.get(key)
    if isinstance(value, dict):
        return next((_number(value[p]) for p in _POINT if _number(value.get(p)) is not None), None)
    return _number(value)


def find_interval(container: Any, key: str) -> Interval | None:
    """The interval recorded for ``key``: the value itself, ``<key>_ci``, ``<key>_low``/``_high``,
    or an ``intervals`` (``ci``...) mapping beside it. None when the evaluation gives none."""
    if not isinstance(container, dict):
        return None
    candidates = [container.get(key) if isinstance(container.get(key), dict) else None]
    candidates += [container.get(key + suffix) for suffix in _SUFFIXES]
    candidates.append([container.get(f"{key}_low"), container.get(f"{key}_high")])
    candidates += [(container.get(g) or {}).get(key) for g in _GROUPS if isinstance(container.get(g), dict)]
    return next((found for c in candidates if (found := as_interval(c)) is not None), None)


# ---- the parts -----------------------------------------------------------------------------------


def _path(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


class _Score(BaseModel):
    key: str  # in metrics["baseline"/"tuned"]
    name: str
    eval_path: str  # the same number inside eval.json
    delta_key: str | None  # in metrics["deltas"]
    scale: float
    unit: str
    higher_is_better: bool = True
    n_key: str | None = None
    n_path: str | None = None


_SCORES = (
    _Score(
        key="domain_f1",
        name="domain macro-F1",
        eval_path="domain.classification.macro_f1",
        delta_key="domain_f1_points",
        scale=100,
        unit="pts",
        n_key="domain_n",
        n_path="domain.n",
    ),
    _Score(
        key="domain_accuracy",
        name="domain accuracy",
        eval_path="domain.classification.accuracy",
        delta_key=None,
        scale=100,
        unit="pts",
        n_path="domain.n",
    ),
    _Score(
        key="mmlu_accuracy",
        name="MMLU accuracy",
        eval_path="mmlu.micro_accuracy",
        delta_key="mmlu_points",
        scale=100,
        unit="pts",
        n_key="mmlu_n",
        n_path="mmlu.n",
    ),
    _Score(
        key="general_loss",
        name="general loss (held-out)",
        eval_path="general.loss",
        delta_key="general_loss",
        scale=1,
        unit="nats",
        higher_is_better=False,
        n_path="general.n",
    ),
)


def score_rows(metrics: dict[str, Any] | None, evals: dict[str, dict[str, Any]]) -> list[ScoreRow]:
    """Base vs tuned: the numbers the run recorded (what the gate read), else its eval.json files."""
    metrics = metrics or {}
    sides = {side: metrics.get(side) or {} for side in ("baseline", "tuned")}
    deltas = metrics.get("deltas") or {}
    freeform = (sides["baseline"].get("domain_task") or sides["tuned"].get("domain_task")) == "freeform"
    delta_intervals = metrics.get("delta_intervals") or {}  # compare(): {name: {low, high, ...}}
    rows = []
    for spec in _SCORES:
        name, eval_path = spec.name, spec.eval_path
        if spec.key == "domain_f1" and freeform:
            name, eval_path = "domain token F1", "domain.freeform.token_f1"

        def value(side: str, key: str = spec.key, path: str = eval_path) -> float | None:
            recorded = find_value(sides[side], key)
            return recorded if recorded is not None else _number(_path(evals.get(side), path))

        base, tuned = value("baseline"), value("tuned")
        if base is None and tuned is None:
            continue
        delta = find_value(deltas, spec.delta_key) if spec.delta_key else None
        if delta is None and base is not None and tuned is not None:
            delta = spec.scale * (tuned - base)
        n = next(
            (
                int(v)
                for v in (
                    sides["tuned"].get(spec.n_key or ""),
                    _path(evals.get("tuned"), spec.n_path or ""),
                    _path(evals.get("baseline"), spec.n_path or ""),
                )
                if _number(v) is not None
            ),
            None,
        )
        rows.append(
            ScoreRow(
                key=spec.key,
                name=name,
                base=base,
                tuned=tuned,
                delta=delta,
                delta_unit=spec.unit,
                higher_is_better=spec.higher_is_better,
                n=n,
                base_interval=find_interval(sides["baseline"], spec.key),
                tuned_interval=find_interval(sides["tuned"], spec.key),
                delta_interval=(
                    find_interval(deltas, spec.delta_key) or as_interval(delta_intervals.get(spec.delta_key))
                    if spec.delta_key
                    else None
                ),
            )
        )
    return rows


def gate_summary(gate: dict[str, Any] | None, policy: dict[str, Any]) -> GateSummary | None:
    if not gate:
        return None
    from mixtune.evaluation.gate import GatePolicy

    try:
        resolved = GatePolicy.model_validate(policy).model_dump()
    except ValueError:
        resolved = dict(policy)
    known = {"promote", "verdict", "comparable", "reasons", "items_needed", "checks"}
    needed = gate.get("items_needed") or {}
    return GateSummary(
        promote=gate.get("promote"),
        verdict=gate.get("verdict"),
        comparable=gate.get("comparable"),
        reasons=[str(r) for r in gate.get("reasons") or []],
        items_needed={str(k): int(v) for k, v in needed.items() if _number(v) is not None},
        figures={k: v for k, v in gate.items() if k not in known and v is not None},
        policy=resolved,
    )


def _loss_points(metrics: dict[str, Any] | None, progress: list[dict[str, Any]]) -> list[LossPoint]:
    """The loss curve: the job's final metrics.json, else the progress it wrote as it went."""
    rows = (metrics or {}).get("loss_curve") or progress
    points = {}
    for row in rows:
        step, loss = row.get("step"), _number(row.get("loss"))
        if isinstance(step, int) and loss is not None:
            points[step] = loss
    return [LossPoint(step=step, loss=loss) for step, loss in sorted(points.items())]


def training_summary(inputs: ReportInputs) -> TrainingSummary | None:
    metrics = inputs.train_metrics or {}
    loss = _loss_points(inputs.train_metrics, inputs.train_progress)
    smoke = _loss_points(inputs.smoke_metrics, inputs.smoke_progress)
    if not (metrics or loss or smoke):
        return None
    max_steps = next((row.get("max_steps") for row in reversed(inputs.train_progress)), None)
    return TrainingSummary(
        steps=metrics.get("steps") or (loss[-1].step if loss else None),
        max_steps=max_steps if isinstance(max_steps, int) else inputs.run.config.train.max_steps,
        first_loss=loss[0].loss if loss else None,
        final_loss=_number(metrics.get("final_loss")) or (loss[-1].loss if loss else None),
        tokens=metrics.get("tokens"),
        tokens_per_s=_number(metrics.get("tokens_per_s")),
        wall_time_s=_number(metrics.get("wall_time_s")),
        records=metrics.get("records"),
        records_dropped_too_long=metrics.get("records_dropped_too_long"),
        device=metrics.get("device"),
        loss=loss,
        smoke_loss=smoke,
    )


def data_summary(report: dict[str, Any] | None, output_sha256: dict[str, str]) -> DataSummary | None:
    if not report:
        return None
    rules = sorted((report.get("rule_counts") or {}).items(), key=lambda item: (-item[1], item[0]))
    tokens = report.get("tokens") or {}
    return DataSummary(
        accepted=report.get("accepted"),
        format=report.get("format"),
        shape=report.get("shape"),
        labels=len(report["labels"]) if isinstance(report.get("labels"), list) else None,
        counts={k: int(v) for k, v in (report.get("counts") or {}).items() if isinstance(v, int)},
        reject_share=_number(report.get("reject_share")),
        top_rules=[RuleCount(rule=rule, count=count) for rule, count in rules[:TOP_RULES]],
        first_rejections=[
            Rejection(line=e["line"], rule=e["rule"], message=str(e.get("message", ""))[:MESSAGE_MAX])
            for e in (report.get("errors") or [])[:FIRST_REJECTIONS]
            if isinstance(e, dict) and "line" in e and "rule" in e
        ],
        repairs={k: int(v) for k, v in (report.get("sanitize_counts") or {}).items()},
        reasons=[str(r) for r in report.get("reasons") or []],
        tokens_total=tokens.get("total"),
        tokens_max=tokens.get("max"),
        input_sha256=report.get("input_sha256"),
        output_sha256=dict(report.get("output_sha256") or output_sha256),
    )


def mix_summary(manifest: dict[str, Any] | None) -> MixSummary | None:
    if not manifest:
        return None
    unit = manifest.get("unit")
    parts = [
        MixPart(
            name=p["name"],
            target_percent=float(p.get("target_percent") or 0.0),
            realised_percent=_number(p.get("token_percent") if unit == "tokens" else p.get("record_percent")),
            records=p.get("records"),
            tokens=p.get("tokens"),
        )
        for p in manifest.get("parts") or []
    ]
    sources = []
    for s in manifest.get("sources") or []:
        notes = []
        if s.get("oversampled"):
            notes.append("oversampled")
        if s.get("contaminated_records"):
            notes.append(f"{s['contaminated_records']} contaminated dropped")
        if s.get("rejected_records"):
            notes.append(f"{s['rejected_records']} rejected")
        sources.append(
            MixSource(
                name=s["name"],
                category=s.get("category", ""),
                uri=s.get("uri", ""),
                sha256=s.get("input_sha256"),
                original_sha256=s.get("original_sha256"),
                selected_records=s.get("selected_records"),
                available_records=s.get("available_records"),
                notes=notes,
            )
        )
    output = manifest.get("output") or {}
    dropped = (manifest.get("decontamination") or {}).get("dropped") or {}
    return MixSummary(
        unit=unit,
        seed=manifest.get("seed"),
        parts=parts,
        sources=sources,
        output_uri=output.get("uri"),
        output_sha256=output.get("sha256"),
        output_records=output.get("records"),
        output_tokens=output.get("tokens"),
        warnings=[str(w) for w in manifest.get("warnings") or []],
        decontaminated=sum(int(v) for v in dropped.values()) if manifest.get("decontamination") else None,
    )


def job_seconds(inputs: ReportInputs) -> dict[str, float]:
    """Seconds each job ran, as the job measured it (metrics.json, eval.json), by phase."""
    found = {
        "smoke": _number((inputs.smoke_metrics or {}).get("wall_time_s")),
        "train": _number((inputs.train_metrics or {}).get("wall_time_s")),
        "evaluate_tuned": _number(inputs.evals.get("tuned", {}).get("wall_time_s")),
    }
    if not (inputs.run.metrics or {}).get("baseline_cached"):
        found["evaluate_baseline"] = _number(inputs.evals.get("baseline", {}).get("wall_time_s"))
    return {JOB_PHASES[kind]: seconds for kind, seconds in found.items() if seconds}


def state_rows(inputs: ReportInputs, now: datetime) -> tuple[list[StateRow], float | None]:
    phases = phases_from_history(inputs.history)
    if not phases:
        return [], None
    start = phases[0].started
    jobs = job_seconds(inputs)
    rows = [
        StateRow(
            name=phase.name,
            status=phase.status,
            start_s=(phase.started - start).total_seconds(),
            seconds=phase.seconds(now),
            job_seconds=jobs.get(phase.name),
            error=phase.error,
        )
        for phase in phases
    ]
    ended = max(row.start_s + row.seconds for row in rows)
    return rows, ended


_LINEAGE_LABELS = (
    ("source_uri", "source data"),
    ("input_sha256", "source sha256"),
    ("prepared_uri", "prepared data"),
    ("report_uri", "data report"),
    ("manifest_uri", "mix manifest"),
    ("mixed_uri", "mixed data"),
    ("smoke_uri", "smoke training output"),
    ("train_uri", "training output"),
    ("adapter_uri", "adapter"),
    ("execution_arn", "execution"),
)


def lineage_rows(inputs: ReportInputs) -> list[tuple[str, str]]:
    lineage = inputs.run.lineage
    rows = [
        (label, str(getattr(lineage, field))) for field, label in _LINEAGE_LABELS if getattr(lineage, field)
    ]
    rows += [(f"{side} evaluation", uri) for side, uri in sorted(lineage.eval_uris.items())]
    rows += [(f"{kind} job", job) for kind, job in sorted(lineage.job_ids.items())]
    rows += [(f"sha256 of {name}", digest) for name, digest in sorted(lineage.output_sha256.items())]
    return rows


def failure_summary(inputs: ReportInputs, states: list[StateRow]) -> FailureSummary | None:
    failure = inputs.run.failure
    if failure is None:
        return None
    failed = [row for row in states if row.status == "failed"]
    step = failed[-1].name if failed else inputs.run.stage
    return FailureSummary(step=step, error=failure.error, cause=failure.cause)


def verdict(
    inputs: ReportInputs, gate: GateSummary | None, data: DataSummary | None, failure: FailureSummary | None
) -> Verdict:
    run = inputs.run
    if run.status == RunStatus.SUCCEEDED:
        return Verdict(tone="good", headline="Promoted", reasons=gate.reasons if gate else [])
    if run.status == RunStatus.REJECTED_BY_GATE:
        return Verdict(tone="warn", headline="Rejected by the gate", reasons=gate.reasons if gate else [])
    if run.status == RunStatus.INCONCLUSIVE:
        reasons = list(gate.reasons) if gate else []
        if gate and gate.items_needed:
            from mixtune.notifications import items_needed_text

            reasons.append(
                f"Items that would decide at the same effect: {items_needed_text(gate.items_needed)}; "
                "or widen the gate's thresholds. Nothing was promoted."
            )
        return Verdict(
            tone="warn", headline="Inconclusive: the eval sets are too small to decide", reasons=reasons
        )
    if run.status == RunStatus.FAILED:
        where = f" in {failure.step}" if failure and failure.step else ""
        reasons = [f"{failure.error}: {failure.cause}"] if failure else [run.summary or ""]
        return Verdict(tone="bad", headline=f"Failed{where}", reasons=[r for r in reasons if r])
    if run.status == RunStatus.REJECTED:
        reasons = (data.reasons if data and data.reasons else []) or [
            run.summary or "the data was not accepted"
        ]
        return Verdict(tone="bad", headline="Data rejected", reasons=reasons)
    reasons = (gate.reasons if gate else []) or ([run.summary] if run.summary else [])
    return Verdict(tone="neutral", headline=str(run.status).replace("_", " ").capitalize(), reasons=reasons)


def summarize(inputs: ReportInputs, now: datetime | None = None) -> RunSummary:
    """The report's facts. ``now`` closes the states still open (the Notify writing the report)."""
    now = now or datetime.now(UTC)
    run = inputs.run
    states, wall = state_rows(inputs, now)
    gate = gate_summary(run.gate, run.config.gate)
    data = data_summary(inputs.prepare_report, run.lineage.output_sha256)
    failure = failure_summary(inputs, states)
    jobs = [row.job_seconds for row in states if row.job_seconds]
    return RunSummary(
        run_id=run.run_id,
        dataset=run.dataset,
        status=str(run.status),
        stage=run.stage,
        trigger=run.trigger,
        created_at=run.created_at,
        updated_at=run.updated_at,
        generated_at=now.isoformat(timespec="seconds"),
        base_model=run.config.base_model,
        backend=run.config.backend,
        verdict=verdict(inputs, gate, data, failure),
        scores=score_rows(run.metrics, inputs.evals),
        baseline_cached=(run.metrics or {}).get("baseline_cached"),
        gate=gate,
        training=training_summary(inputs),
        data=data,
        mix=mix_summary(inputs.manifest),
        states=states,
        wall_time_s=wall,
        job_seconds=sum(jobs) if jobs else None,
        failure=failure,
        lineage=lineage_rows(inputs),
        missing=inputs.missing,
    )
