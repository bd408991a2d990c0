"""Where a run's data steps run: in Lambda, or as a job on the run's training backend.

Small and medium inputs are prepared and mixed in Lambda. A step goes to a job (the same
image's ``mixtune prepare`` / ``mixtune mix``, launched and polled like training) when
- its input is larger than the service's threshold (``Settings.prepare_lambda_max_bytes``,
  ``mix_lambda_max_bytes``, chosen from measurements so that the Lambda path finishes well
  inside its limits: docs/dataprep.md);
- Lambda cannot read it: Parquet needs pyarrow, which the Lambda package leaves out (it
  alone would take 132 of the 250 MB a function may unpack), and ``hf://`` catalog sources
  need ``datasets``;
- the Lambda path finds on the way that it needs more temporary disk than its ``/tmp``
  holds (``SpillBudgetExceeded``): the step stops cleanly and a job takes it over.

Each decision is a :class:`~mixtune.runs.model.Placement` (where, why, how many bytes), kept
in the run's lineage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixtune.runs.model import Placement, Run
from mixtune.settings import Settings

MIB = 1 << 20
# Of a function's /tmp, what its spill files may take (the rest: the runtime, other files).
TEMP_BUDGET_SHARE = 0.9
# A gzipped input's HeadObject size is compressed; text expands about this much.
GZIP_EXPANSION = 5


def temp_budget_bytes(settings: Settings) -> int | None:
    """The temporary disk a step may use where it runs now: most of the function's ``/tmp``
    inside Lambda (the CDK app and the local cloud set ``ephemeral_storage_mb`` per function),
    None outside it (the CLI, a job: the disk is the machine's)."""
    if not settings.ephemeral_storage_mb:
        return None
    return int(settings.ephemeral_storage_mb * MIB * TEMP_BUDGET_SHARE)


def human_bytes(count: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def prepare_placement(source_uri: str, size: int, format_name: str | None, settings: Settings) -> Placement:
    """Where to prepare a dataset of ``size`` bytes (its object's size)."""
    from mixtune.dataprep.errors import DatasetError
    from mixtune.dataprep.loaders import detect_format

    try:
        fmt, gzipped = detect_format(source_uri, format_name)
    except DatasetError:
        fmt, gzipped = "", False  # preparation itself rejects it, with its message
    estimate = size * GZIP_EXPANSION if gzipped else size
    limit = settings.prepare_lambda_max_bytes
    if fmt == "parquet":
        return Placement(
            runs_on="job",
            reason="Parquet input: reading it needs pyarrow, which the Lambda package leaves out",
            input_bytes=size,
        )
    if estimate > limit:
        what = (
            f"{human_bytes(size)} gzipped (about {human_bytes(estimate)} of text)"
            if gzipped
            else human_bytes(size)
        )
        return Placement(
            runs_on="job",
            reason=f"input of {what} is over the Lambda threshold of {human_bytes(limit)}",
            input_bytes=size,
        )
    return Placement(
        runs_on="lambda",
        reason=f"input of {human_bytes(size)} is within the Lambda threshold of {human_bytes(limit)}",
        input_bytes=size,
    )


def mix_placement(input_sizes: Mapping[str, int | None], settings: Settings) -> Placement:
    """Where to mix, from the size of each input the mixer reads (the domain file and the
    catalog's sources; None for a source Lambda cannot read: ``hf://``)."""
    unreadable = sorted(name for name, size in input_sizes.items() if size is None)
    total = sum(size or 0 for size in input_sizes.values())
    limit = settings.mix_lambda_max_bytes
    if unreadable:
        return Placement(
            runs_on="job",
            reason=f"source(s) {', '.join(unreadable)} need the datasets package, which the Lambda package leaves out",
            input_bytes=total,
        )
    if total > limit:
        return Placement(
            runs_on="job",
            reason=f"inputs of {human_bytes(total)} are over the Lambda threshold of {human_bytes(limit)}",
            input_bytes=total,
        )
    return Placement(
        runs_on="lambda",
        reason=f"inputs of {human_bytes(total)} are within the Lambda threshold of {human_bytes(limit)}",
        input_bytes=total,
    )


def spilled_over(exc: Exception, input_bytes: int | None) -> Placement:
    """The Lambda path stopped because /tmp was too small (SpillBudgetExceeded): a job goes on."""
    return Placement(
        runs_on="job", reason=f"the Lambda path ran out of temporary disk: {exc}", input_bytes=input_bytes
    )


def with_placement(run: Run, step: str, placement: Placement) -> dict[str, Any]:
    """The run's placements with ``step``'s set: the ``lineage.placement`` of an update."""
    every = {name: value.model_dump(mode="json") for name, value in run.lineage.placement.items()}
    return {**every, step: placement.model_dump(mode="json")}
