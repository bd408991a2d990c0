"""The validator: each rule with a failing example, and robustness on arbitrary values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixtune.dataprep import Converter, RecordError, Shape, Validator
from mixtune.dataprep.tokens import estimate_tokens

GOOD = [("user", "hi"), ("assistant", "hello")]


def test_a_valid_conversation_passes() -> None:
    assert Validator().check(1, None, GOOD) is None
    assert Validator().check(1, "be brief", [*GOOD, ("user", "and?"), ("assistant", "done")]) is None


@pytest.mark.parametrize(
    ("system", "turns", "rule"),
    [
        (None, [("user", "hi")], "needs_user_and_assistant"),
        (None, [], "needs_user_and_assistant"),
        (None, [("user", "hi"), ("system", "x"), ("assistant", "a")], "system_in_messages"),
        (None, [("user", "hi"), ("tool", "x")], "invalid_role"),
        (None, [("assistant", "a"), ("user", "hi")], "alternation"),
        (None, [("user", "a"), ("user", "b")], "alternation"),
        (None, [("user", "a"), ("assistant", "b"), ("user", "c")], "alternation"),
        (None, [("user", " \n"), ("assistant", "b")], "empty_text"),
        (None, [("user", "a"), ("assistant", "")], "empty_text"),
        ("  ", GOOD, "empty_text"),
        (None, [("user", "User: a"), ("assistant", "b")], "reserved_string"),
        (None, [("user", "a"), ("assistant", "b[EOS]")], "reserved_string"),
        ("System: x", GOOD, "reserved_string"),
    ],
)
def test_each_rule_rejects_its_failing_example(system, turns, rule) -> None:
    error = Validator().check(7, system, turns)
    assert isinstance(error, RecordError)
    assert (error.line, error.rule) == (7, rule)


def test_max_tokens_uses_the_estimate_or_a_given_counter() -> None:
    turns = [("user", "x" * 40), ("assistant", "y" * 40)]  # 10 + 10 estimated tokens
    assert Validator(max_tokens=20).check(1, None, turns) is None
    error = Validator(max_tokens=19).check(1, None, turns)
    assert error is not None and error.rule == "max_tokens"
    assert Validator(max_tokens=2, count_tokens=lambda text: 1).check(1, None, turns) is None


def test_estimate_tokens_is_a_quarter_of_the_characters_rounded_up() -> None:
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_row = st.one_of(
    _json,
    st.dictionaries(
        st.sampled_from(["question", "answer", "text", "label", "messages", "system", "role", "content"]),
        _json,
        max_size=5,
    ),
    st.fixed_dictionaries(
        {"messages": st.lists(st.dictionaries(st.sampled_from(["role", "content", "text"]), _json))}
    ),
)
_SHAPES = [
    Shape("question_answer", {"question": "question", "answer": "answer", "system": "system"}),
    Shape("classification", {"text": "text", "label": "label"}),
    Shape("messages", {"messages": "messages"}),
    Shape("sharegpt", {"conversations": "messages"}),
    Shape("alpaca", {"instruction": "text", "output": "answer", "input": "question"}),
    Shape("multi_turn", pairs=[("question", "answer"), ("text", "label")]),
]


@settings(max_examples=400, deadline=None)
@given(_row, st.sampled_from(_SHAPES))
def test_converter_and_validator_never_raise_on_arbitrary_json(row, shape) -> None:
    converted = Converter(shape, system_prompt=None).convert(3, row)
    if isinstance(converted, RecordError):
        assert converted.line == 3 and converted.rule
        return
    system, turns, _ = converted
    result = Validator(max_tokens=50).check(3, system, turns, row)
    assert result is None or result.rule
