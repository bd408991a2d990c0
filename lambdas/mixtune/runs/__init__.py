"""Runs: the run model, its status machine and the runs-table repository."""

from mixtune.runs.model import (
    TERMINAL,
    TRANSITIONS,
    Baseline,
    Failure,
    Lineage,
    Promoted,
    Run,
    RunConfig,
    RunStatus,
    can_transition,
    dataset_name,
    new_run_id,
    run_id_for_object,
)
from mixtune.runs.repository import (
    GSI_BY_DATASET,
    GSI_BY_STATUS,
    PARTITION_KEY,
    RunsRepository,
    idempotency_table_definition,
    table_definition,
)

__all__ = [
    "GSI_BY_DATASET",
    "GSI_BY_STATUS",
    "PARTITION_KEY",
    "TERMINAL",
    "TRANSITIONS",
    "Baseline",
    "Failure",
    "Lineage",
    "Promoted",
    "Run",
    "RunConfig",
    "RunStatus",
    "RunsRepository",
    "can_transition",
    "dataset_name",
    "idempotency_table_definition",
    "new_run_id",
    "run_id_for_object",
    "table_definition",
]
