"""The tokenised training set: built once (rank 0), cached beside the data, shared by every rank.

The cache key covers the data (content hash of a local file; ETag and size of an S3 object),
the tokenizer (its full definition and chat template), ``max_length``, ``max_records`` and the
tokenisation code's version, so a smoke run and the full run on the same mix share one
tokenisation, and a change to any input makes a new one.

Where it lives: ``<data>.mixtune-tokens/<key>/`` beside a local data file (or under
``$MIXTUNE_CACHE/tokens`` when that folder is read-only); for ``s3://`` data, a node-local copy
under ``$MIXTUNE_CACHE/tokens/<key>`` and a shared one at ``<data URI>.mixtune-tokens/<key>/``
that the other nodes (and later jobs) download instead of tokenising again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mixtune import storage
from mixtune_training.cache import COMPLETE_MARKER, fill_once, is_complete
from mixtune_training.common import TrainingError, load_records
from mixtune_training.distributed import Ranks, main_process_first
from mixtune_training.plan import DataStats
from mixtune_training.tiny import cache_root

TOKENS_VERSION = "2"  # whole-text tokenisation, labels by character spans
CHUNK = 4096
META = "meta.json"


@dataclass(frozen=True)
class TokenCache:
    local: Path
    remote: str | None


def data_fingerprint(uri: str) -> str:
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        head = storage.s3_client().head_object(Bucket=bucket, Key=key)
        return f"{uri}|{head.get('ETag', '')}|{head.get('ContentLength', 0)}"
    digest = hashlib.sha256()
    with open(uri, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else orjson.dumps(tokenizer.get_vocab()).decode()
    parts = [definition, tokenizer.chat_template or "", repr(sorted(tokenizer.special_tokens_map.items()))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def cache_key(data_uri: str, tokenizer: Any, max_length: int, max_records: int | None) -> str:
    parts = [TOKENS_VERSION, data_fingerprint(data_uri), tokenizer_fingerprint(tokenizer), str(max_length)]
    parts.append(str(max_records))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def cache_location(data_uri: str, key: str) -> TokenCache:
    if storage.is_s3(data_uri):
        return TokenCache(cache_root().parent / "tokens" / key, f"{data_uri}.mixtune-tokens/{key}")
    path = Path(data_uri)
    if os.access(path.parent, os.W_OK):
        return TokenCache(path.parent / f"{path.name}.mixtune-tokens" / key, None)
    return TokenCache(cache_root().parent / "tokens" / key, None)


def build_rows(records: list[Any], tokenizer: Any, max_length: int) -> tuple[Any, DataStats]:
    """A ``datasets.Dataset`` (input_ids, labels, length) and its statistics; records that keep no
    assistant token within ``max_length`` are dropped and counted."""
    from datasets import Dataset, concatenate_datasets

    from mixtune_training.chat import tokenize_records

    parts = []
    kept = tokens = 0
    started = time.monotonic()
    for start in range(0, len(records), CHUNK):
        rows = [row for row in tokenize_records(tokenizer, records[start : start + CHUNK], max_length) if row]
        if rows:
            lengths = [len(row["input_ids"]) for row in rows]
            parts.append(
                Dataset.from_dict(
                    {
                        "input_ids": [row["input_ids"] for row in rows],
                        "labels": [row["labels"] for row in rows],
                        "length": lengths,
                    }
                )
            )
            kept += len(rows)
            tokens += sum(lengths)
        done = min(start + CHUNK, len(records))
        if len(records) > CHUNK:
            print(
                f"tokenised {done:,}/{len(records):,} records ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    if not parts:
        raise TrainingError(f"no record keeps an assistant token within max_length={max_length}")
    dataset = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    return dataset, DataStats(records=kept, tokens=tokens, dropped=len(records) - kept)


def _save(dataset: Any, stats: DataStats, folder: Path) -> None:
    dataset.save_to_disk(str(folder / "dataset"))
    meta = {
        "records": stats.records,
        "tokens": stats.tokens,
        "dropped": stats.dropped,
        "version": TOKENS_VERSION,
    }
    (folder / META).write_bytes(orjson.dumps(meta))


def _load(folder: Path) -> tuple[Any, DataStats]:
    from datasets import load_from_disk

    meta = orjson.loads((folder / META).read_bytes())
    stats = DataStats(records=meta["records"], tokens=meta["tokens"], dropped=meta["dropped"])
    return load_from_disk(str(folder / "dataset")), stats


def tokenized_dataset(
    data_uri: str, tokenizer: Any, max_length: int, max_records: int | None = None, cache: bool = True
) -> tuple[Any, DataStats]:
    """The tokenised records of ``data_uri``: from the cache when there is one, else tokenised
    by rank 0 (and cached) while the other ranks wait for it."""
    if not storage.exists(data_uri):
        raise TrainingError(f"data not found: {data_uri}")
    if not cache:
        return build_rows(load_records(data_uri, limit=max_records), tokenizer, max_length)
    location = cache_location(data_uri, cache_key(data_uri, tokenizer, max_length, max_records))
    with main_process_first():
        folder = _ensure(location, data_uri, tokenizer, max_length, max_records)
    return _load(folder)


def _ensure(
    location: TokenCache, data_uri: str, tokenizer: Any, max_length: int, max_records: int | None
) -> Path:
    if is_complete(location.local):
        return location.local
    remote_marker = storage.join(location.remote, META) if location.remote else None
    if remote_marker and storage.exists(remote_marker):
        return fill_once(location.local, lambda folder: storage.download_dir(location.remote, folder))

    def tokenise(folder: Path) -> None:
        dataset, stats = build_rows(load_records(data_uri, limit=max_records), tokenizer, max_length)
        _save(dataset, stats, folder)

    folder = fill_once(location.local, tokenise, what="tokenised data")
    if location.remote and Ranks.from_env().is_main:
        try:
            for path in sorted(
                p for p in folder.rglob("*") if p.is_file() and p.name not in (META, COMPLETE_MARKER)
            ):
                storage.copy(str(path), storage.join(location.remote, path.relative_to(folder).as_posix()))
            storage.copy(str(folder / META), remote_marker)  # last: marks the shared copy complete
        except Exception as error:  # best effort: the node-local copy serves this job either way
            print(
                f"warning: could not share the tokenised data at {location.remote}: {error}", file=sys.stderr
            )
    return folder
