from __future__ import annotations

import pytest

from mixtune.records import ConversationRecord
from mixtune_training.chat import IGNORE_INDEX, render_prompt, segments, tokenize_for_training
from mixtune_training.common import TrainingError
from mixtune_training.tiny import CHATML_TEMPLATE, _train_tokenizer

SMOLLM2_STYLE_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

RECORD = ConversationRecord.from_turns(
    [
        ("user", "Where is my card?"),
        ("assistant", "card_delivery"),
        ("user", "And my refund?"),
        ("assistant", "refund"),
    ],
    system="Classify the intent.",
)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return _train_tokenizer()


def _labelled_text(tokenizer, row) -> str:  # type: ignore[no-untyped-def]
    return tokenizer.decode(
        [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE_INDEX]
    )


@pytest.mark.parametrize("template", [CHATML_TEMPLATE, SMOLLM2_STYLE_TEMPLATE])
def test_only_assistant_tokens_carry_labels(tokenizer, template: str) -> None:  # type: ignore[no-untyped-def]
    tokenizer.chat_template = template
    row = tokenize_for_training(tokenizer, RECORD, max_length=512)
    assert row is not None
    assert _labelled_text(tokenizer, row) == "card_delivery<|im_end|>\nrefund<|im_end|>\n"
    full = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Classify the intent."}]
        + [{"role": r, "content": t} for r, t in RECORD.turns()],
        tokenize=False,
    )
    assert tokenizer.decode(row["input_ids"]) == full
    masked = tokenizer.decode(
        [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label == IGNORE_INDEX]
    )
    assert "Where is my card?" in masked and "card_delivery" not in masked


def test_segments_concatenate_to_the_rendered_conversation(tokenizer) -> None:  # type: ignore[no-untyped-def]
    tokenizer.chat_template = CHATML_TEMPLATE
    pieces = segments(tokenizer, RECORD)
    assert [flag for _, flag in pieces] == [False, True, False, True]
    assert pieces[0][0].endswith("<|im_start|>assistant\n")


def test_truncation_that_leaves_no_answer_drops_the_record(tokenizer) -> None:  # type: ignore[no-untyped-def]
    tokenizer.chat_template = CHATML_TEMPLATE
    assert tokenize_for_training(tokenizer, RECORD, max_length=4) is None
    prompt_tokens = len(tokenizer(segments(tokenizer, RECORD)[0][0], add_special_tokens=False)["input_ids"])
    row = tokenize_for_training(tokenizer, RECORD, max_length=prompt_tokens + 1)
    assert row is not None and len(row["input_ids"]) == prompt_tokens + 1
    assert sum(label != IGNORE_INDEX for label in row["labels"]) == 1


def test_prompt_ends_with_generation_prompt_and_omits_the_answer(tokenizer) -> None:  # type: ignore[no-untyped-def]
    tokenizer.chat_template = CHATML_TEMPLATE
    prompt = render_prompt(tokenizer, RECORD)
    assert prompt.endswith("And my refund?<|im_end|>\n<|im_start|>assistant\n")
    assert "refund<|im_end|>" not in prompt


def test_template_that_rewrites_history_is_a_clear_error(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # renders the number of messages up front, so a longer conversation is not an extension of a shorter one
    tokenizer.chat_template = "{{ messages|length }}" + CHATML_TEMPLATE
    with pytest.raises(TrainingError, match="incrementally"):
        tokenize_for_training(tokenizer, RECORD, max_length=512)
