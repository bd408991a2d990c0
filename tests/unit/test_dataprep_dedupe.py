"""Exact dedupe in bounded memory: past the in-memory budget, digests spill to disk and the
late duplicates are moved to rejected.jsonl, with the same result as an all-in-memory run."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixtune.dataprep import DatasetError, PrepareOptions, PrepareReport, prepare_dataset
from mixtune.dataprep import dedupe as dedupe_module
from mixtune.dataprep.dedupe import PARTITIONS, Deduper
from tests.support.jsonl import read_jsonl, write_jsonl


def prepare(src: Path, out: Path, **options: object) -> PrepareReport:
    return prepare_dataset(str(src), str(out), PrepareOptions(**options))  # type: ignore[arg-type]


def assert_same_outcome(memory: PrepareReport, spilled: PrepareReport, out_m: Path, out_s: Path) -> None:
    """Identical results; only the order of rejected.jsonl (late duplicates last) may differ."""
    assert spilled.counts == memory.counts
    assert spilled.rule_counts == memory.rule_counts
    assert spilled.sanitize_counts == memory.sanitize_counts
    assert spilled.errors == memory.errors
    assert spilled.tokens == memory.tokens
    assert spilled.accepted == memory.accepted
    for name in ("prepared.jsonl", "eval.jsonl"):
        assert (out_s / name).read_bytes() == (out_m / name).read_bytes()
        assert spilled.output_sha256[name] == memory.output_sha256[name]
    key = lambda entry: (entry["line"], entry["rule"])  # noqa: E731
    assert sorted(read_jsonl(out_s / "rejected.jsonl"), key=key) == sorted(
        read_jsonl(out_m / "rejected.jsonl"), key=key
    )
    assert PrepareReport.model_validate_json((out_s / "report.json").read_text()) == spilled


def qa_rows(n: int, duplicate_every: int, seed: int = 0) -> list[dict]:
    """Q/A rows where some rows repeat an earlier one (some only after sanitizing)."""
    rng = random.Random(seed)
    rows: list[dict] = []
    for i in range(n):
        if rows and i % duplicate_every == 0:
            rows.append(dict(rng.choice(rows)))
        elif i % 7 == 0:
            rows.append({"question": f"User: question {i % 11} [EOS]", "answer": f"answer {i % 11}"})
        else:
            rows.append({"question": f"question {i}", "answer": f"answer {i}"})
    return rows


def test_spilled_dedupe_gives_the_same_outputs_as_the_in_memory_set(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", qa_rows(400, duplicate_every=5))
    memory = prepare(src, tmp_path / "m")
    assert memory.rule_counts["duplicate"] > 50 and memory.sanitize_counts
    for budget in (1, 3, 40, 300):
        out = tmp_path / f"s{budget}"
        spilled = prepare(src, out, dedupe_memory_digests=budget)
        assert_same_outcome(memory, spilled, tmp_path / "m", out)


def test_late_duplicates_are_rejected_with_their_line_and_raw_record(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}", "answer": "a"} for i in range(6)]
    rows += [rows[4], rows[0], {"question": "User: q5", "answer": "a"}, rows[5]]  # lines 7..10
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = prepare(src, tmp_path / "out", dedupe_memory_digests=2, eval_share=0)
    # q0 is held in memory (rejected on sight); q4 and q5 spilled (found at the end)
    rejected = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert [(r["line"], r["rule"]) for r in rejected] == [
        (8, "duplicate"),
        (7, "duplicate"),
        (10, "duplicate"),
    ]
    assert [r["record"] for r in rejected] == [rows[7], rows[6], rows[9]]
    assert [(e.line, e.rule) for e in report.errors] == [
        (7, "duplicate"),
        (8, "duplicate"),
        (10, "duplicate"),
    ]
    kept = [r["messages"][0]["content"][0]["text"] for r in read_jsonl(tmp_path / "out" / "prepared.jsonl")]
    assert kept == ["q0", "q1", "q2", "q3", "q4", "q5", "User : q5"]
    assert (report.counts.input, report.counts.kept, report.counts.rejected) == (10, 7, 3)
    assert report.counts.train == 7 and report.rule_counts == {"duplicate": 3}


def test_a_sanitized_late_duplicate_takes_its_repairs_out_of_the_counts(tmp_path: Path) -> None:
    rows = [{"question": f"q{i}", "answer": "a"} for i in range(3)]
    rows += [{"question": "User: x[EOS]", "answer": "a"}, {"question": "User: x", "answer": "a"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    memory = prepare(src, tmp_path / "m", eval_share=0)
    spilled = prepare(src, tmp_path / "s", dedupe_memory_digests=1, eval_share=0)
    assert spilled.sanitize_counts == memory.sanitize_counts == {"role:user": 1, "token:[EOS]": 1}
    assert spilled.counts.sanitized == memory.counts.sanitized == 1
    assert_same_outcome(memory, spilled, tmp_path / "m", tmp_path / "s")


def test_stratified_data_with_late_duplicates_still_accounts_for_every_record(tmp_path: Path) -> None:
    rows = [{"text": f"message {i % 150}", "intent": ["a", "b", "c"][i % 3]} for i in range(600)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    memory = prepare(src, tmp_path / "m")
    spilled = prepare(src, tmp_path / "s", dedupe_memory_digests=10)
    c = spilled.counts
    assert c.input == c.kept + c.rejected and c.train + c.eval == c.kept
    assert (c.kept, c.rejected) == (memory.counts.kept, memory.counts.rejected) == (150, 450)
    assert len(read_jsonl(tmp_path / "s" / "prepared.jsonl")) == c.train
    assert len(read_jsonl(tmp_path / "s" / "eval.jsonl")) == c.eval
    rejected = read_jsonl(tmp_path / "s" / "rejected.jsonl")
    assert len(rejected) == 450 and {r["line"] for r in rejected} == set(range(151, 601))
    kept = read_jsonl(tmp_path / "s" / "prepared.jsonl") + read_jsonl(tmp_path / "s" / "eval.jsonl")
    assert len({orjson.dumps(r) for r in kept}) == 150
    assert spilled.labels == ["a", "b", "c"]


def test_spilling_without_duplicates_leaves_the_outputs_as_written(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(300)])
    memory = prepare(src, tmp_path / "m")
    spilled = prepare(src, tmp_path / "s", dedupe_memory_digests=5)
    assert_same_outcome(memory, spilled, tmp_path / "m", tmp_path / "s")
    assert spilled.counts.rejected == 0


@pytest.mark.parametrize("flush_entries", [6, 3 * 1024])
def test_deduper_returns_only_later_occurrences_and_removes_its_spill_files(
    monkeypatch: pytest.MonkeyPatch, flush_entries: int
) -> None:
    monkeypatch.setattr(dedupe_module, "_FLUSH_ENTRIES", flush_entries)  # small: many flushes and chunks
    rng = random.Random(1)
    digests = [rng.getrandbits(64) for _ in range(5000)] + [0, 1 << 63]
    stream = digests[:100] + digests + digests[3000:3100] + [0]
    deduper = Deduper(memory_digests=50)
    expected_late, first_seen = [], set()
    with deduper:
        for seq, digest in enumerate(stream, start=1):
            if deduper.first_sight(digest):
                assert deduper.spilling or seq <= 50
                if deduper.spilling:
                    deduper.spill(digest, seq, seq % 2 == 1, seq)
                    if (digest or 1) in first_seen:
                        expected_late.append(seq)
                    first_seen.add(digest or 1)
            else:
                assert digest in digests[:50]
        assert deduper.resolve() == deduper.resolve() == len(expected_late)
        late = list(deduper.late_duplicates())
        assert list(deduper.late_duplicates()) == late  # it can be streamed again
        spill_dir = deduper._dir
        assert spill_dir is not None and len(list(spill_dir.iterdir())) > PARTITIONS // 2
    assert [item.seq for item in late] == expected_late and len(late) == 50 + 100 + 1
    assert all(item.position == item.seq and item.in_eval is (item.seq % 2 == 1) for item in late)
    assert not spill_dir.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(min_value=0, max_value=25), min_size=1, max_size=60),
    budget=st.integers(min_value=1, max_value=30),
    eval_share=st.sampled_from([0.0, 0.3]),
)
def test_spilled_dedupe_matches_in_memory_for_any_order(
    tmp_path: Path, picks: list[int], budget: int, eval_share: float
) -> None:
    case = tmp_path / f"case{budget}-{len(picks)}-{hash(tuple(picks)) & 0xFFFF}-{eval_share}"
    case.mkdir(exist_ok=True)
    rows = [{"question": f"q{k}" + (" [EOS]" if k % 4 == 0 else ""), "answer": f"a{k % 5}"} for k in picks]
    src = write_jsonl(case / "in.jsonl", rows)
    memory = prepare(src, case / "m", eval_share=eval_share, min_records=0)
    spilled = prepare(src, case / "s", eval_share=eval_share, min_records=0, dedupe_memory_digests=budget)
    assert_same_outcome(memory, spilled, case / "m", case / "s")
    assert memory.rule_counts.get("duplicate", 0) == len(picks) - len(Counter(picks))


def test_a_source_changed_before_the_second_read_is_a_dataset_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"question": f"q{i}", "answer": "a"} for i in range(4)] + [{"question": "q3", "answer": "a"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    resolve = Deduper.resolve

    def resolve_after_an_edit(self: Deduper) -> int:
        write_jsonl(src, [*rows[:4], {"question": "edited", "answer": "a"}])
        return resolve(self)

    monkeypatch.setattr(Deduper, "resolve", resolve_after_an_edit)
    with pytest.raises(DatasetError, match="changed while it was being prepared"):
        prepare(src, tmp_path / "out", dedupe_memory_digests=1)


def test_spill_past_its_budget_stops_preparation_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    import tempfile

    from mixtune.dataprep import SpillBudgetExceeded

    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    src = write_jsonl(tmp_path / "in.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(200)])
    # 10 digests in memory, then 24 bytes per spilled record: the other 190 need 4,560 bytes
    within = prepare(src, tmp_path / "ok", dedupe_memory_digests=10, spill_budget_bytes=190 * 24)
    assert within.counts.kept == 200
    with pytest.raises(SpillBudgetExceeded, match=r"spill_budget_bytes=4,559 bytes .* past the first 10\)"):
        prepare(src, tmp_path / "out", dedupe_memory_digests=10, spill_budget_bytes=190 * 24 - 1)
    assert list(spill_root.iterdir()) == []  # the spill folder is removed
    assert list((tmp_path / "out").iterdir()) == []  # no output, not even partial ones


def test_late_duplicates_leave_the_length_counts_as_in_memory(tmp_path: Path) -> None:
    rows = [{"question": f"{i} " + "w" * (3000 * i), "answer": "a"} for i in range(12)]  # ~750 i tokens
    rows += [rows[9], rows[3], rows[11], rows[1]]  # long records repeated after the budget
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    memory = prepare(src, tmp_path / "m", eval_share=0)
    spilled = prepare(src, tmp_path / "s", eval_share=0, dedupe_memory_digests=2)
    assert memory.tokens.over == {1024: 10, 2048: 9, 4096: 6, 8192: 1}
    assert_same_outcome(memory, spilled, tmp_path / "m", tmp_path / "s")
