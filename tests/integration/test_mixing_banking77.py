"""Mixing real prepared data: Banking77 from ../shared with two local general sources at 75/25.

The `shared_data` fixture skips these tests where ../shared is absent (a user's clone).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from mixtune.dataprep import PrepareOptions, prepare_dataset
from mixtune.mixing import Catalog, MixManifest, mix_datasets
from mixtune.records import ConversationRecord

pytestmark = pytest.mark.shared_data

TOPICS = [
    "rivers",
    "volcanoes",
    "bread",
    "bicycles",
    "tides",
    "libraries",
    "bees",
    "trains",
    "clouds",
    "maps",
]


@pytest.fixture
def setup(shared_data: Path, tmp_path: Path) -> tuple[Path, Path, Catalog]:
    report = prepare_dataset(
        str(shared_data / "banking77" / "train.csv"), str(tmp_path / "banking77"), PrepareOptions()
    )
    assert report.accepted
    rng = random.Random(5)
    with open(tmp_path / "rehearsal.jsonl", "w") as handle:
        for i in range(1500):
            topic = rng.choice(TOPICS)
            record = ConversationRecord.from_turns(
                [
                    ("user", f"Tell me something about {topic} (#{i})."),
                    ("assistant", f"Here is a fact about {topic}. " * rng.randint(1, 12)),
                ]
            )
            handle.write(record.to_json_line() + "\n")
    with open(tmp_path / "qa.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer"])
        for i in range(2000):
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            writer.writerow(
                [f"What is {a} plus {b}? (item {i})", f"{a} plus {b} is {a + b}." + " Check." * (i % 5)]
            )
    catalog = Catalog.parse(
        {
            "sources": [
                {
                    "name": "rehearsal",
                    "category": "rehearsal",
                    "uri": str(tmp_path / "rehearsal.jsonl"),
                    "format": "prepared",
                    "licence": "generated",
                },
                {
                    "name": "arithmetic",
                    "category": "qa",
                    "uri": str(tmp_path / "qa.csv"),
                    "licence": "generated",
                },
            ]
        }
    )
    return tmp_path / "banking77", shared_data, catalog


SPEC = {"domain_percent": 75, "categories": {"rehearsal": 50, "qa": 50}, "seed": 13}


def check_examples(manifest: MixManifest) -> None:
    total = manifest.output.records
    for part in manifest.parts:
        assert abs(part.records - part.target_percent / 100 * total) < 1, part
    assert round(manifest.part("domain").record_percent, 2) == pytest.approx(75.00, abs=100 / total)


def test_banking77_75_25_in_examples(setup: tuple[Path, Path, Catalog], tmp_path: Path) -> None:
    banking, shared, catalog = setup
    manifest = mix_datasets(
        str(banking / "prepared.jsonl"),
        catalog,
        SPEC,
        str(tmp_path / "mix"),
        decontaminate_against=[str(banking / "eval.jsonl"), str(shared / "mmlu" / "dev")],
    )
    check_examples(manifest)
    domain = manifest.source("domain")
    # Banking77 repeats some queries: a train copy of an eval query is dropped.
    assert domain.selected_records == domain.available_records - domain.contaminated_records
    assert manifest.output.records == (tmp_path / "mix" / "mixed.jsonl").read_text().count("\n")
    print("\n".join(manifest.plan_lines()))


def test_banking77_75_25_in_tokens(setup: tuple[Path, Path, Catalog], tmp_path: Path) -> None:
    banking, _, catalog = setup
    manifest = mix_datasets(
        str(banking / "prepared.jsonl"), catalog, {**SPEC, "unit": "tokens"}, str(tmp_path / "mix")
    )
    largest = max(s.max_record_tokens for s in manifest.sources)
    for source in manifest.sources:
        assert abs(source.selected_tokens - source.target_units) <= source.max_record_tokens / 2
    # The realised token share of each part is within one record's tokens of its target.
    for part in manifest.parts:
        assert abs(part.tokens - part.target_percent / 100 * manifest.output.tokens) <= largest, part
    print("\n".join(manifest.plan_lines()))
