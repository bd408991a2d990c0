"""Data preparation: load any dataset (streaming), convert it to Converse records,
sanitize template collisions, validate every Nova SFT rule, split, and report.

Public API (others import these names)::

    from mixtune.dataprep import (
        PrepareOptions, PrepareReport, DatasetError, RecordError, SpillBudgetExceeded,
        prepare_dataset, iter_records, Sanitizer, sanitize_record, Validator,
    )
    from mixtune.dataprep.tokens import estimate_tokens
"""

from mixtune.dataprep.convert import Converter, Shape, detect_shape
from mixtune.dataprep.errors import DatasetError, RecordError, SpillBudgetExceeded
from mixtune.dataprep.loaders import RowSource, iter_rows
from mixtune.dataprep.outputs import record_line
from mixtune.dataprep.pipeline import Progress, iter_records, prepare_dataset
from mixtune.dataprep.report import Counts, ErrorEntry, PrepareOptions, PrepareReport
from mixtune.dataprep.sanitize import ReservedString, Sanitizer, default_table, sanitize_record, sanitize_text
from mixtune.dataprep.tokens import estimate_tokens
from mixtune.dataprep.validate import Validator

__all__ = [
    "Converter",
    "Counts",
    "DatasetError",
    "ErrorEntry",
    "PrepareOptions",
    "PrepareReport",
    "Progress",
    "RecordError",
    "ReservedString",
    "RowSource",
    "Sanitizer",
    "Shape",
    "SpillBudgetExceeded",
    "Validator",
    "default_table",
    "detect_shape",
    "estimate_tokens",
    "iter_records",
    "iter_rows",
    "prepare_dataset",
    "record_line",
    "sanitize_record",
    "sanitize_text",
]
