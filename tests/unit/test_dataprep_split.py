"""The train/eval split keeps every copy of a normalised prompt on one side (no leakage)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from mixtune.dataprep import PrepareOptions, prepare_dataset
from mixtune.dataprep.prompts import normalise_prompt
from mixtune.dataprep.split import Splitter


def _words(text: str) -> str:
    """The test's own normalisation (ASCII): lower case, runs of non-alphanumerics -> one space."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _prompts(path: Path) -> set[str]:
    return {
        _words(orjson.loads(line)["messages"][0]["content"][0]["text"])
        for line in path.read_bytes().splitlines()
    }


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_same_prompt_with_other_answers_or_spelling_never_sits_in_both_splits(tmp_path: Path) -> None:
    rows = []
    for i in range(300):
        question = f"How do I reset the PIN of card {i}?"
        rows += [
            {"question": question, "answer": "Open the app."},
            {"question": question, "answer": "Call us."},  # another answer
            {
                "question": f"  how do i reset the pin of CARD {i}",
                "answer": "Visit a branch.",
            },  # near duplicate
        ]
    out = tmp_path / "out"
    report = prepare_dataset(
        str(_write(tmp_path / "qa.jsonl", rows)), str(out), PrepareOptions(eval_share=0.3)
    )
    assert report.counts.kept == 900
    train, held_out = _prompts(out / "prepared.jsonl"), _prompts(out / "eval.jsonl")
    assert train and held_out
    assert not train & held_out
    assert report.counts.eval % 3 == 0  # whole prompts move: three records each


def test_a_text_under_two_labels_stays_on_one_side_of_the_stratified_split(tmp_path: Path) -> None:
    rows = []
    for i in range(200):
        rows.append({"text": f"My card {i} was stolen!", "label": "card_stolen"})
        rows.append({"text": f"my card {i} was STOLEN", "label": "card_lost"})
    rows += [{"text": f"where is parcel {i}", "label": "delivery"} for i in range(100)]
    out = tmp_path / "out"
    report = prepare_dataset(str(_write(tmp_path / "cls.jsonl", rows)), str(out))
    train, held_out = _prompts(out / "prepared.jsonl"), _prompts(out / "eval.jsonl")
    assert not train & held_out
    # new prompts are still a systematic sample of their label (10%, exact to one record);
    # the card_lost copies follow the card_stolen prompts they repeat
    labels = [
        orjson.loads(line)["messages"][1]["content"][0]["text"]
        for line in (out / "eval.jsonl").read_bytes().splitlines()
    ]
    assert (labels.count("card_stolen"), labels.count("card_lost"), labels.count("delivery")) == (20, 20, 10)
    assert report.counts.eval == 50


def test_split_keeps_prompts_on_one_side_past_its_memory_budget() -> None:
    rng = random.Random(7)
    prompts = [(rng.getrandbits(64), rng.choice("abc")) for _ in range(400)]
    splitter = Splitter(eval_share=0.25, seed=3, memory_prompts=50)
    sides: dict[int, bool] = {}
    for _ in range(3):
        rng.shuffle(prompts)
        for digest, label in prompts:
            side = splitter.is_eval(digest, label)
            assert sides.setdefault(digest, side) == side
    assert 60 <= sum(sides.values()) <= 140


def test_unlabelled_split_decides_by_the_prompt_digest_alone() -> None:
    splitter = Splitter(eval_share=0.25)
    assert [splitter.is_eval(d) for d in (0, (1 << 62) - 1, 1 << 62, (1 << 64) - 1)] == [
        True,
        True,
        False,
        False,
    ]
    assert len(splitter._sides) == 0  # nothing remembered


def test_normalised_prompts_ignore_case_spacing_punctuation_and_unicode_forms() -> None:
    assert (
        normalise_prompt("What is my balance?")
        == normalise_prompt("  what is my  BALANCE ")
        == b"what is my balance"
    )
    assert (
        normalise_prompt("Straße Ünïcode!")
        == normalise_prompt("STRASSE ünïcode")
        == "strasse ünïcode".encode()
    )
    assert normalise_prompt("\uff21\uff22\uff23\u3000\uff11\uff12") == b"abc 12"  # full-width forms (NFKC)
    assert normalise_prompt("?!") == b""


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_the_ascii_fast_path_matches_the_definition(text: str) -> None:
    assert normalise_prompt(text) == _words(text).encode()


@given(st.text(max_size=40))
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalise_prompt(text)
    assert normalise_prompt(once.decode()) == once
