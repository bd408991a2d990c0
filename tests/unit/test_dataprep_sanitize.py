"""The sanitizer: each reserved string, its repair, idempotence and the counts."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixtune.dataprep import ReservedString, Sanitizer, default_table, sanitize_record, sanitize_text
from mixtune.dataprep.sanitize import DEFAULT_ROLE_MARKERS, DEFAULT_SPECIAL_TOKENS
from mixtune.records import ConversationRecord


@pytest.mark.parametrize("marker", DEFAULT_ROLE_MARKERS)
@pytest.mark.parametrize("variant", [str.lower, str.upper, str.title])
def test_role_marker_gets_a_space_before_the_colon_keeping_its_case(marker: str, variant) -> None:
    word = variant(marker)
    sanitizer = Sanitizer()
    assert sanitizer.find(f"say {word}: hi") == f"role:{marker.lower()}"
    assert sanitizer.sanitize_text(f"say {word}: hi") == f"say {word} : hi"
    assert sanitizer.counts == Counter({f"role:{marker.lower()}": 1})


@pytest.mark.parametrize("token", DEFAULT_SPECIAL_TOKENS)
def test_special_token_is_removed(token: str) -> None:
    sanitizer = Sanitizer()
    assert sanitizer.find(f"a{token}b") == f"token:{token}"
    assert sanitizer.sanitize_text(f"a{token}b {token}") == "ab "
    assert sanitizer.counts[f"token:{token}"] == 2


def test_role_marker_needs_a_word_boundary_and_an_adjacent_colon() -> None:
    for text in ("SuperUser: x", "user_name: x", "user : x", "the user said", "Users: 3"):
        assert sanitize_text(text) == text


def test_user_colon_example_from_the_issue() -> None:
    assert sanitize_text("user: hi") == "user : hi"


def test_removal_runs_to_a_fixed_point() -> None:
    sanitizer = Sanitizer()
    assert sanitizer.sanitize_text("<im<image>age> Us[EOS]er: x") == " User : x"
    assert sanitizer.counts == Counter({"token:<image>": 2, "token:[EOS]": 1, "role:user": 1})


def test_clean_text_is_returned_unchanged_and_uncounted() -> None:
    sanitizer = Sanitizer()
    assert sanitizer.sanitize_text("what is 10:30 in <b>bold</b>?") == "what is 10:30 in <b>bold</b>?"
    assert not sanitizer.counts


def test_custom_table_and_extra_tokens() -> None:
    sanitizer = Sanitizer([ReservedString("Agent", "space_before_colon"), ReservedString("<sep>", "remove")])
    assert sanitizer.sanitize_text("agent: a<sep>b User: c") == "agent : ab User: c"
    assert Sanitizer(default_table(["<|custom|>"])).sanitize_text("x<|custom|>y") == "xy"


def test_sanitize_record_repairs_every_text_and_keeps_clean_records() -> None:
    record = ConversationRecord.from_turns(
        [("user", "User: hi[EOS]"), ("assistant", "ok")], system="System: be nice"
    )
    repaired = sanitize_record(record)
    assert repaired.turns() == [("user", "User : hi"), ("assistant", "ok")]
    assert repaired.system_text == "System : be nice"
    clean = ConversationRecord.from_turns([("user", "hi"), ("assistant", "ok")])
    assert sanitize_record(clean) is clean


_reserved_pieces = st.sampled_from(
    [
        *DEFAULT_SPECIAL_TOKENS,
        *(m + ":" for m in DEFAULT_ROLE_MARKERS),
        *(m.upper() for m in DEFAULT_ROLE_MARKERS),
    ]
)
_texts = st.lists(
    st.one_of(st.text(max_size=8), _reserved_pieces, st.sampled_from([":", "<", "[", "|", " "])), max_size=12
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_texts)
def test_sanitize_is_idempotent(text: str) -> None:
    once = sanitize_text(text)
    assert sanitize_text(once) == once


@settings(max_examples=300, deadline=None)
@given(_texts)
def test_sanitized_text_holds_no_reserved_string(text: str) -> None:
    sanitizer = Sanitizer()
    assert sanitizer.find(sanitizer.sanitize_text(text)) is None
