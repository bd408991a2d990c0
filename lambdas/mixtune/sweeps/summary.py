"""A finished sweep in words and rows: what ``mixtune runs show``, the report and the SNS
message print (read from ``run.metrics["sweep"]``, which RecordSweep writes)."""

from __future__ import annotations

from typing import Any

ARM_COLUMNS = (
    "arm",
    "mix",
    "status",
    "domain F1",
    "MMLU",
    "general loss",
    "domain Δ pts",
    "MMLU Δ pts",
    "gate",
    "job s",
    "est. $",
    "",
)


def sweep_of(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    sweep = (metrics or {}).get("sweep")
    return sweep if isinstance(sweep, dict) and sweep.get("arms") else None


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def _ci(value: Any, interval: Any) -> str:
    text = _num(value)
    if isinstance(interval, list | tuple) and len(interval) == 2 and text != "n/a":
        text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return text


def _signed(value: Any) -> str:
    return f"{value:+.1f}" if isinstance(value, int | float) else "n/a"


def mark(row: dict[str, Any]) -> str:
    if row.get("chosen"):
        return "chosen"
    return "frontier" if row.get("on_frontier") else ""


def arm_table(sweep: dict[str, Any], intervals: bool = True) -> list[list[str]]:
    """One row per arm, in :data:`ARM_COLUMNS` order (``intervals``: scores with their 95 %
    intervals; a terminal table leaves them out to fit)."""
    rows = []
    for row in sweep["arms"]:
        deltas = row.get("deltas") or {}
        seconds = sum((row.get("job_seconds") or {}).values())
        rows.append(
            [
                str(row.get("arm", "")),
                str(row.get("label", "")),
                str(row.get("status", "")),
                _ci(row.get("domain_f1"), row.get("domain_f1_ci") if intervals else None),
                _ci(row.get("mmlu_accuracy"), row.get("mmlu_accuracy_ci") if intervals else None),
                _ci(row.get("general_loss"), row.get("general_loss_ci") if intervals else None),
                _signed(deltas.get("domain_f1_points")),
                _signed(deltas.get("mmlu_points")),
                str(row.get("verdict") or (row.get("failure") or {}).get("error") or ""),
                f"{seconds:,.0f}" if seconds else "n/a",
                _num(row.get("cost_usd"), 2),
                mark(row),
            ]
        )
    return rows


def cost_line(sweep: dict[str, Any]) -> str | None:
    cost = sweep.get("cost") or {}
    if cost.get("total_usd") is None:
        if cost.get("instance_type"):
            return f"no price for {cost['instance_type']} (set MIXTUNE_INSTANCE_PRICES to estimate costs)"
        return None
    line = (
        f"estimated ${cost['total_usd']:.2f} on {cost['instance_type']}"
        f" (${cost.get('usd_per_hour') or 0:.3f}/h): arms ${sum(v or 0 for v in cost['arms_usd'].values()):.2f},"
        f" shared smoke run and baseline ${cost.get('shared_usd') or 0:.2f}"
    )
    if cost.get("single_runs_usd") is not None:
        line += (
            f"; as {len(cost['arms_usd'])} separate runs ${cost['single_runs_usd']:.2f}"
            f" (saved ${cost.get('saved_usd') or 0:.2f})"
        )
    return line


def chosen_row(sweep: dict[str, Any]) -> dict[str, Any] | None:
    return next((row for row in sweep["arms"] if row.get("arm") == sweep.get("chosen")), None)


def sweep_message(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The SNS message's ``sweep``: the chosen ratio, each arm's headline figures, the cost."""
    sweep = sweep_of(metrics)
    if sweep is None:
        return None
    chosen = chosen_row(sweep)
    keys = ("arm", "label", "status", "verdict", "domain_f1", "mmlu_accuracy", "general_loss", "cost_usd")
    arms = []
    for row in sweep["arms"]:
        arm = {k: row.get(k) for k in keys if row.get(k) is not None}
        arm.update({k: v for k, v in (row.get("deltas") or {}).items()})
        if row.get("failure"):
            arm["failure"] = row["failure"]
        arms.append(arm)
    cost = sweep.get("cost") or {}
    return {
        "chosen": sweep.get("chosen"),
        "chosen_mix": chosen.get("label") if chosen else None,
        "chosen_mix_spec": chosen.get("mix") if chosen else None,
        "frontier": sweep.get("frontier", []),
        "arms": arms,
        "cost": {k: cost.get(k) for k in ("instance_type", "total_usd", "single_runs_usd", "saved_usd")},
        "cost_text": cost_line(sweep),
    }
