"""Model-side scoring: greedy generation, continuation log-likelihoods and held-out loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixtune.evaluation.mmlu import CONTINUATIONS, MmluQuestion, build_prompt, pick_letter
from mixtune.records import ConversationRecord
from mixtune_training.chat import IGNORE_INDEX, render_prompt, tokenize_for_training


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def generate_answers(
    model: Any, tokenizer: Any, records: Sequence[ConversationRecord], max_new_tokens: int, batch_size: int
) -> list[str]:
    """Greedy answers to each record's conversation (its final answer left out)."""
    import torch

    prompts = [render_prompt(tokenizer, record) for record in records]
    tokenizer.padding_side = "left"
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(
            prompts[start : start + batch_size], add_special_tokens=False, padding=True, return_tensors="pt"
        )
        batch = {k: v.to(_device(model)) for k, v in batch.items()}
        with torch.inference_mode():
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        answers.extend(text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def continuation_logprobs(
    model: Any, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int, max_length: int
) -> list[float]:
    """Summed log-probability of each continuation after its context (lm-eval's loglikelihood).

    The model reads (context + continuation)[:-1], cut from the left to ``max_length``; requests
    that share that input (single-token letters after one context) share one forward pass.
    """
    import torch

    inputs = [tuple((ctx + cont)[:-1][-max_length:]) for ctx, cont in pairs]
    unique = sorted(set(inputs), key=lambda seq: -len(seq))
    scores: dict[tuple[tuple[int, ...], tuple[int, ...]], float] = {}
    wanted: dict[tuple[int, ...], list[list[int]]] = {}
    for seq, (_ctx, cont) in zip(inputs, pairs, strict=True):
        wanted.setdefault(seq, []).append(cont)
    device = _device(model)
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        width = max(len(seq) for seq in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        for row, seq in enumerate(chunk):
            for cont in wanted[seq]:
                positions = range(len(seq) - len(cont), len(seq))
                total = sum(
                    float(logprobs[row, pos, token]) for pos, token in zip(positions, cont, strict=True)
                )
                scores[(seq, tuple(cont))] = total
    return [scores[(seq, tuple(cont))] for seq, (_ctx, cont) in zip(inputs, pairs, strict=True)]


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's split: encode context+continuation whole and take the tokens after the context's."""
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    return context_ids, whole[len(context_ids) :]


def answer_mmlu(
    model: Any,
    tokenizer: Any,
    questions: Sequence[MmluQuestion],
    shots: dict[str, list[MmluQuestion]],
    batch_size: int,
    max_length: int,
) -> list[int]:
    """The chosen letter index for each question."""
    pairs: list[tuple[list[int], list[int]]] = []
    for q in questions:
        context = build_prompt(q, shots.get(q.subject, []))
        pairs.extend(encode_pair(tokenizer, context, continuation) for continuation in CONTINUATIONS)
    logprobs = continuation_logprobs(model, pairs, batch_size, max_length)
    n = len(CONTINUATIONS)
    return [pick_letter(logprobs[i * n : (i + 1) * n]) for i in range(len(questions))]


def assistant_loss(
    model: Any, tokenizer: Any, records: Sequence[ConversationRecord], batch_size: int, max_length: int
) -> tuple[float, int]:
    """Mean cross-entropy over assistant tokens (the training objective) and the token count."""
    import torch

    rows = [
        r for r in (tokenize_for_training(tokenizer, rec, max_length) for rec in records) if r is not None
    ]
    device = _device(model)
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(r["input_ids"]) for r in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, r in enumerate(chunk):
            n = len(r["input_ids"])
            ids[row, :n] = torch.tensor(r["input_ids"])
            labels[row, :n] = torch.tensor(r["labels"])
            mask[row, :n] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        shifted = labels[:, 1:].to(device)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            shifted.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        total += float(loss)
        count += int((shifted != IGNORE_INDEX).sum())
    return (total / count if count else float("nan")), count
