"""The bank of general prompts for self-rehearsal data.

The base model answers these prompts (the training image's ``generate-rehearsal`` entry
point) and its answers become a general catalog source, for users with no general corpus.
The prompts were written for mixtune; ``prompt_bank.jsonl`` holds one per line.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict

Category = Literal["explain", "summarise", "reason", "arithmetic", "code", "writing", "everyday"]
CATEGORIES: tuple[str, ...] = ("explain", "summarise", "reason", "arithmetic", "code", "writing", "everyday")


class BankPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    category: Category
    prompt: str


@lru_cache(maxsize=1)
def _load() -> tuple[BankPrompt, ...]:
    raw = resources.files("mixtune.mixing").joinpath("prompt_bank.jsonl").read_bytes()
    return tuple(BankPrompt.model_validate(orjson.loads(line)) for line in raw.splitlines() if line.strip())


def load_prompt_bank(categories: tuple[str, ...] | None = None) -> list[BankPrompt]:
    """Every prompt in the bank (optionally only some categories), in file order."""
    prompts = _load()
    if categories is not None:
        unknown = set(categories) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown prompt categories {sorted(unknown)}; known: {', '.join(CATEGORIES)}")
        prompts = tuple(p for p in prompts if p.category in categories)
    return list(prompts)
