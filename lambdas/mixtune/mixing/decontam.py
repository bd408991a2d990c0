"""Decontamination: drop training records that overlap an evaluation set.

Texts are normalised (lower case, every run of non-alphanumeric characters becomes one
space) and split into words. A training record is contaminated when any of its texts
shares a word n-gram (default 13 words, the length GPT-3's contamination study used) with
an evaluation text, or when one of its user turns equals an evaluation text after
normalising (this catches short questions, such as intent queries, that have no n-gram).
An n-gram found in many texts of one evaluation set (more than 1 %, at least 10) is
boilerplate, such as an instruction template that every record shares, and is not used.

Evaluation sets: mixtune eval/prepared files (the user turns of each record), CSV files
with a ``question`` (or ``text``/``prompt``) column such as MMLU's, JSON lines with one of
those fields, or a local folder of such files.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
from pydantic import BaseModel

from mixtune import storage
from mixtune.dataprep.errors import DatasetError

_NON_WORD = re.compile(r"[^0-9a-z]+")
_TEXT_FIELDS = ("question", "text", "prompt", "input", "instruction")
_EVAL_SUFFIXES = (".jsonl", ".json", ".csv")


def normalise_words(text: str) -> list[str]:
    """Lower-cased alphanumeric words of a text."""
    return _NON_WORD.sub(" ", text.lower()).split()


def ngrams(words: list[str], n: int) -> Iterator[str]:
    for start in range(len(words) - n + 1):
        yield " ".join(words[start : start + n])


class EvalSetInfo(BaseModel):
    uri: str
    sha256: str
    texts: int


class Decontaminator:
    """The n-grams and short texts of the evaluation sets, and the overlap check."""

    def __init__(self, n: int = 13) -> None:
        self.n = n
        self._grams: set[str] = set()
        self._exact: set[str] = set()
        self.sets: list[EvalSetInfo] = []

    @property
    def ngram_count(self) -> int:
        return len(self._grams)

    def add_texts(self, texts: Iterable[str]) -> int:
        """Add one evaluation set's texts; returns how many had words."""
        count = 0
        seen_in: Counter[str] = Counter()
        for text in texts:
            words = normalise_words(text)
            if not words:
                continue
            count += 1
            self._exact.add(" ".join(words))
            seen_in.update(set(ngrams(words, self.n)))
        boilerplate = max(10, count // 100)
        self._grams.update(gram for gram, texts_with in seen_in.items() if texts_with <= boilerplate)
        return count

    def add_uri(self, uri: str) -> None:
        """Add an evaluation file, or every evaluation file in a local folder."""
        for path in _expand(uri):
            texts = self.add_texts(_eval_texts(path))
            self.sets.append(EvalSetInfo(uri=path, sha256=storage.sha256_of(path), texts=texts))

    def is_contaminated(self, texts: list[str], user_texts: list[str]) -> bool:
        """Whether a training record (all its texts; its user turns) overlaps the eval sets."""
        if self._exact:
            for text in user_texts:
                if " ".join(normalise_words(text)) in self._exact:
                    return True
        if self._grams:
            grams = self._grams
            n = self.n
            for text in texts:
                words = normalise_words(text)
                for start in range(len(words) - n + 1):
                    if " ".join(words[start : start + n]) in grams:
                        return True
        return False


def _expand(uri: str) -> list[str]:
    if not storage.is_s3(uri) and Path(uri).is_dir():
        files = sorted(
            str(p) for p in Path(uri).rglob("*") if p.is_file() and p.suffix.lower() in _EVAL_SUFFIXES
        )
        if not files:
            raise DatasetError(uri, "no evaluation files (.jsonl, .json, .csv) in this folder")
        return files
    if not storage.exists(uri):
        raise DatasetError(uri, "evaluation set does not exist")
    return [uri]


def _eval_texts(uri: str) -> Iterator[str]:
    """The texts of an evaluation set that training data must not contain."""
    raw = storage.read_bytes(uri)
    if uri.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
        fields = reader.fieldnames or []
        column = next((f for f in _TEXT_FIELDS if f in fields), fields[0] if fields else None)
        if column is None:
            return
        for row in reader:
            if row.get(column):
                yield row[column]
        return
    rows: Iterable[object]
    if uri.lower().endswith(".json"):
        loaded = orjson.loads(raw)
        rows = loaded if isinstance(loaded, list) else [loaded]
    else:
        rows = (orjson.loads(line) for line in raw.splitlines() if line.strip())
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DatasetError(uri, "an evaluation row is not a JSON object", number)
        if isinstance(row.get("messages"), list):
            for message in row["messages"]:
                if message.get("role") == "user":
                    yield "".join(block.get("text", "") for block in message.get("content", []))
            continue
        for field in _TEXT_FIELDS:
            if isinstance(row.get(field), str):
                yield row[field]
                break
