"""Decontamination against evaluation sets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mixtune.mixing import Catalog, mix_datasets
from mixtune.mixing.decontam import Decontaminator, normalise_words
from mixtune.records import ConversationRecord

LONG_QUESTION = "Which of the following best describes the main reason that the inner planets of the solar system are rocky?"


def line(user: str, answer: str = "ok") -> str:
    return ConversationRecord.from_turns([("user", user), ("assistant", answer)]).to_json_line() + "\n"


def test_normalising_ignores_case_and_punctuation() -> None:
    assert normalise_words("Hello, WORLD!  it's 3-D.") == ["hello", "world", "it", "s", "3", "d"]


def test_a_shared_13_gram_is_contaminated_and_12_words_are_not() -> None:
    check = Decontaminator(13)
    check.add_texts([LONG_QUESTION])
    words = LONG_QUESTION.split()
    overlap = "Background: " + " ".join(words[3:16]).upper() + " and more."
    assert check.is_contaminated([overlap], [overlap])
    near = "Background: " + " ".join(words[3:15])
    assert not check.is_contaminated([near], [near])


def test_short_eval_texts_match_exact_user_turns_only() -> None:
    check = Decontaminator(13)
    check.add_texts(["I am still waiting on my card?"])
    assert check.is_contaminated(["i am STILL waiting on my card"], ["i am STILL waiting on my card"])
    # The same words in an assistant answer, or inside a longer question, are not a leak.
    assert not check.is_contaminated(["hello", "I am still waiting on my card?"], ["hello"])
    assert not check.is_contaminated(
        ["Why? I am still waiting on my card"], ["Why? I am still waiting on my card"]
    )


def test_ngrams_shared_by_many_eval_texts_are_boilerplate() -> None:
    template = "Classify the intent of the following customer message into one of the bank categories please"
    check = Decontaminator(13)
    check.add_texts([f"{template}: message number {i}" for i in range(50)])
    fresh = f"{template}: a message never seen"
    assert not check.is_contaminated([fresh], [fresh])
    seen = f"{template}: message number 7"
    assert check.is_contaminated([seen], [seen])


def test_mix_drops_contaminated_records_and_counts_them(
    tmp_path: Path, prepared_catalog: Callable[..., Catalog]
) -> None:
    (tmp_path / "domain.jsonl").write_text(
        "".join(line(f"domain question {i}") for i in range(20)) + line("I am still waiting on my card?")
    )
    (tmp_path / "general.jsonl").write_text(
        "".join(line(f"general question number {i}") for i in range(40)) + line(f"Quiz: {LONG_QUESTION}")
    )
    (tmp_path / "eval.jsonl").write_text(line("i am still waiting on my card"))
    mmlu = tmp_path / "mmlu"
    mmlu.mkdir()
    (mmlu / "astronomy_test.csv").write_text(
        f'question,choice0,choice1,choice2,choice3,answer\n"{LONG_QUESTION}",a,b,c,d,0\n'
    )
    catalog = prepared_catalog(g=("general", tmp_path / "general.jsonl"))
    spec = {"domain_percent": 20, "categories": {"general": 100}}
    manifest = mix_datasets(
        str(tmp_path / "domain.jsonl"),
        catalog,
        spec,
        str(tmp_path / "out"),
        decontaminate_against=[str(tmp_path / "eval.jsonl"), str(mmlu)],
    )
    assert manifest.source("domain").contaminated_records == 1
    assert manifest.source("g").contaminated_records == 1
    assert manifest.decontamination is not None
    assert manifest.decontamination.dropped == {"domain": 1, "g": 1}
    assert [s.texts for s in manifest.decontamination.eval_sets] == [1, 1]
    assert manifest.part("domain").records == 20
    assert manifest.part("general").records == 80  # needs 80 of 40 clean: oversampled, never the dropped one
    mixed = (tmp_path / "out" / "mixed.jsonl").read_text()
    assert "waiting on my card" not in mixed
    assert "inner planets" not in mixed
