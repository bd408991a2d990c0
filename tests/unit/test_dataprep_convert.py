"""Shape detection, column mapping and conversion of every supported input shape."""

from __future__ import annotations

import pytest

from mixtune.dataprep import Converter, DatasetError, RecordError, detect_shape


def convert(row: dict, mapping=None, **kwargs):
    shape = detect_shape(list(row), mapping)
    return shape, Converter(shape, **kwargs).convert(1, row)


@pytest.mark.parametrize(
    ("row", "shape_name", "turns"),
    [
        ({"question": "q", "answer": "a"}, "question_answer", [("user", "q"), ("assistant", "a")]),
        ({"Query": "q", "Response": "a"}, "question_answer", [("user", "q"), ("assistant", "a")]),
        ({"prompt": "p", "completion": "c"}, "prompt_completion", [("user", "p"), ("assistant", "c")]),
        (
            {"instruction": "i", "input": "x", "output": "o"},
            "alpaca",
            [("user", "i\n\nx"), ("assistant", "o")],
        ),
        ({"instruction": "i", "input": "", "output": "o"}, "alpaca", [("user", "i"), ("assistant", "o")]),
        ({"text": "t", "category": "card"}, "classification", [("user", "t"), ("assistant", "card")]),
        ({"sentence": "t", "intent": 3}, "classification", [("user", "t"), ("assistant", "3")]),
        ({"utterance": "t", "class": "c"}, "classification", [("user", "t"), ("assistant", "c")]),
        (
            {"question_1": "a", "answer_1": "b", "question_2": "c", "answer_2": "d"},
            "multi_turn",
            [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")],
        ),
        (
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "u"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "messages",
            [("user", "u"), ("assistant", "a")],
        ),
        (
            {"conversations": [{"from": "human", "value": "u"}, {"from": "gpt", "value": "a"}]},
            "sharegpt",
            [("user", "u"), ("assistant", "a")],
        ),
    ],
)
def test_shape_is_detected_and_converted(row, shape_name, turns) -> None:
    shape, (_system, got, _) = convert(row)
    assert shape.name == shape_name
    assert got == turns


def test_openai_leading_system_message_becomes_the_system_prompt() -> None:
    row = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
        ]
    }
    assert convert(row)[1][0] == "s"


def test_converse_records_pass_through() -> None:
    row = {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "sys"}],
        "messages": [
            {"role": "user", "content": [{"text": "u"}]},
            {"role": "assistant", "content": [{"text": "a"}]},
        ],
    }
    assert convert(row)[1] == ("sys", [("user", "u"), ("assistant", "a")], None)


def test_converse_with_a_wrong_schema_version_is_rejected() -> None:
    row = {"schemaVersion": "v0", "messages": []}
    result = convert(row)[1]
    assert isinstance(result, RecordError) and result.rule == "schema_version"


def test_converse_image_block_is_rejected_as_non_text() -> None:
    row = {"messages": [{"role": "user", "content": [{"image": {"format": "png"}}]}]}
    result = convert(row)[1]
    assert isinstance(result, RecordError) and result.rule == "non_text_content"


def test_classification_assistant_turn_is_the_label_verbatim_with_template() -> None:
    _shape, (system, turns, label) = convert(
        {"text": "my card?", "category": "Card_Arrival "},
        system_prompt="Classify.",
        instruction_template="Intent of: {text}",
    )
    assert system == "Classify."
    assert turns == [("user", "Intent of: my card?"), ("assistant", "Card_Arrival ")]
    assert label == "Card_Arrival "


def test_mapping_picks_any_column_names_and_a_system_column() -> None:
    row = {"ask": "q", "reply_text": "a", "persona": "be kind"}
    shape, (system, turns, _) = convert(row, {"question": "ask", "answer": "reply_text", "system": "persona"})
    assert shape.columns == {"question": "ask", "answer": "reply_text", "system": "persona"}
    assert (system, turns) == ("be kind", [("user", "q"), ("assistant", "a")])


def test_row_system_wins_over_the_default_system_prompt() -> None:
    assert (
        convert({"question": "q", "answer": "a", "system": "mine"}, system_prompt="default")[1][0] == "mine"
    )
    assert convert({"question": "q", "answer": "a", "system": ""}, system_prompt="default")[1][0] == "default"


def test_missing_or_non_text_field_is_a_record_error() -> None:
    shape = detect_shape(["question", "answer"])
    converter = Converter(shape)
    missing = converter.convert(4, {"question": "q"})
    assert isinstance(missing, RecordError) and (missing.line, missing.rule) == (4, "missing_field")
    nested = converter.convert(5, {"question": {"a": 1}, "answer": "x"})
    assert isinstance(nested, RecordError) and nested.rule == "not_text"
    assert converter.convert(6, [1, 2]).rule == "not_an_object"  # type: ignore[union-attr]


def test_unknown_shape_and_missing_mapped_column_are_file_errors() -> None:
    with pytest.raises(DatasetError, match="cannot detect the record shape"):
        detect_shape(["a", "b"], uri="f.jsonl", line=3)
    with pytest.raises(DatasetError, match=r"f\.csv line 1: mapped column 'nope'"):
        detect_shape(["q", "a"], {"question": "q", "answer": "nope"}, uri="f.csv", tabular=True)
    with pytest.raises(DatasetError, match="unknown mapping key"):
        detect_shape(["q"], {"bogus": "q"})


def test_dataset_error_names_file_and_line_and_survives_pickling() -> None:
    import pickle

    error = DatasetError("s3://b/k.csv", "bad header", 1)
    assert str(error) == "s3://b/k.csv line 1: bad header"
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.uri, again.line) == (str(error), "s3://b/k.csv", 1)
