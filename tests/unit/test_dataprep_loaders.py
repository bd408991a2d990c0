"""Streaming loaders: every format, line numbers, and bad input that must not crash."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixtune.dataprep import DatasetError, RecordError, iter_rows


def rows(path: Path, fmt: str | None = None, **kwargs) -> list[tuple[int, object]]:
    return list(iter_rows(str(path), fmt, **kwargs))


def errors(items) -> list[tuple[int, str]]:
    return [(line, value.rule) for line, value in items if isinstance(value, RecordError)]


def test_jsonl_tolerates_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \n{"a": 2}\r\n')
    assert rows(path) == [(1, {"a": 1}), (4, {"a": 2})]


def test_json_array_elements_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[\n  {"q": "a, [b] \\" \\\\"},\n  {"q": "c"}\n]\n')
    assert rows(path) == [(2, {"q": 'a, [b] " \\'}), (3, {"q": "c"})]


def test_json_object_holding_an_array(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"meta": {"n": [1]}, "data": [{"q": 1}, {"q": 2}], "after": 3}))
    assert [value for _, value in rows(path)] == [{"q": 1}, {"q": 2}]


def test_json_array_streams_across_chunks(tmp_path: Path) -> None:
    records = [{"text": "x" * 1000 + '"\\' * (i % 7), "n": i} for i in range(3000)]  # ~3 MB, several chunks
    path = tmp_path / "big.json"
    path.write_text(json.dumps(records, indent=1))
    assert [value for _, value in rows(path)] == records


def test_csv_quoted_multiline_fields_keep_the_starting_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('question,answer\n"two\nlines",a\nsimple,b\n')
    assert rows(path) == [
        (2, {"question": "two\nlines", "answer": "a"}),
        (4, {"question": "simple", "answer": "b"}),
    ]


def test_tsv_gzip_and_parquet(tmp_path: Path) -> None:
    tsv = tmp_path / "d.tsv"
    tsv.write_text("text\tlabel\nhello\tgreet\n")
    assert rows(tsv) == [(2, {"text": "hello", "label": "greet"})]
    gz = tmp_path / "d.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"a": 1}\n{"a": 2}\n'))
    assert rows(gz) == [(1, {"a": 1}), (2, {"a": 2})]
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.table({"question": ["q1", "q2"], "answer": ["a1", "a2"]}), tmp_path / "d.parquet")
    assert rows(tmp_path / "d.parquet") == [
        (1, {"question": "q1", "answer": "a1"}),
        (2, {"question": "q2", "answer": "a2"}),
    ]


def test_truncated_json_line_is_a_record_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n{"a": "trunc')
    assert errors(rows(path)) == [(2, "invalid_json")]


def test_truncated_json_array_reports_the_partial_element(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[{"a": 1},\n {"a": ')
    assert errors(rows(path)) == [(2, "invalid_json")]


def test_invalid_utf8_is_a_record_error_in_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_bytes(b'{"a": "\xff"}\n{"a": "ok"}\n')
    assert errors(rows(jsonl)) == [(1, "encoding")]
    csv_path = tmp_path / "d.csv"
    csv_path.write_bytes(b"q,a\n\xc3\x28,x\nok,y\n")
    items = rows(csv_path)
    assert errors(items) == [(2, "encoding")]
    assert items[1] == (3, {"q": "ok", "a": "y"})


def test_deeply_nested_json_is_a_record_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + '\n{"a": 1}\n')
    items = rows(path)
    assert errors(items) == [(1, "invalid_json")]
    assert items[0][1].message == "JSON nested too deeply"  # type: ignore[union-attr]
    assert items[1] == (2, {"a": 1})


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02binary\xff" * 10])
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_empty_and_binary_files_are_file_errors_naming_the_file(
    tmp_path: Path, content: bytes, suffix: str
) -> None:
    path = tmp_path / f"d{suffix}"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=str(path)):
        rows(path)


def test_binary_parquet_that_is_not_parquet_is_a_file_error(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "d.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        rows(path)


def test_unknown_suffix_asks_for_a_format(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text('{"a": 1}\n')
    with pytest.raises(DatasetError, match="format"):
        rows(path)
    assert rows(path, "jsonl") == [(1, {"a": 1})]


def test_a_50_mb_single_line_is_one_rejection_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as handle:
        handle.write(b'{"question": "')
        block = b"x" * (1 << 20)
        for _ in range(50):
            handle.write(block)
        handle.write(b'", "answer": "a"}\n{"question": "ok", "answer": "y"}\n')
    items = rows(path)
    assert errors(items) == [(1, "record_too_large")]
    assert len(items[0][1].raw) <= 2000  # type: ignore[union-attr]
    assert items[1] == (2, {"question": "ok", "answer": "y"})


def test_oversized_json_array_element_and_csv_field_are_rejections(tmp_path: Path) -> None:
    json_path = tmp_path / "d.json"
    json_path.write_text(json.dumps([{"q": "x" * 5000}, {"q": "small"}]))
    assert errors(rows(json_path, max_record_bytes=1000)) == [(1, "record_too_large")]
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("q,a\n" + "y" * 5000 + ",1\nok,2\n")
    items = rows(csv_path, max_record_bytes=1000)
    assert errors(items) == [(2, "invalid_csv")]
    assert items[-1] == (3, {"q": "ok", "a": "2"})


def test_csv_row_with_the_wrong_number_of_fields_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("q,a\n1,2,3\n4,5\n")
    assert errors(rows(path)) == [(2, "invalid_csv")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.sampled_from(
                [b"[", b"]", b"{", b"}", b'"', b"\\", b",", b"\n", b"1", b"a", b":", b"\xff", b" "]
            ),
            max_size=60,
        ).map(b"".join),
    ),
    suffix=st.sampled_from([".jsonl", ".json", ".csv", ".tsv"]),
)
def test_loaders_never_raise_anything_but_dataset_error_on_arbitrary_bytes(
    tmp_path: Path, data: bytes, suffix: str
) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        items = rows(path)
    except DatasetError as exc:
        assert str(path) in str(exc)
        return
    for line, value in items:
        assert line >= 1
        assert not isinstance(value, RecordError) or value.rule
