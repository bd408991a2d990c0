"""Exact allocation: how many records (or tokens) each part of the mix gets.

Largest-remainder rounding (Hamilton's method) turns real quotas into integers that add up
exactly, each within one unit of its quota. Arithmetic is done in fractions so the result
does not depend on float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def largest_remainder(total: int, weights: Sequence[float | int | Fraction]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights``, summing exactly to ``total``.

    Every count is within one of its quota ``total * w / sum(w)``: each gets the floor of its
    quota, and the units left over go to the largest fractional parts (ties: earlier first).
    """
    if total < 0:
        raise ValueError(f"cannot split a negative total ({total})")
    exact = [Fraction(w) for w in weights]
    if any(w < 0 for w in exact):
        raise ValueError("weights must not be negative")
    weight_sum = sum(exact, Fraction(0))
    if not exact:
        if total:
            raise ValueError("cannot split a positive total over no parts")
        return []
    if weight_sum == 0:
        if total:
            raise ValueError("cannot split a positive total over parts that all weigh zero")
        return [0] * len(exact)
    quotas = [total * w / weight_sum for w in exact]
    counts = [q.numerator // q.denominator for q in quotas]
    left = total - sum(counts)
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[:left]:
        counts[i] += 1
    return counts


def round_half_up(value: Fraction) -> int:
    """Nearest integer, halves rounded up (deterministic, unlike banker's rounding)."""
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def domain_total(domain_units: int, domain_percent: float) -> int:
    """The mixed-set size that keeps every domain unit once at ``domain_percent``.

    ``round(D * 100 / p)``: then the domain's share ``D / T`` is within half a unit of ``p``
    (``|p/100 * T - D| <= p/200``).
    """
    if domain_percent >= 100:
        return domain_units
    return round_half_up(Fraction(domain_units) * 100 / Fraction(domain_percent))


def split_examples(
    domain_available: int,
    domain_percent: float,
    category_percents: dict[str, float],
    total: int | None,
) -> tuple[int, dict[str, int]]:
    """Record counts for the domain and each general category.

    Without ``total`` the domain keeps all its records once and the total follows from the
    domain share; the general remainder is split by largest remainder over the category
    percents. With ``total`` every part (domain included) is one largest-remainder split.
    Either way each count is within one record of ``share * realised total``.
    """
    names = list(category_percents)
    general_share = Fraction(100) - Fraction(domain_percent)
    if total is None:
        mixed = domain_total(domain_available, domain_percent)
        general = mixed - domain_available
        counts = largest_remainder(general, [category_percents[n] for n in names]) if names else []
        if not names and general:
            raise ValueError("a general share needs at least one category")
        return domain_available, dict(zip(names, counts, strict=True))
    weights = [Fraction(domain_percent)] + [
        general_share * Fraction(category_percents[n]) / 100 for n in names
    ]
    counts = largest_remainder(total, weights)
    return counts[0], dict(zip(names, counts[1:], strict=True))


def split_tokens(
    domain_tokens: int,
    domain_percent: float,
    category_percents: dict[str, float],
    total: int | None,
) -> tuple[Fraction, Fraction, dict[str, Fraction]]:
    """Token targets: (mixed total, domain, per category), exact fractions.

    Records are whole, so token targets are met by choosing records whose running token
    sum stops nearest the target (see :mod:`mixtune.mixing.sampling`).
    """
    mixed = Fraction(total) if total is not None else Fraction(domain_tokens) * 100 / Fraction(domain_percent)
    domain = Fraction(domain_tokens) if total is None else mixed * Fraction(domain_percent) / 100
    general = mixed * (100 - Fraction(domain_percent)) / 100
    categories = {name: general * Fraction(percent) / 100 for name, percent in category_percents.items()}
    return mixed, domain, categories


def split_by_size(amount: int, sizes: Sequence[int]) -> list[int]:
    """Share a category's records between its sources in proportion to their sizes."""
    return largest_remainder(amount, sizes)


def split_fraction_by_size(amount: Fraction, sizes: Sequence[int]) -> list[Fraction]:
    """Share a category's token target between its sources in proportion to their sizes."""
    size_sum = sum(sizes)
    if size_sum == 0:
        return [Fraction(0)] * len(sizes)
    return [amount * size / size_sum for size in sizes]
