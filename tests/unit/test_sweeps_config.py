"""A sweep's config: the shorthands people write, normalised arms, and the checks at the door."""

from __future__ import annotations

import pytest

from mixtune.errors import RunConfigError
from mixtune.runs.validation import history_events, run_config_for
from mixtune.settings import Settings
from mixtune.sweeps.config import SweepConfig, arm_mix_fields, general_percent


def settings() -> Settings:
    return Settings(platform="aws", default_backend="sagemaker")


def test_a_list_of_domain_shares_becomes_labelled_arms_and_the_smoke_arm_has_most_general_data() -> None:
    sweep = SweepConfig.model_validate([100, 75, 50])
    assert [(a.arm, a.label, a.mix) for a in sweep.arms] == [
        ("a1", "100% domain", {"domain_percent": 100}),
        ("a2", "75% domain", {"domain_percent": 75}),
        ("a3", "50% domain", {"domain_percent": 50}),
    ]
    assert sweep.smoke_arm == "a3"
    assert SweepConfig.model_validate(sweep.model_dump()) == sweep  # the stored form reads back


def test_partial_mix_specs_are_arms_laid_over_the_runs_mix() -> None:
    sweep = SweepConfig.model_validate({"arms": [{"domain_percent": 60, "categories": {"math": 100}}, 90]})
    first = sweep.arm("a1")
    assert first.label == "60% domain (categories set)"
    assert arm_mix_fields({"seed": 3, "domain_percent": 80}, first) == {
        "seed": 3,
        "domain_percent": 60,
        "categories": {"math": 100},
    }
    assert general_percent(sweep.arm("a2").mix) == 10
    # an all-domain arm drops the run's general categories (MixSpec refuses shares at 100 %)
    all_domain = SweepConfig.model_validate([100, 50]).arm("a1")
    assert arm_mix_fields({"domain_percent": 75, "categories": {"rehearsal": 100}}, all_domain) == {
        "domain_percent": 100
    }
    assert run_config_for(
        {"mix": {"domain_percent": 75, "categories": {"rehearsal": 100}}, "sweep": [100, 50]}, settings()
    ).sweep
    assert general_percent({}, {"domain_percent": 80}) == 20


@pytest.mark.parametrize(
    ("sweep", "problem"),
    [
        ([100], "at least 2"),
        ([100, 100], "same mix"),
        ([100, 150], "config.sweep.arms[1].mix.domain_percent"),
        ([100, {"domain_percent": 50, "bogus": 1}], "config.sweep.arms[1].mix.bogus: unknown field"),
        (list(range(10, 100, 10)), "at most 8"),
        ({"arms": [100, 50], "max_concurrency": 0}, "config.sweep.max_concurrency"),
        ({"arms": [100, 50], "tolerated_failure_percent": 120}, "config.sweep.tolerated_failure_percent"),
        ({"arms": [100, 50], "smoke_arm": "a7"}, "smoke_arm 'a7' is not an arm"),
        ({"arms": [100, 50], "retries": 2}, "config.sweep.retries: unknown field"),
    ],
)
def test_a_bad_sweep_is_refused_at_the_door(sweep: object, problem: str) -> None:
    with pytest.raises(RunConfigError) as refused:
        run_config_for({"sweep": sweep}, settings())
    assert problem in str(refused.value)


def test_a_sweep_polls_less_so_its_history_fits_the_quota() -> None:
    single = run_config_for({}, settings())
    sweep = run_config_for({"sweep": [100, 90, 80, 70, 60, 50, 40, 30]}, settings())
    assert sweep.max_polls < single.max_polls
    assert history_events(sweep.max_polls, 8) <= 20_000
    assert sweep.poll_seconds * sweep.max_polls >= sweep.max_runtime_s
    with pytest.raises(RunConfigError, match="history"):
        run_config_for({"sweep": [100, 50], "max_polls": 500}, settings())
