"""When a baseline and a tuned evaluation may be compared, and the key a cached baseline is kept under.

The gate compares the tuned model with the base model on the same items, scored the same way, by
the same software on the same kind of device. Part of that is known before the baseline job runs,
part only after it:

* **before** (BaselineLookup, :func:`baseline_key`): the base model, the scoring setup
  (``EvalConfig.scoring_setup()``: task, limits, ``max_new_tokens``, the MMLU source, subjects,
  limits and shots, batch and length), the content hashes of the eval data (not where it is:
  two runs on the same eval split share a baseline, two runs on different splits never do), and
  what decides the runtime: the backend, the instance type and the training image (for the
  local backend, whose jobs run in the service's own environment, the library versions
  themselves). A baseline is cached and reused under this key only.
* **after** (Record, :func:`differences`): what the two jobs recorded in ``eval.json``: the
  config hash, the data hashes, the item ids actually scored (an ``auto`` MMLU source is resolved
  on the job's machine), dtype, device and library versions. Any mismatch makes the results not
  comparable and the gate refuses them; a cached baseline found stale this way is dropped from
  the cache, so the next run scores the base model again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from typing import Any

import orjson
from pydantic import BaseModel

from mixtune.evaluation.result import EVAL_SCHEMA_VERSION, EvalResult

# What an evaluation job records of its runtime (eval.json "runtime"); every key both sides
# recorded must match.
LIBRARIES = ("torch", "transformers", "peft", "mixtune")
RUNTIME_KEYS = ("dtype", "device", *LIBRARIES)


def library_versions() -> dict[str, str]:
    """The scoring libraries' versions in this environment, read from package metadata (nothing
    is imported: a Lambda may call it)."""
    out = {}
    for package in LIBRARIES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


class BaselineKey(BaseModel):
    """Everything known before the baseline job runs that decides its scores."""

    base_model: str
    scoring: dict[str, Any]  # EvalConfig.scoring_setup() of the filled-in config
    data_sha256: dict[str, str]  # "domain", "general": content hashes of the eval data
    runtime: dict[str, str]  # backend, instance_type, image: what decides device and libraries
    schema_version: str = EVAL_SCHEMA_VERSION

    def digest(self) -> str:
        return hashlib.sha256(
            orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:16]


def differences(baseline: EvalResult, tuned: EvalResult) -> list[str]:
    """Why the two results cannot be compared (empty when they can): another scoring setup, base
    model or eval data, a baseline scored with an adapter, other items, another runtime."""
    problems = []
    if baseline.config_hash != tuned.config_hash:
        problems.append(f"eval configs differ ({baseline.config_hash} vs {tuned.config_hash})")
    if baseline.base_model != tuned.base_model:
        problems.append(f"base models differ ({baseline.base_model} vs {tuned.base_model})")
    if baseline.adapter is not None:
        problems.append(
            f"the baseline was scored with an adapter ({baseline.adapter}): not a base-model baseline"
        )
    for name in sorted(set(baseline.data_sha256) | set(tuned.data_sha256)):
        ours, theirs = baseline.data_sha256.get(name), tuned.data_sha256.get(name)
        if ours != theirs:
            problems.append(f"{name} eval data differ (sha256 {_short(ours)} vs {_short(theirs)})")
    problems += _item_differences(baseline, tuned)
    changed = [
        f"{key} {baseline.runtime[key]} vs {tuned.runtime[key]}"
        for key in RUNTIME_KEYS
        if key in baseline.runtime and key in tuned.runtime and baseline.runtime[key] != tuned.runtime[key]
    ]
    if changed:
        problems.append("scored on another runtime (" + "; ".join(changed) + ")")
    return problems


def _item_differences(baseline: EvalResult, tuned: EvalResult) -> list[str]:
    problems = []
    pairs = (
        ("domain", baseline.domain and baseline.domain.items, tuned.domain and tuned.domain.items),
        ("MMLU", baseline.mmlu and baseline.mmlu.items, tuned.mmlu and tuned.mmlu.items),
        ("general", baseline.general and baseline.general.items, tuned.general and tuned.general.items),
    )
    for name, ours, theirs in pairs:
        if ours and theirs and ours.ids != theirs.ids:
            shared = len(set(ours.ids) & set(theirs.ids))
            problems.append(
                f"{name} items differ ({len(ours.ids):,} vs {len(theirs.ids):,} scored, {shared:,} in common)"
            )
    return problems


def _short(digest: str | None) -> str:
    return digest[:12] if digest else "none"
