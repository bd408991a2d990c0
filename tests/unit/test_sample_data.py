from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from mixtune.records import ConversationRecord
from mixtune.sample_data import INTENTS, support_intent_records, support_intents, write_records, write_rows


def test_same_seed_gives_same_rows_and_another_seed_differs() -> None:
    assert support_intents(50, seed=3) == support_intents(50, seed=3)
    assert support_intents(50, seed=3) != support_intents(50, seed=4)


def test_intents_are_balanced() -> None:
    counts = Counter(row["intent"] for row in support_intents(len(INTENTS) * 10))
    assert set(counts) == set(INTENTS)
    assert set(counts.values()) == {10}


def test_collision_share_adds_template_collisions_only_when_asked() -> None:
    markers = ("User:", "Assistant:", "[EOS]", "System:", "<|endoftext|>", "customer:", "<image>")
    clean = support_intents(300, collision_share=0.0)
    dirty = support_intents(300, collision_share=0.5)
    assert not any(m in row["text"] for row in clean for m in markers)
    assert sum(any(m in row["text"] for m in markers) for row in dirty) > 100


def test_write_rows_by_suffix(tmp_path) -> None:
    rows = support_intents(5)
    with open(write_rows(rows, tmp_path / "a.csv"), newline="") as handle:
        assert list(csv.DictReader(handle)) == rows
    lines = write_rows(rows, tmp_path / "a.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == rows
    with pytest.raises(ValueError, match="suffix"):
        write_rows(rows, tmp_path / "a.txt")


def test_support_intent_records_put_the_intent_in_the_assistant_turn(tmp_path) -> None:
    rows = support_intents(6, seed=2)
    records = support_intent_records(6, seed=2, system="Classify.")
    assert [r.turns() for r in records] == [
        [("user", row["text"]), ("assistant", row["intent"])] for row in rows
    ]
    assert {r.system_text for r in records} == {"Classify."}
    lines = write_records(records, tmp_path / "r.jsonl").read_text().splitlines()
    assert [ConversationRecord.from_json_line(line) for line in lines] == records


def test_an_intent_subset_gives_only_those_intents_balanced() -> None:
    chosen = ["card_lost", "exchange_rate", "pin_reset"]
    counts = Counter(row["intent"] for row in support_intents(30, seed=1, intents=chosen))
    assert counts == {intent: 10 for intent in chosen}
    records = support_intent_records(6, seed=1, intents=chosen)
    assert {r.final_answer for r in records} == set(chosen)


def test_all_intents_by_default_as_before_the_subset_option() -> None:
    assert support_intents(40, seed=2) == support_intents(40, seed=2, intents=INTENTS)


@pytest.mark.parametrize("intents", [["card_lost", "no_such_intent"], []])
def test_an_unknown_or_empty_intent_subset_is_refused(intents: list[str]) -> None:
    with pytest.raises(ValueError, match="intents must be some of"):
        support_intents(4, intents=intents)
