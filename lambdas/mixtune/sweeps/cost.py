"""What a sweep's jobs cost, estimated: job wall seconds x nodes x the instance's hourly price
(:func:`mixtune.instances.hourly_price`, overridden by the ``instance_prices`` setting).

A sweep shares its smoke run and its baseline evaluation between the arms; ``single_runs_usd``
is what the same arms would cost as separate runs (each paying its own smoke run and baseline),
so the saving shows in the figures."""

from __future__ import annotations

from pydantic import BaseModel

from mixtune.instances import hourly_price


def job_usd(seconds: float, nodes: int, instance_type: str, prices: dict[str, float]) -> float | None:
    price = hourly_price(instance_type, prices)
    return None if price is None else round(seconds / 3600.0 * nodes * price, 4)


class SweepCost(BaseModel):
    instance_type: str
    usd_per_hour: float | None
    arms_usd: dict[str, float | None]
    shared_seconds: float  # smoke run + baseline evaluation (0 when the baseline was cached)
    shared_usd: float | None
    total_usd: float | None
    single_runs_usd: float | None  # the same arms as separate runs: each its own smoke and baseline

    @property
    def saved_usd(self) -> float | None:
        if self.total_usd is None or self.single_runs_usd is None:
            return None
        return round(self.single_runs_usd - self.total_usd, 4)


def sweep_cost(
    instance_type: str,
    arms_usd: dict[str, float | None],
    shared_seconds: float,
    prices: dict[str, float],
) -> SweepCost:
    """``arms_usd``: each finished arm's own cost (None: not priced); the shared jobs run on one node."""
    shared = job_usd(shared_seconds, 1, instance_type, prices)
    priced = [usd for usd in arms_usd.values() if usd is not None]
    total = None if shared is None or len(priced) != len(arms_usd) else round(sum(priced) + shared, 4)
    single = None if total is None else round(sum(priced) + shared * len(arms_usd), 4)
    return SweepCost(
        instance_type=instance_type,
        usd_per_hour=hourly_price(instance_type, prices),
        arms_usd=arms_usd,
        shared_seconds=shared_seconds,
        shared_usd=shared,
        total_usd=total,
        single_runs_usd=single,
    )
