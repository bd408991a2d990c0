"""The state machine definition module: placeholders and their substitution."""

from __future__ import annotations

import pytest

from mixtune.functions import FUNCTIONS
from mixtune.statemachine import expected_placeholders, load_definition, substitute, substitutions


def test_asl_placeholder_without_a_value_is_an_error() -> None:
    assert substitute('{"R": "${A}"}', {"A": "arn:x"}) == '{"R": "arn:x"}'
    with pytest.raises(ValueError, match="B"):
        substitute('{"R": "${A}", "S": "${B}"}', {"A": "arn:x"})


def test_substitutions_fill_every_placeholder_of_the_definition() -> None:
    values = substitutions(lambda fn: f"arn:fn:{fn.name}", "arn:topic")
    assert set(values) == expected_placeholders()
    text = substitute(load_definition(), values)
    assert "${" not in text
    assert all(f"arn:fn:{fn.name}" in text for fn in FUNCTIONS if fn.in_state_machine)
