"""Rendering records with the base model's own chat template, and assistant-only labels.

Labels are built here rather than by TRL's ``assistant_only_loss`` (which needs
``{% generation %}`` markers that most templates, SmolLM2's included, lack). For each assistant
turn we render the conversation up to the turn with the generation prompt, then up to and
including the turn; the difference is exactly the assistant's text plus the template's
end-of-turn marker, which is what the model must learn to produce.
"""

from __future__ import annotations

from typing import Any

from mixtune.records import ConversationRecord
from mixtune_training.common import TrainingError

IGNORE_INDEX = -100


def to_messages(record: ConversationRecord, include_final_answer: bool = True) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    if record.system_text:
        messages.append({"role": "system", "content": record.system_text})
    turns = record.turns()
    if not include_final_answer and turns and turns[-1][0] == "assistant":
        turns = turns[:-1]
    messages.extend({"role": role, "content": text} for role, text in turns)
    return messages


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def render_prompt(tokenizer: Any, record: ConversationRecord) -> str:
    """The conversation without its final answer, ending with the generation prompt."""
    return _render(tokenizer, to_messages(record, include_final_answer=False), add_generation_prompt=True)


def segments(tokenizer: Any, record: ConversationRecord) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, is_assistant) pieces that concatenate to the full text."""
    messages = to_messages(record)
    pieces: list[tuple[str, bool]] = []
    done = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:index], add_generation_prompt=True)
        with_turn = _render(tokenizer, messages[: index + 1], add_generation_prompt=False)
        if not (prompt.startswith(done) and with_turn.startswith(prompt)):
            raise TrainingError(
                "the base model's chat template does not render conversations incrementally; "
                "assistant-only labels cannot be located"
            )
        pieces.append((prompt[len(done) :], False))
        pieces.append((with_turn[len(prompt) :], True))
        done = with_turn
    full = _render(tokenizer, messages, add_generation_prompt=False)
    if full[len(done) :]:
        pieces.append((full[len(done) :], False))
    return [(text, flag) for text, flag in pieces if text]


def tokenize_for_training(
    tokenizer: Any, record: ConversationRecord, max_length: int
) -> dict[str, list[int]] | None:
    """``input_ids`` and ``labels`` (-100 except on assistant tokens), cut to ``max_length``;
    None when nothing of an assistant turn is left after the cut."""
    input_ids: list[int] = []
    labels: list[int] = []
    for text, is_assistant in segments(tokenizer, record):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids.extend(ids)
        labels.extend(ids if is_assistant else [IGNORE_INDEX] * len(ids))
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": input_ids, "labels": labels}
