"""The mix spec: how much domain data, how much of each general category, in which unit.

Shaped like Nova's data-mixing settings: ``domain_percent`` (Nova's
``customer_data_percent``) is the domain share of the mixed set; the general ``categories``
are percentages summing to 100 that split the remaining share between catalog categories.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import orjson
import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mixtune import storage
from mixtune.mixing.allocation import split_examples

Unit = Literal["examples", "tokens"]
OnSmallSource = Literal["oversample", "fail"]

# Percentages are floats: compare sums with a tolerance that forgives decimal input (33.33...).
PERCENT_TOLERANCE = 1e-6


class SpecError(ValueError):
    """An invalid mix spec; the message is one line that says what to fix."""


class MixSpec(BaseModel):
    """What to mix. Validation errors name the field and the rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    domain_percent: float = Field(
        validation_alias=AliasChoices("domain_percent", "customer_data_percent"),
        description="Share of the mixed set that is domain data: 0 < p <= 100.",
    )
    categories: dict[str, float] = Field(
        default_factory=dict,
        description="General category -> percent of the general share; sum 100 (all zero at 100% domain).",
    )
    unit: Unit = Field(default="examples", description="Shares count examples (records) or tokens.")
    seed: int = Field(default=0, description="Seeds sampling and shuffling; same seed, same bytes.")
    on_small_source: OnSmallSource = Field(
        default="oversample",
        description="A source smaller than its allocation: repeat records (recorded as a warning) or fail.",
    )
    max_oversample: float = Field(
        default=4.0,
        ge=1.0,
        description="Most times a source's records may repeat to fill its share; beyond it the mix fails "
        "and says how many records are needed.",
    )
    total: int | None = Field(
        default=None,
        gt=0,
        description="Size of the mixed set in the unit (records or tokens); default: every domain record once.",
    )
    decontamination_ngram: int = Field(
        default=13, ge=1, description="Word n-gram length of the decontamination overlap check."
    )

    @field_validator("domain_percent")
    @classmethod
    def _domain_range(cls, value: float) -> float:
        if not math.isfinite(value) or not 0 < value <= 100:
            raise ValueError(f"domain_percent must be > 0 and <= 100, got {value:g}")
        return value

    @field_validator("categories")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for name, percent in value.items():
            if not name.strip():
                raise ValueError("a category name is empty")
            if not math.isfinite(percent) or percent < 0:
                raise ValueError(f"category {name!r} has a negative or invalid share ({percent:g})")
        return value

    @model_validator(mode="after")
    def _shares_add_up(self) -> MixSpec:
        total = sum(self.categories.values())
        if self.domain_percent >= 100:
            if total > 0:
                raise ValueError(
                    f"at domain_percent 100 every general category share must be 0 (they sum to {total:g})"
                )
        elif total == 0:
            raise ValueError(
                f"domain_percent is {self.domain_percent:g} but every general category share is 0: "
                "give categories summing to 100, or set domain_percent to 100"
            )
        elif abs(total - 100) > PERCENT_TOLERANCE:
            raise ValueError(f"general category shares must sum to 100, they sum to {total:g}")
        return self

    @property
    def general_percent(self) -> float:
        return 100.0 - self.domain_percent

    def general_records_needed(self, domain_records: int) -> dict[str, int]:
        """Records each general category needs (each used once) for a domain file of
        ``domain_records`` records, in examples mode: what self-rehearsal must generate."""
        if self.unit != "examples":
            raise SpecError("general_records_needed counts records: the spec's unit is tokens")
        return split_examples(domain_records, self.domain_percent, self.active_categories(), self.total)[1]

    def active_categories(self) -> dict[str, float]:
        """Categories with a positive share, in a stable (sorted) order."""
        return {name: self.categories[name] for name in sorted(self.categories) if self.categories[name] > 0}

    def check_categories(self, known: Iterable[str]) -> None:
        """Raise SpecError when a category with a positive share is not in the catalog."""
        known_set = set(known)
        unknown = sorted(name for name in self.active_categories() if name not in known_set)
        if unknown:
            listed = ", ".join(sorted(known_set)) or "none"
            raise SpecError(
                f"unknown general categor{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(map(repr, unknown))}; the catalog knows: {listed}"
            )

    @classmethod
    def parse(cls, data: Any) -> MixSpec:
        """Validate a mapping, raising SpecError with one readable line."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(f"invalid mix spec: {describe_validation_error(exc)}") from None

    @classmethod
    def load(cls, uri: str) -> MixSpec:
        """Read a spec from a YAML or JSON file (local or s3://)."""
        return cls.parse(load_mapping(uri, what="mix spec"))


def describe_validation_error(exc: ValidationError) -> str:
    """One line from a pydantic error: ``field: message; field: message``."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def load_mapping(uri: str, what: str) -> Any:
    """Parse a local or S3 YAML/JSON file (JSON is YAML, but orjson gives better errors)."""
    try:
        raw = storage.read_bytes(uri)
    except FileNotFoundError:
        raise SpecError(f"{what} {uri} does not exist") from None
    except OSError as exc:
        raise SpecError(f"cannot read {what} {uri}: {exc.strerror or exc}") from None
    except Exception as exc:  # botocore errors: no S3 object, access denied
        raise SpecError(f"cannot read {what} {uri}: {exc}") from None
    try:
        if uri.lower().endswith(".json"):
            return orjson.loads(raw)
        return yaml.safe_load(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(
            f"{what} {uri} is not valid {'JSON' if uri.lower().endswith('.json') else 'YAML'}: {first}"
        ) from None
