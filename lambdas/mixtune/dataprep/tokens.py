"""Token counting: the one documented character estimate, or a real tokenizer on request.

Without a tokenizer mixtune estimates **one token per four characters, rounded up, per
text** (``ceil(len(text) / 4)``). For English prose and code with BPE tokenizers of the
Llama/Qwen/SmolLM families this over-counts slightly, which is the safe side for a maximum
length rule. Mixing uses the same function, so budgets agree across the system.

A real tokenizer is only loaded when one is asked for (``PrepareOptions.tokenizer``): it
imports ``transformers`` lazily, from a local folder only, and is never used on the Lambda
path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

CHARS_PER_TOKEN = 4

# The report counts kept records longer than each of these (a user chooses max_length by them).
REPORTED_LENGTHS = (1024, 2048, 4096, 8192)

Turns = Sequence[tuple[str, str]]
ConversationCounter = Callable[[str | None, Turns], int]


def estimate_tokens(text: str) -> int:
    """The character estimate of a text's length in tokens: ``ceil(len(text) / 4)``."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_record_tokens(texts: Iterable[str]) -> int:
    """The estimate for a whole record: the sum over its texts (system and every turn)."""
    return sum((len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN for text in texts)


def estimate_conversation_tokens(system: str | None, turns: Turns) -> int:
    """The estimate for a conversation: its system prompt (if any) plus every turn."""
    size = (len(system) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN if system else 0
    for _, text in turns:
        size += (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
    return size


def count_over(over: dict[int, int], tokens: int) -> None:
    """Count a record of ``tokens`` tokens in ``over`` (records longer than each reported length)."""
    for length in REPORTED_LENGTHS:
        if tokens <= length:
            return
        over[length] += 1


def conversation_counter(count: Callable[[str], int]) -> ConversationCounter:
    """A conversation's length in tokens from a per-text counter (the estimate's own is fastest)."""
    if count is estimate_tokens:
        return estimate_conversation_tokens

    def count_conversation(system: str | None, turns: Turns) -> int:
        return sum(count(text) for _, text in turns) + (count(system) if system else 0)

    return count_conversation


def token_counter(tokenizer: str | None) -> tuple[Callable[[str], int], str]:
    """The per-text counter for ``PrepareOptions.tokenizer`` and its name for the report."""
    if tokenizer:
        return tokenizer_counter(tokenizer), f"tokenizer:{tokenizer}"
    return estimate_tokens, "estimate"


@lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str) -> Any:
    """A Hugging Face tokenizer from a local folder (never the hub). Imports transformers lazily."""
    try:
        from transformers import AutoTokenizer  # lazy: only the CLI/training side has it
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("a tokenizer needs the 'train' extra: pip install 'mixtune[train]'") from exc
    try:
        return AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    except Exception as exc:
        raise RuntimeError(f"cannot load tokenizer {name_or_path!r} from a local folder: {exc}") from exc


def tokenizer_counter(name_or_path: str) -> Callable[[str], int]:
    """A function counting a text's tokens with the named tokenizer (no special tokens added)."""
    tokenizer = load_tokenizer(name_or_path)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


def tokenizer_special_tokens(name_or_path: str) -> list[str]:
    """Every special token string of the named tokenizer, for the sanitizer's table."""
    tokenizer = load_tokenizer(name_or_path)
    tokens = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for added in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values():
        if getattr(added, "special", False):
            tokens.add(str(added.content))
    return sorted(token for token in tokens if token and token.strip())
