"""A record's normalised prompt and its digest: what the split keeps on one side.

Two records whose user turns are the same after normalising (lower case, every run of
characters other than letters and digits becomes one space, trimmed; Unicode texts are
NFKC-normalised and case-folded first) have the same prompt, whatever their answers or
labels: "What is my balance?" and "what is my  balance" are one prompt. A text with no
letter or digit at all (emoji, punctuation) is its own key, unnormalised. The split sends every
record of a prompt to the same side, so no evaluation question is trained on.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence

# Bytes of ASCII text: letters lower-cased, digits kept, every other byte a space.
_ASCII_FOLD = bytes(
    code + 32 if 65 <= code <= 90 else code if 97 <= code <= 122 or 48 <= code <= 57 else 32
    for code in range(256)
)
_NON_WORD = re.compile(r"[\W_]+")


def normalise_prompt(text: str) -> bytes:
    """The normalised form of a text, as UTF-8 (ASCII takes a fast path with the same result)."""
    if text.isascii():
        return b" ".join(text.encode().translate(_ASCII_FOLD).split())
    folded = _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split()).encode()


def prompt_digester(seed: int) -> Callable[[Sequence[tuple[str, str]]], int]:
    """The seeded 64-bit digest of a conversation's normalised user turns."""
    fresh = hashlib.blake2b(digest_size=8, salt=seed.to_bytes(8, "big", signed=True), person=b"prompt").copy
    from_bytes, fold = int.from_bytes, _ASCII_FOLD

    def prompt_digest(turns: Sequence[tuple[str, str]]) -> int:
        if len(turns) == 2:  # the common case: one question, one answer (ASCII inlined: hot)
            text = turns[0][1]
            key = (
                b" ".join(text.encode().translate(fold).split()) if text.isascii() else normalise_prompt(text)
            )
            key = key or text.encode()
        else:
            key = b"\n".join(
                normalise_prompt(text) or text.encode() for role, text in turns if role == "user"
            )
        hasher = fresh()
        hasher.update(key)
        return from_bytes(hasher.digest(), "big")

    return prompt_digest
