"""``POST /validate``: data preparation as a dry run; nothing is kept."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mixtune.api.models import ValidateRequest
from mixtune.dataprep import PrepareOptions, PrepareReport, prepare_dataset
from mixtune.errors import RunConfigError
from mixtune.runs.validation import prepare_problems


def validate_dataset(request: ValidateRequest) -> PrepareReport:
    """The report preparing the request's data would give; raises DatasetError for data that
    cannot be read at all, RunConfigError for options that break a rule."""
    problems = prepare_problems(request.options, "options")
    if problems:
        raise RunConfigError(problems)
    options = PrepareOptions.model_validate(request.options)
    with tempfile.TemporaryDirectory(prefix="mixtune-validate-") as tmp:
        source = request.dataset_uri
        if source is None:
            path = Path(tmp) / "inline.jsonl"
            path.write_text(
                "".join(json.dumps(row) + "\n" for row in request.records or []), encoding="utf-8"
            )
            source = str(path)
        return prepare_dataset(source, str(Path(tmp) / "out"), options)
