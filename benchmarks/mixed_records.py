"""Synthetic training mixes for the training benchmarks: short domain records and long general ones.

Domain records are the support-intent set (a message, a one-label answer, about 95 tokens with
the label-list system prompt); general records stand for self-rehearsal answers: a prompt from
the prompt bank and a 70-110 word answer (about 100-150 tokens, like the base model's answers).
"""

from __future__ import annotations

import random

from mixtune.mixing.prompt_bank import load_prompt_bank
from mixtune.records import ConversationRecord
from mixtune.sample_data import INTENTS, support_intent_records

SYSTEM = f"Classify the customer message. Answer with one label only: {', '.join(INTENTS)}."
_TEXT = (
    "the model answers with care and explains each step so that a reader can follow the idea from "
    "its start to its end while keeping facts plain and examples short because light water heat "
    "energy cells plants history language numbers rivers mountains music reasons evidence"
)
_WORDS = _TEXT.split(" ")


def general_records(n: int, seed: int = 0) -> list[ConversationRecord]:
    rng = random.Random(seed)
    prompts = load_prompt_bank()
    records = []
    for index in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(70, 110))]
        answer = " ".join(words).capitalize() + "."
        records.append(
            ConversationRecord.from_turns(
                [("user", prompts[index % len(prompts)].prompt), ("assistant", answer)]
            )
        )
    return records


def mixed_records(
    n: int, domain_share: float = 0.75, seed: int = 0, domain_system: str = SYSTEM
) -> list[ConversationRecord]:
    """``n`` records, ``domain_share`` of them domain, shuffled together (as the mixer does)."""
    n_domain = round(n * domain_share)
    records = support_intent_records(n_domain, seed=seed, system=domain_system)
    records += general_records(n - n_domain, seed)
    random.Random(seed).shuffle(records)
    return records
