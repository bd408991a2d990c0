"""The block token estimate equals parsing every record and summing the character estimate."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixtune.dataprep import DatasetError
from mixtune.dataprep.tokens import estimate_record_tokens
from mixtune.mixing.lines import block_tokens, record_texts
from mixtune.records import ConversationRecord

# Quotes, backslashes, colons, newlines, the key itself and non-ASCII: everything that could
# fool a byte-level reading of the line.
PIECES = [*'ab :"\\\n\t{}é😀日', '"text":"', "text"]
TRICKY = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


def records(turns: list[tuple[str, str]], system: str | None) -> bytes:
    return ConversationRecord.from_turns(turns, system=system).to_json_line().encode()


def parsed_tokens(block: bytes) -> list[int]:
    return [estimate_record_tokens(record_texts(orjson.loads(line))) for line in block.split(b"\n")[:-1]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(
                st.tuples(st.sampled_from(["user", "assistant"]), TRICKY | st.text(max_size=20)),
                min_size=1,
                max_size=4,
            ),
            st.none() | TRICKY,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_block_tokens_equal_the_parsed_estimate(
    lines: list[tuple[list[tuple[str, str]], str | None]],
) -> None:
    block = b"".join(records(turns, system) + b"\n" for turns, system in lines)
    assert block_tokens("x.jsonl", 0, block).tolist() == parsed_tokens(block)


def test_block_tokens_count_plain_ascii_lines_exactly() -> None:
    block = records([("user", "a" * 13), ("assistant", "text")], "sys") + b"\n"
    block += records([("user", ""), ("assistant", "b" * 4)], None) + b"\n"
    assert block_tokens("x.jsonl", 0, block).tolist() == [4 + 1 + 1, 0 + 1]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "blank line"),
        (b'{"a":1}', "not a conversation record"),
        (b'{"text":"x"', "not a conversation record"),
    ],
)
def test_block_tokens_name_a_line_that_is_no_record(line: bytes, reason: str) -> None:
    good = records([("user", "hi"), ("assistant", "ok")], None)
    with pytest.raises(DatasetError, match=f"line 12: {reason}"):
        block_tokens("x.jsonl", 10, good + b"\n" + line + b"\n" + good + b"\n")
