"""prepare_dataset end to end on local files: accounting, rules over the dataset, split, report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixtune.dataprep import (
    DatasetError,
    PrepareOptions,
    PrepareReport,
    RecordError,
    Validator,
    iter_records,
    prepare_dataset,
)
from mixtune.records import ConversationRecord
from tests.support.jsonl import read_jsonl, write_jsonl


def assert_accounts(report: PrepareReport, out: Path) -> None:
    c = report.counts
    assert c.input == c.kept + c.rejected
    assert c.sanitized <= c.kept
    assert c.train + c.eval == c.kept
    assert len(read_jsonl(out / "prepared.jsonl")) == c.train
    assert len(read_jsonl(out / "eval.jsonl")) == c.eval
    assert len(read_jsonl(out / "rejected.jsonl")) == c.rejected
    assert PrepareReport.model_validate_json((out / "report.json").read_text()) == report
    validator = Validator()
    for name in ("prepared.jsonl", "eval.jsonl"):
        for line in (out / name).read_bytes().splitlines():
            record = ConversationRecord.from_json_line(line)
            assert record.to_json_line().encode() == line
            assert validator.check(1, record.system_text, record.turns()) is None


def test_mixed_dataset_every_record_is_accounted_for(tmp_path: Path) -> None:
    rows = [
        {"question": "What is 2+2?", "answer": "4"},
        {"question": "User: hi [EOS]", "answer": "Assistant: hello"},  # sanitized, kept
        {"question": "", "answer": "x"},  # empty_text
        {"question": "What is 2+2?", "answer": "4"},  # duplicate
        {"question": "only"},  # missing_field
        "a string",  # not_an_object
        {"question": "<image>", "answer": "y"},  # empty after sanitizing
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    with open(src, "a") as handle:
        handle.write('{"question": "trunc\n')
    out = tmp_path / "out"
    report = prepare_dataset(str(src), str(out), PrepareOptions(eval_share=0))
    assert_accounts(report, out)
    assert report.counts.input == 8
    assert (report.counts.kept, report.counts.sanitized) == (2, 1)
    assert report.rule_counts == {
        "duplicate": 1,
        "empty_text": 2,
        "invalid_json": 1,
        "missing_field": 1,
        "not_an_object": 1,
    }
    # repairs are counted for kept records only (the <image> record was rejected)
    assert report.sanitize_counts == {"role:assistant": 1, "role:user": 1, "token:[EOS]": 1}
    rejected = read_jsonl(out / "rejected.jsonl")
    assert [(r["line"], r["rule"]) for r in rejected] == [
        (3, "empty_text"),
        (4, "duplicate"),
        (5, "missing_field"),
        (6, "not_an_object"),
        (7, "empty_text"),
        (8, "invalid_json"),
    ]
    assert rejected[0]["record"] == {"question": "", "answer": "x"}
    assert [(e.line, e.rule) for e in report.errors][:2] == [(3, "empty_text"), (4, "duplicate")]
    assert not report.accepted and "exceeds max_reject_share" in report.reasons[0]
    kept = [
        ConversationRecord.from_json_line(line).turns()
        for line in (out / "prepared.jsonl").read_bytes().splitlines()
    ]
    assert kept[1] == [("user", "User : hi "), ("assistant", "Assistant : hello")]


def test_filter_mode_accepts_below_the_threshold_and_strict_mode_does_not(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}", "answer": "a"} for i in range(99)] + [{"question": "q", "answer": " "}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = prepare_dataset(str(src), str(tmp_path / "f"))
    assert report.accepted and report.counts.rejected == 1 and report.pass_rate == 0.99
    strict = prepare_dataset(str(src), str(tmp_path / "s"), PrepareOptions(strict=True))
    assert not strict.accepted and strict.reasons == ["strict mode: 1 record(s) rejected"]
    assert_accounts(strict, tmp_path / "s")


def test_min_and_max_record_counts(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(5)])
    assert not prepare_dataset(str(src), str(tmp_path / "a"), PrepareOptions(min_records=6)).accepted
    report = prepare_dataset(str(src), str(tmp_path / "b"), PrepareOptions(max_records=4))
    assert not report.accepted and "max_records" in report.reasons[0]
    assert prepare_dataset(  # (no eval split: five records are too few to give one reliably)
        str(src), str(tmp_path / "c"), PrepareOptions(min_records=5, max_records=5, eval_share=0)
    ).accepted


def test_system_prompt_present_in_some_records_only_breaks_consistency(tmp_path: Path) -> None:
    rows = [{"question": "a", "answer": "b", "system": "s"}, {"question": "c", "answer": "d"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = prepare_dataset(str(src), str(tmp_path / "o"))
    assert report.rule_counts == {"consistent_fields": 1}
    assert (
        prepare_dataset(str(src), str(tmp_path / "p"), PrepareOptions(system_prompt="dflt")).rule_counts == {}
    )


def test_max_tokens_rejects_long_records(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "in.jsonl", [{"question": "x" * 400, "answer": "a"}, {"question": "y", "answer": "b"}]
    )
    report = prepare_dataset(str(src), str(tmp_path / "o"), PrepareOptions(max_tokens=50, max_reject_share=1))
    assert report.rule_counts == {"max_tokens": 1}
    assert (report.tokens.total, report.tokens.max) == (2, 2)


def test_no_sanitize_rejects_reserved_strings_instead(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"question": "User: hi", "answer": "a"}])
    report = prepare_dataset(str(src), str(tmp_path / "o"), PrepareOptions(sanitize=False))
    assert report.rule_counts == {"reserved_string": 1}


def test_classification_split_is_stratified_seeded_and_reproducible(tmp_path: Path) -> None:
    rows = [
        {"text": f"t{i}", "label": label} for label, n in (("a", 200), ("b", 50), ("c", 30)) for i in range(n)
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = prepare_dataset(str(src), str(tmp_path / "o"))
    assert report.labels == ["a", "b", "c"]
    eval_labels = Counter(
        r["messages"][1]["content"][0]["text"] for r in read_jsonl(tmp_path / "o" / "eval.jsonl")
    )
    assert eval_labels == {"a": 20, "b": 5, "c": 3}
    again = prepare_dataset(str(src), str(tmp_path / "o2"))
    assert again.output_sha256 == report.output_sha256
    other = prepare_dataset(str(src), str(tmp_path / "o3"), PrepareOptions(seed=1))
    assert other.output_sha256["eval.jsonl"] != report.output_sha256["eval.jsonl"]


def test_unlabelled_split_is_close_to_the_share(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(2000)])
    report = prepare_dataset(str(src), str(tmp_path / "o"))
    assert 140 <= report.counts.eval <= 260
    assert report.labels is None


def test_report_hashes_input_and_outputs(tmp_path: Path) -> None:
    import hashlib

    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "p", "completion": "c"}])
    out = tmp_path / "o"
    report = prepare_dataset(str(src), str(out))
    assert report.input_sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    for name, digest in report.output_sha256.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert report.shape == "prompt_completion (prompt=prompt, completion=completion)"


def test_summary_and_report_errors_hold_no_dataset_text(tmp_path: Path) -> None:
    rows = [{"question": "SECRET-42 User: x", "answer": "a"}, {"question": "SECRET-42", "answer": " "}]
    report = prepare_dataset(str(write_jsonl(tmp_path / "in.jsonl", rows)), str(tmp_path / "o"))
    assert "2 records" in report.summary()
    assert "SECRET" not in report.summary()
    assert "SECRET" not in json.dumps([e.model_dump() for e in report.errors])


def test_file_level_error_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match=r"in\.csv line 1: mapped column 'zz'"):
        prepare_dataset(
            str(src), str(tmp_path / "o"), PrepareOptions(mapping={"question": "a", "answer": "zz"})
        )
    assert not any((tmp_path / "o").glob("*.jsonl"))


def test_jsonl_records_missing_a_mapped_field_are_rejected_per_record(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"q": "a", "r": "b"}, {"q": "c"}])
    report = prepare_dataset(
        str(src),
        str(tmp_path / "o"),
        PrepareOptions(mapping={"question": "q", "answer": "r"}, max_reject_share=1),
    )
    assert report.rule_counts == {"missing_field": 1}


def test_iter_records_yields_records_and_errors(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "hi", "intent": "greet"}, {"text": "x"}])
    items = list(iter_records(str(src)))
    assert items[0] == (1, ConversationRecord.from_turns([("user", "hi"), ("assistant", "greet")]))
    assert isinstance(items[1][1], RecordError) and items[1][0] == 2


@pytest.mark.shared_data
def test_banking77_is_detected_as_text_label_and_counts_add_up(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b77"
    report = prepare_dataset(str(shared_data / "banking77" / "train.csv"), str(out))
    assert report.shape == "classification (text=text, label=category)"
    assert report.counts.input == 10_003
    assert report.accepted
    categories = json.loads((shared_data / "banking77" / "categories.json").read_text())
    assert set(report.labels or []) <= set(categories)
    assert_accounts(report, out)
    first = ConversationRecord.from_json_line((out / "prepared.jsonl").read_bytes().splitlines()[0])
    assert first.turns() == [("user", "I am still waiting on my card?"), ("assistant", "card_arrival")]


def test_digest_set_finds_every_duplicate_across_resizes() -> None:
    import random

    from mixtune.dataprep.split import DigestSet

    rng = random.Random(3)
    digests = [rng.getrandbits(64) for _ in range(20_000)] + [0, 1 << 63]
    seen = DigestSet(capacity=16)
    assert all(seen.add(d) for d in digests[:-2])
    assert seen.add(0) and not seen.add(1)  # zero is stored as one
    assert seen.add(1 << 63)
    assert not any(seen.add(d) for d in digests)
    assert len(seen) == 20_002 and rng.getrandbits(64) not in seen


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
_lines = st.lists(
    st.one_of(
        _values.map(lambda v: orjson.dumps(v)),
        st.fixed_dictionaries({"question": _values, "answer": _values}).map(orjson.dumps),
        st.binary(max_size=30),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_lines)
def test_nothing_is_lost_whatever_the_lines_hold(tmp_path: Path, lines: list[bytes]) -> None:
    src = tmp_path / "fuzz.jsonl"
    src.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
    out = tmp_path / "out"
    try:
        report = prepare_dataset(str(src), str(out), PrepareOptions(eval_share=0.5))
    except DatasetError as exc:
        assert str(src) in str(exc)
        return
    assert_accounts(report, out)


def test_a_dataset_too_small_for_a_train_and_an_eval_split_is_rejected(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "one.jsonl", [{"question": "q", "answer": "a"}])
    report = prepare_dataset(str(src), str(tmp_path / "o"))
    assert (report.counts.kept, report.counts.train + report.counts.eval) == (1, 1)
    assert not report.accepted
    assert any(
        "too small to split" in reason and "at least 1 train and 1 eval" in reason
        for reason in report.reasons
    )
    # without an eval split asked for, one record is enough
    assert prepare_dataset(str(src), str(tmp_path / "p"), PrepareOptions(eval_share=0)).accepted


def test_an_eight_megabyte_question_is_rejected_by_default_with_its_line(tmp_path: Path) -> None:
    rows = [{"question": f"question {i}", "answer": "a"} for i in range(40)]
    rows.insert(17, {"question": "lorem ipsum " * 700_000, "answer": "a"})  # 8.4 MB, line 18
    src = write_jsonl(tmp_path / "big.jsonl", rows)
    report = prepare_dataset(str(src), str(tmp_path / "o"))
    assert report.options.max_tokens == 32_768
    assert report.rule_counts == {"max_tokens": 1}
    assert [(e.line, e.rule) for e in report.errors] == [(18, "max_tokens")]
    assert report.errors[0].message == "2100001 tokens > max_tokens 32768"
    assert report.counts.kept == 40 and report.tokens.max < 10
    kept_anyway = prepare_dataset(str(src), str(tmp_path / "p"), PrepareOptions(max_tokens=0))
    assert kept_anyway.options.max_tokens is None and kept_anyway.counts.kept == 41


def test_report_counts_records_over_each_common_training_length(tmp_path: Path) -> None:
    sizes = [100, 1500, 3000, 5000, 9000, 9000]  # tokens, by the 4-characters estimate
    rows = [{"question": "q" * (4 * n - 4), "answer": f"a{i}"} for i, n in enumerate(sizes)]
    report = prepare_dataset(str(write_jsonl(tmp_path / "in.jsonl", rows)), str(tmp_path / "o"))
    assert report.tokens.over == {1024: 5, 2048: 4, 4096: 3, 8192: 2}
    assert report.tokens.max == 9000
    capped = prepare_dataset(
        str(tmp_path / "in.jsonl"), str(tmp_path / "c"), PrepareOptions(max_tokens=4096, max_reject_share=1)
    )
    assert capped.rule_counts == {"max_tokens": 3}
    assert capped.tokens.over == {1024: 2, 2048: 1, 4096: 0, 8192: 0}


def test_run_options_default_max_tokens_to_the_training_length() -> None:
    assert PrepareOptions.for_training({}, max_length=1024).max_tokens == 1024
    assert PrepareOptions.for_training({"max_tokens": 4096}, max_length=1024).max_tokens == 4096
    assert PrepareOptions.for_training({"max_tokens": 0}, max_length=1024).max_tokens is None
    assert PrepareOptions.for_training({"max_tokens": None}, max_length=1024).max_tokens is None
    with pytest.raises(ValueError, match="zzz"):
        PrepareOptions.for_training({"zzz": 1}, max_length=1024)
