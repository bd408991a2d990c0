"""`mixtune demo --sweep`: the demo's run as a mix-ratio sweep (arms 100/75/50 by default),
its arms table printed and its trade-off plot written beside the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixtune.demo.runner import EVAL_SHARE, DemoPlan

TRADEOFF_SVG = "tradeoff.svg"


def sweep_plan(plan: DemoPlan, arms: list[float]) -> DemoPlan:
    """The plan as a sweep: each arm trains and is scored, two at a time, so the run takes
    about as long as the arms over two, plus the shared smoke run and baseline."""
    from mixtune.mixing import MixSpec

    # The arm with the most general data must not oversample the self-rehearsal set past the
    # mixer's limit: beside the domain's training records it takes domain x g / (1 - g)
    # general ones, 1 / limit of them distinct, plus the held-out part that scores the loss.
    repeats = MixSpec.model_fields["max_oversample"].default
    domain = plan.records * (1 - EVAL_SHARE)
    general = (100 - min(arms)) / 100
    needed = int(domain * general / max(1 - general, 0.01) / repeats) + 1 + plan.general_holdout
    return plan.model_copy(
        update={
            "name": f"{plan.name}-sweep",
            "sweep": arms,
            "timeout_s": plan.timeout_s * (1 + len(arms)),
            "rehearsal_prompts": max(plan.rehearsal_prompts, needed + needed // 4),
        }
    )


def show_sweep(run: dict[str, Any], folder: Path, console: Any) -> Path | None:
    """Print the arms table; write the trade-off plot to ``folder/tradeoff.svg`` (its path)."""
    from mixtune.commands.runs import print_arms
    from mixtune.report.sweep import tradeoff_figure

    print_arms(run, console)
    figure = tradeoff_figure(run.get("metrics"))
    if figure is None:
        console.print("no arm was scored: no trade-off plot")
        return None
    path = folder / TRADEOFF_SVG
    path.write_text(figure.svg, encoding="utf-8")
    console.print(f"trade-off plot: {path.resolve()}")
    return path
