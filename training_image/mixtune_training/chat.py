"""Rendering records with the base model's own chat template, and assistant-only labels.

Labels are built here rather than by TRL's ``assistant_only_loss`` (which needs
``{% generation %}`` markers that most templates, SmolLM2's included, lack). For each assistant
turn we render the conversation up to the turn with the generation prompt, then up to and
including the turn; the difference is exactly the assistant's text plus the template's
end-of-turn marker, which is what the model must learn to produce. Those are character spans
of the whole rendered text; the text is tokenised once, whole (so the ids are exactly what the
model sees at inference, whatever the tokenizer does at turn boundaries), and a token is
labelled when its characters overlap an assistant span.
"""

from __future__ import annotations

import bisect
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


def rendered_spans(
    tokenizer: Any, records: list[ConversationRecord]
) -> list[tuple[str, list[tuple[int, int]]]]:
    """Each record rendered whole, with the character spans of its assistant turns.

    A span is the assistant's text plus the template's end-of-turn marker: the rendering of the
    conversation up to and including the turn, minus its rendering up to the turn with the
    generation prompt. Conversations are rendered in two batched calls of the template.
    """
    conversations = [to_messages(record) for record in records]
    turn_index = [
        [i for i, message in enumerate(messages) if message["role"] == "assistant"]
        for messages in conversations
    ]
    prompts = [messages[:i] for messages, idx in zip(conversations, turn_index, strict=True) for i in idx]
    with_turns = [
        messages[: i + 1] for messages, idx in zip(conversations, turn_index, strict=True) for i in idx
    ]
    # a conversation ending with an answer renders as its last "with turn" text; others need their own
    needs_full = [
        m for m, idx in zip(conversations, turn_index, strict=True) if not idx or idx[-1] != len(m) - 1
    ]
    prompt_texts = _render_many(tokenizer, prompts, add_generation_prompt=True)
    turn_texts = _render_many(tokenizer, with_turns, add_generation_prompt=False)
    full_texts = iter(_render_many(tokenizer, needs_full, add_generation_prompt=False))
    results: list[tuple[str, list[tuple[int, int]]]] = []
    cursor = 0
    for messages, idx in zip(conversations, turn_index, strict=True):
        spans: list[tuple[int, int]] = []
        done = ""
        for _ in idx:
            prompt, with_turn = prompt_texts[cursor], turn_texts[cursor]
            cursor += 1
            if not (prompt.startswith(done) and with_turn.startswith(prompt)):
                raise TrainingError(
                    "the base model's chat template does not render conversations incrementally; "
                    "assistant-only labels cannot be located"
                )
            if len(with_turn) > len(prompt):
                spans.append((len(prompt), len(with_turn)))
            done = with_turn
        full = done if idx and idx[-1] == len(messages) - 1 else next(full_texts)
        if not full.startswith(done):
            raise TrainingError(
                "the base model's chat template does not render conversations incrementally; "
                "assistant-only labels cannot be located"
            )
        results.append((full, spans))
    return results


def _render_many(
    tokenizer: Any, conversations: list[list[dict[str, str]]], add_generation_prompt: bool
) -> list[str]:
    """``apply_chat_template`` of each conversation, as text."""
    if not conversations:
        return []
    template = _compiled_template(tokenizer.chat_template)
    if template is None:
        rendered = tokenizer.apply_chat_template(
            conversations, tokenize=False, add_generation_prompt=add_generation_prompt
        )
        return list(rendered)
    # the compiled template with the variables apply_chat_template passes it (its special
    # tokens); a third of the cost, for plain string messages like ours
    variables = {**tokenizer.special_tokens_map, "add_generation_prompt": add_generation_prompt}
    return [template.render(messages=messages, **variables) for messages in conversations]


def _compiled_template(chat_template: str | None) -> Any:
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:
        return None
    return _compile_jinja_template(chat_template) if chat_template else None


def segments(tokenizer: Any, record: ConversationRecord) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, is_assistant) pieces that concatenate to the full text."""
    full, spans = rendered_spans(tokenizer, [record])[0]
    pieces: list[tuple[str, bool]] = []
    position = 0
    for start, end in spans:
        pieces.append((full[position:start], False))
        pieces.append((full[start:end], True))
        position = end
    pieces.append((full[position:], False))
    return [(text, flag) for text, flag in pieces if text]


def tokenize_records(
    tokenizer: Any, records: list[ConversationRecord], max_length: int
) -> list[dict[str, list[int]] | None]:
    """For each record, ``input_ids`` (the tokenisation of its whole rendered text, cut to
    ``max_length``) and ``labels`` (the id on tokens that overlap an assistant span, -100
    elsewhere); None when the cut leaves no assistant token."""
    rendered = rendered_spans(tokenizer, records)
    texts = [text for text, _ in rendered]
    ids_of, offsets_of = _tokenize_with_offsets(tokenizer, texts)
    rows: list[dict[str, list[int]] | None] = []
    for (_, spans), ids, offsets in zip(rendered, ids_of, offsets_of, strict=True):
        ids, offsets = ids[:max_length], offsets[:max_length]
        labels = [IGNORE_INDEX] * len(ids)
        if ids:
            starts, ends = (list(column) for column in zip(*offsets, strict=True))
            for span_start, span_end in spans:
                # tokens are in text order: those overlapping [span_start, span_end) are one run
                first = bisect.bisect_right(ends, span_start)
                last = bisect.bisect_left(starts, span_end)
                for position in range(first, last):
                    if ends[position] > starts[position]:  # zero-width tokens carry no text
                        labels[position] = ids[position]
        rows.append(
            None if all(label == IGNORE_INDEX for label in labels) else {"input_ids": ids, "labels": labels}
        )
    return rows


def _tokenize_with_offsets(
    tokenizer: Any, texts: list[str]
) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Token ids and character offsets of each text (one batched call of a fast tokenizer)."""
    if not texts:
        return [], []
    try:
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:
        # a tokenizer without offsets (a pure-Python one): each token's end is the length of the
        # longest prefix of the text that decodes from the tokens so far
        encoded = tokenizer(texts, add_special_tokens=False)
        offsets = [
            _offsets_by_decoding(tokenizer, text, ids)
            for text, ids in zip(texts, encoded["input_ids"], strict=True)
        ]
        return encoded["input_ids"], offsets
    return encoded["input_ids"], [[tuple(pair) for pair in row] for row in encoded["offset_mapping"]]


def _offsets_by_decoding(tokenizer: Any, text: str, ids: list[int]) -> list[tuple[int, int]]:
    offsets: list[tuple[int, int]] = []
    previous = 0
    for count in range(1, len(ids) + 1):
        decoded = tokenizer.decode(ids[:count])
        end = len(decoded) if text.startswith(decoded) else previous
        offsets.append((previous, max(end, previous)))
        previous = max(end, previous)
    return offsets


def tokenize_for_training(
    tokenizer: Any, record: ConversationRecord, max_length: int
) -> dict[str, list[int]] | None:
    """``input_ids`` and ``labels`` (-100 except on assistant tokens), cut to ``max_length``;
    None when nothing of an assistant turn is left after the cut."""
    return tokenize_records(tokenizer, [record], max_length)[0]
