"""Model-side scoring: greedy generation, continuation log-likelihoods and held-out loss.

Speed without changing a score: every pass works on items sorted by length (little padding),
restores the original order, and MMLU asks the model for logits only at the positions it reads.
On a GPU a batch that runs out of memory is split in two and retried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from mixtune.evaluation.mmlu import CONTINUATIONS, MmluQuestion, build_prompt, pick_letter
from mixtune.records import ConversationRecord
from mixtune_training.chat import IGNORE_INDEX, render_prompt, tokenize_for_training
from mixtune_training.common import TrainingError

T = TypeVar("T")
R = TypeVar("R")

# End-of-turn tokens of common chat formats (Llama 3.x, ChatML, Gemma, Phi-3): added to the stop
# set when the tokenizer has them as special tokens, on top of what its template and configs say.
END_OF_TURN_TOKENS = ("<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>")
_SENTINEL = "mixtune-answer-sentinel-7f3a"


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def token_batches(
    order: Sequence[int], lengths: Sequence[int], batch_size: int, max_length: int
) -> list[list[int]]:
    """Consecutive items of ``order`` (longest first) grouped so that rows x the batch's longest
    item stays within ``batch_size`` x ``max_length`` tokens: the memory a full batch of the
    longest allowed items would take. Short items (MMLU questions, labels) then go many to a
    batch; long ones ``batch_size`` at most."""
    budget = max(batch_size * max_length, 1)
    batches: list[list[int]] = []
    for index in order:
        if batches:
            batch = batches[-1]
            width = max(lengths[batch[0]], lengths[index])
            if (len(batch) + 1) * width <= budget:
                batch.append(index)
                continue
        batches.append([index])
    return batches


def run_batches(batches: Sequence[Sequence[T]], run: Callable[[Sequence[T]], list[R]]) -> list[R]:
    """``run`` over each batch in turn; a batch that runs out of GPU memory is halved and retried."""
    out: list[R] = []
    queue = [list(batch) for batch in batches]
    while queue:
        batch = queue.pop(0)
        try:
            out.extend(run(batch))
        except Exception as exc:
            if not _is_oom(exc) or len(batch) == 1:
                raise
            import torch

            torch.cuda.empty_cache()
            half = len(batch) // 2
            queue[:0] = [batch[:half], batch[half:]]
    return out


def by_length(lengths: Sequence[int]) -> list[int]:
    """Indices, longest first (an out-of-memory error shows on the first batch, not the last)."""
    return sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))


def restore(order: Sequence[int], values: Sequence[R]) -> list[R]:
    out: list[Any] = [None] * len(order)
    for position, index in enumerate(order):
        out[index] = values[position]
    return out


# --- stopping ----------------------------------------------------------------------------------


def end_of_turn_token(tokenizer: Any) -> int | None:
    """The special token the chat template puts right after an assistant answer, if any."""
    messages = [{"role": "user", "content": "?"}, {"role": "assistant", "content": _SENTINEL}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # a template that refuses this conversation: rely on the other sources
        return None
    if _SENTINEL not in text:
        return None
    suffix = text.split(_SENTINEL, 1)[1]
    ids = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else []
    special = set(tokenizer.all_special_ids) | {
        token_id for token_id, added in tokenizer.added_tokens_decoder.items() if added.special
    }
    return ids[0] if ids and ids[0] in special else None


def stop_token_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """Every token that ends an answer: eos of the tokenizer and of the generation config, the
    template's end-of-turn token and known end-of-turn tokens the tokenizer has."""
    ids: set[int] = set()

    def add(value: Any) -> None:
        if value is None:
            return
        if isinstance(value, int):
            ids.add(value)
        else:
            ids.update(int(v) for v in value)

    add(tokenizer.eos_token_id)
    config = getattr(model, "generation_config", None)
    add(getattr(config, "eos_token_id", None))
    add(end_of_turn_token(tokenizer))
    vocab = tokenizer.get_vocab()
    special_names = set(tokenizer.all_special_tokens) | {
        added.content for added in tokenizer.added_tokens_decoder.values() if added.special
    }
    for name in END_OF_TURN_TOKENS:
        if name in vocab and name in special_names:
            ids.add(vocab[name])
    return sorted(ids)


# --- generation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    text: str
    finished: bool  # a stop token came before max_new_tokens ran out
    new_tokens: int  # tokens generated, the stop token included


def answer_token_count(tokenizer: Any, answer: str) -> int:
    """Tokens the model must generate for ``answer``: the answer as its template renders it, up to
    and including the end-of-turn token that stops generation."""
    record = ConversationRecord.from_turns([("user", "?"), ("assistant", answer)])
    row = tokenize_for_training(tokenizer, record, max_length=1 << 20)
    if row is None:
        return 0
    answer_ids = [
        token for token, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE_INDEX
    ]
    stops = set(stop_token_ids(tokenizer))
    end = next((k for k, token in enumerate(answer_ids) if token in stops), None)
    return len(answer_ids) if end is None else end + 1


def generate_answers(
    model: Any,
    tokenizer: Any,
    records: Sequence[ConversationRecord],
    max_new_tokens: int,
    batch_size: int,
    *,
    sort_by_length: bool = True,
) -> list[Generation]:
    """Greedy answers to each record's conversation (its final answer left out), each cut at the
    first stop token (see :func:`stop_token_ids`)."""
    import torch

    prompts = [render_prompt(tokenizer, record) for record in records]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    lengths = [len(e) + max_new_tokens for e in encoded]
    if sort_by_length:
        batches = token_batches(by_length(lengths), lengths, batch_size, max(lengths, default=1))
    else:
        batches = [
            list(range(start, min(start + batch_size, len(encoded))))
            for start in range(0, len(encoded), batch_size)
        ]
    order = [i for batch in batches for i in batch]
    stops = stop_token_ids(tokenizer, model)
    stop_set = set(stops)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    device = _device(model)

    def run(indices: Sequence[int]) -> list[Generation]:
        rows = [encoded[i] for i in indices]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, seq in enumerate(rows):  # left padding: every row ends where generation starts
            ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        with torch.inference_mode():
            output = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=stops,
            )
        out = []
        for new in output[:, width:].tolist():
            end = next((k for k, token in enumerate(new) if token in stop_set), None)
            kept = new if end is None else new[:end]
            text = tokenizer.decode(kept, skip_special_tokens=True).strip()
            out.append(
                Generation(
                    text=text, finished=end is not None, new_tokens=len(new) if end is None else end + 1
                )
            )
        return out

    return restore(order, run_batches(batches, run))


# --- log-likelihoods (MMLU) --------------------------------------------------------------------


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's split (``HFLM._encode_pair``, 0.4.x): trailing spaces of the context move to the
    continuation; context+continuation is encoded whole with the tokenizer's own special tokens
    (a BOS for Llama 3, Gemma, Mistral) and the context's tokens are cut off its front."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = _encode(tokenizer, context + continuation)
    context_ids = _encode(tokenizer, context)
    return context_ids, whole[len(context_ids) :]


def _encode(tokenizer: Any, text: str) -> list[int]:
    """``tokenizer.encode`` with its default special tokens, unless the text already starts with
    the BOS text (lm-eval's ``tok_encode``)."""
    bos = tokenizer.bos_token
    add = not (bos and text.startswith(bos))
    return tokenizer(text, add_special_tokens=add)["input_ids"]


def context_length(model: Any, tokenizer: Any, default: int = 2048) -> int:
    """The longest input the model takes, found as lm-eval's ``resolve_max_length`` does: the
    model config's n_positions / max_position_embeddings / n_ctx, else the tokenizer's
    ``model_max_length`` unless it is the 'no limit' sentinel, else ``default``."""
    config = getattr(model, "config", None)
    for attribute in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**9 else default


def continuation_logprobs(
    model: Any,
    pairs: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    max_length: int,
    limit: int | None = None,
) -> list[float]:
    """Summed log-probability of each continuation after its context (lm-eval's loglikelihood).

    The model reads (context + continuation)[:-1]. A request longer than ``limit`` (the model's
    context length) is an error, where lm-eval would cut it from the left without a word.
    Requests that share their input (single-token letters after one context) share one forward
    pass; batches hold up to ``batch_size`` x ``max_length`` tokens; logits are computed only
    where they are read.
    """
    import torch

    inputs = [tuple((ctx + cont)[:-1]) for ctx, cont in pairs]
    limit = limit or max_length
    too_long = [len(seq) for seq in inputs if len(seq) > limit]
    if too_long:
        raise TrainingError(
            f"{len(too_long)} of {len(inputs)} MMLU requests are longer than the model's context of "
            f"{limit} tokens (longest {max(too_long)}): use fewer --mmlu-shots; they are not cut"
        )
    wanted: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for seq, (_ctx, cont) in zip(inputs, pairs, strict=True):
        wanted.setdefault(seq, []).append(tuple(cont))
    unique = list(wanted)
    lengths = [len(seq) for seq in unique]
    batches = token_batches(by_length(lengths), lengths, batch_size, max_length)
    order = [i for batch in batches for i in batch]
    device = _device(model)

    def run(indices: Sequence[int]) -> list[dict[tuple[int, ...], float]]:
        chunk = [unique[i] for i in indices]
        width = max(len(seq) for seq in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        positions: set[int] = set()
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
            longest = max(len(cont) for cont in wanted[seq])
            positions.update(range(len(seq) - longest, len(seq)))
        keep = sorted(positions)
        column = {pos: k for k, pos in enumerate(keep)}
        logits = _logits_at(model, ids.to(device), mask.to(device), keep)
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        out = []
        for row, seq in enumerate(chunk):
            scores: dict[tuple[int, ...], float] = {}
            for cont in wanted[seq]:
                start = len(seq) - len(cont)
                scores[cont] = sum(
                    float(logprobs[row, column[start + k], token]) for k, token in enumerate(cont)
                )
            out.append(scores)
        return out

    by_input = dict(zip((unique[i] for i in order), run_batches(batches, run), strict=True))
    return [by_input[seq][tuple(cont)] for seq, (_ctx, cont) in zip(inputs, pairs, strict=True)]


def _logits_at(model: Any, ids: Any, mask: Any, positions: list[int]) -> Any:
    """Logits at ``positions`` only (``logits_to_keep`` with indices), else all of them."""
    import torch

    with torch.inference_mode():
        try:
            index = torch.tensor(positions, device=ids.device)
            return model(input_ids=ids, attention_mask=mask, logits_to_keep=index).logits
        except TypeError:  # a model class without logits_to_keep
            return model(input_ids=ids, attention_mask=mask).logits[:, positions]


def answer_mmlu(
    model: Any,
    tokenizer: Any,
    questions: Sequence[MmluQuestion],
    shots: dict[str, list[MmluQuestion]],
    batch_size: int,
    max_length: int,
) -> list[int]:
    """The chosen letter index for each question (``max_length`` sizes batches; a prompt may be as
    long as the model's context)."""
    pairs: list[tuple[list[int], list[int]]] = []
    for q in questions:
        context = build_prompt(q, shots.get(q.subject, []))
        pairs.extend(encode_pair(tokenizer, context, continuation) for continuation in CONTINUATIONS)
    logprobs = continuation_logprobs(model, pairs, batch_size, max_length, context_length(model, tokenizer))
    n = len(CONTINUATIONS)
    return [pick_letter(logprobs[i * n : (i + 1) * n]) for i in range(len(questions))]


# --- held-out loss -----------------------------------------------------------------------------


def record_losses(
    model: Any, tokenizer: Any, records: Sequence[ConversationRecord], batch_size: int, max_length: int
) -> list[tuple[float, int] | None]:
    """(summed cross-entropy over assistant tokens, their count) of each record; None for a record
    with no assistant token left within ``max_length``."""
    import torch

    rows = [tokenize_for_training(tokenizer, rec, max_length) for rec in records]
    lengths = [len(r["input_ids"]) if r is not None else 0 for r in rows]
    kept = [i for i in by_length(lengths) if rows[i] is not None]
    batches = token_batches(kept, lengths, batch_size, max_length)
    order = [i for batch in batches for i in batch]
    device = _device(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def run(indices: Sequence[int]) -> list[tuple[float, int]]:
        chunk = [rows[i] for i in indices]
        width = max(len(r["input_ids"]) for r in chunk)  # type: ignore[index]
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, r in enumerate(chunk):
            n = len(r["input_ids"])  # type: ignore[index]
            ids[row, :n] = torch.tensor(r["input_ids"])  # type: ignore[index]
            labels[row, :n] = torch.tensor(r["labels"])  # type: ignore[index]
            mask[row, :n] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        shifted = labels[:, 1:].to(device)
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            shifted.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="none",
        ).reshape(shifted.shape)
        counts = (shifted != IGNORE_INDEX).sum(dim=1)
        return [(float(s), int(c)) for s, c in zip(losses.sum(dim=1).tolist(), counts.tolist(), strict=True)]

    scored = dict(zip(order, run_batches(batches, run), strict=True))
    return [scored.get(i) for i in range(len(records))]


def assistant_loss(
    model: Any, tokenizer: Any, records: Sequence[ConversationRecord], batch_size: int, max_length: int
) -> tuple[float, int]:
    """Mean cross-entropy over assistant tokens (the training objective) and the token count."""
    per_record = [
        r for r in record_losses(model, tokenizer, records, batch_size, max_length) if r is not None
    ]
    total = sum(s for s, _ in per_record)
    count = sum(c for _, c in per_record)
    return (total / count if count else float("nan")), count
