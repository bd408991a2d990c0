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

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """The character estimate of a text's length in tokens: ``ceil(len(text) / 4)``."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_record_tokens(texts: Iterable[str]) -> int:
    """The estimate for a whole record: the sum over its texts (system and every turn)."""
    return sum((len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN for text in texts)


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
