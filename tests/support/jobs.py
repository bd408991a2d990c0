"""The one JobSpec factory of the backend tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixtune.backends import JobSpec

DEFAULT_JOB: dict[str, Any] = {
    "job_name": "run-1-train",
    "entry_point": "train",
    "output_uri": "s3://work/runs/1/train",
}


def job_spec(defaults: Mapping[str, Any] | None = None, /, **overrides: Any) -> JobSpec:
    """A validated JobSpec: :data:`DEFAULT_JOB`, then a test module's ``defaults``, then
    ``overrides``. Modules bind their defaults with ``functools.partial(job_spec, FIELDS)``."""
    return JobSpec.model_validate({**DEFAULT_JOB, **(defaults or {}), **overrides})
