"""A sweep's config (``RunConfig.sweep``): its arms, how many train at once, how many may fail.

Written by a person as a list of ``domain_percent`` values (``[100, 75, 50]``), a list of
partial mix specs (``[{"domain_percent": 60, "categories": {"math": 100}}]``), or the whole
object (``{"arms": [...], "max_concurrency": 2, "tolerated_failure_percent": 50}``). It is
normalised on validation: each arm gets an id (``a1``...) and a label, and ``smoke_arm`` names
the arm with the most general data (the one the smoke run trains: the heaviest mix of them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ARMS = 8
DEFAULT_MAX_CONCURRENCY = 2
DEFAULT_TOLERATED_FAILURE_PERCENT = 50.0
# Mirrors mixtune.steps.mix.DEFAULT_DOMAIN_PERCENT (a run with no domain_percent) without
# importing the step module into the run model.
_DEFAULT_DOMAIN_PERCENT = 70.0
_ARM_KEYS = {"arm", "label", "mix"}


class SweepArm(BaseModel):
    """One mix of a sweep: ``mix`` holds MixSpec fields laid over the run's own ``mix``."""

    model_config = ConfigDict(extra="forbid")

    arm: str = Field(pattern=r"^a[1-8]$", description="the arm's id, a1..a8")
    label: str = Field(max_length=80)
    mix: dict[str, Any] = Field(default_factory=dict, description="mixing MixSpec fields for this arm")


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arms: list[SweepArm] = Field(min_length=2, max_length=MAX_ARMS)
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY, ge=1, le=MAX_ARMS, description="arms that train at once"
    )
    tolerated_failure_percent: float = Field(
        default=DEFAULT_TOLERATED_FAILURE_PERCENT,
        ge=0,
        le=100,
        description="share of the arms that may fail with the sweep still choosing among the rest",
    )
    smoke_arm: str | None = Field(
        default=None, description="the arm the smoke run trains (default: most general data)"
    )

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            value = {"arms": list(value)}
        if not isinstance(value, dict) or not isinstance(value.get("arms"), list | tuple):
            return value
        arms = [_arm(index, arm) for index, arm in enumerate(value["arms"])]
        return {**value, "arms": arms}

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        ids = [arm.arm for arm in self.arms]
        if len(set(ids)) != len(ids):
            raise ValueError(f"arm ids repeat: {', '.join(ids)}")
        mixes = [repr(sorted(arm.mix.items())) for arm in self.arms]
        if len(set(mixes)) != len(mixes):
            raise ValueError("two arms have the same mix: each arm must differ")
        if self.smoke_arm is None:
            self.smoke_arm = max(self.arms, key=lambda arm: general_percent(arm.mix)).arm
        elif self.smoke_arm not in ids:
            raise ValueError(f"smoke_arm {self.smoke_arm!r} is not an arm ({', '.join(ids)})")
        return self

    def arm(self, arm_id: str) -> SweepArm:
        for arm in self.arms:
            if arm.arm == arm_id:
                return arm
        raise KeyError(f"no arm {arm_id!r} in this sweep ({', '.join(a.arm for a in self.arms)})")


def _arm(index: int, arm: Any) -> Any:
    arm_id = f"a{index + 1}"
    if isinstance(arm, bool):
        return arm  # left for pydantic to refuse
    if isinstance(arm, int | float):
        arm = {"mix": {"domain_percent": arm}}
    elif isinstance(arm, dict) and not (set(arm) <= _ARM_KEYS and "mix" in arm):
        arm = {"mix": arm}  # a partial mix spec
    if not isinstance(arm, dict):
        return arm
    mix = arm.get("mix")
    label = label_of(mix) if isinstance(mix, dict) else arm_id
    return {"arm": arm_id, "label": label, **arm} if "arm" not in arm else {"label": label, **arm}


def label_of(mix: dict[str, Any]) -> str:
    share = mix.get("domain_percent")
    head = f"{share:g}% domain" if isinstance(share, int | float) else "run's domain share"
    others = sorted(key for key in mix if key != "domain_percent")
    return head + (f" ({', '.join(others)} set)" if others else "")


def general_percent(mix: dict[str, Any], run_mix: dict[str, Any] | None = None) -> float:
    """The share of general data an arm's mix asks for (what the smoke run and the choice's
    tie-break read): 100 - its domain_percent (the run's, else the service default)."""
    share = mix.get("domain_percent", (run_mix or {}).get("domain_percent", _DEFAULT_DOMAIN_PERCENT))
    return 100.0 - float(share) if isinstance(share, int | float) and not isinstance(share, bool) else 0.0


def arm_run_key(run_id: str, arm_id: str) -> str:
    """The id an arm's jobs and files go under: ``<run id>-<arm>`` (folders ``runs/<key>/...``, job
    names ``<key>-<step>``; at most 46 characters, so ``<key>-evaluate-tuned`` stays a valid
    63-character job name)."""
    return f"{run_id}-{arm_id}"


def arm_mix_fields(run_mix: dict[str, Any], arm: SweepArm) -> dict[str, Any]:
    """The arm's mix: its fields over the run's (``categories`` replaced whole, not merged). An
    all-domain arm that names no categories drops the run's: 100 means domain data only."""
    fields = {**run_mix, **arm.mix}
    if fields.get("domain_percent") == 100 and "categories" not in arm.mix:
        fields.pop("categories", None)
    return fields


def poll_loops(arms: int) -> int:
    """Poll loops of a sweep's execution: smoke, baseline evaluation, and per arm train + evaluate."""
    return 2 + 2 * arms
