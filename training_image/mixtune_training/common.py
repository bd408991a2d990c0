"""Shared plumbing of the entry points: config flags, record loading, outputs, one-line errors."""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import types
import typing
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from mixtune import storage
from mixtune.records import ConversationRecord

C = TypeVar("C", bound=BaseModel)


class TrainingError(Exception):
    """A failure the user can fix; reported as one line, never a stack trace."""


# --- config from a file and/or flags -----------------------------------------------------------


def _scalar_type(annotation: Any) -> tuple[Any, bool]:
    """(python type used to parse a flag, whether the field is a list)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if any(typing.get_origin(a) is list for a in args):
            return str, True
        return _scalar_type(args[0])
    if origin is list:
        return str, True
    if origin is typing.Literal:
        return str, False
    return annotation, False


def add_config_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """One ``--flag`` per config field (defaults stay None so the file or the model decides)."""
    parser.add_argument("--config", help="JSON or YAML file with the config; flags override it")
    for name, field in model.model_fields.items():
        flag = "--" + name.replace("_", "-")
        kind, is_list = _scalar_type(field.annotation)
        help_text = field.description or f"default: {field.default}"
        if kind is bool:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif is_list:
            parser.add_argument(flag, dest=name, default=None, help=f"comma-separated; {help_text}")
        else:
            parser.add_argument(
                flag, dest=name, type=kind if kind in (int, float) else str, default=None, help=help_text
            )


def config_from_args(model: type[C], args: argparse.Namespace) -> C:
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        _kind, is_list = _scalar_type(field.annotation)
        if is_list and isinstance(value, str):
            # target_modules accepts one string such as "all-linear" as well as a list
            value = (
                value
                if (name == "target_modules" and "," not in value)
                else [v for v in value.split(",") if v]
            )
        values[name] = value
    try:
        if args.config:
            return model.from_file(args.config, **values)  # type: ignore[attr-defined]
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TrainingError(f"invalid config: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot read config {args.config}: {exc}") from None


def run_main(body: Callable[[], int]) -> int:
    """Run an entry point: TrainingError and missing files become one line on stderr, exit 1."""
    try:
        return body()
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# --- records -----------------------------------------------------------------------------------


def check_record(record: ConversationRecord) -> str | None:
    """Why the record cannot be trained on, or None."""
    roles = [m.role for m in record.messages]
    if not roles:
        return "no messages"
    if roles[0] != "user" or roles[-1] != "assistant":
        return "must start with a user turn and end with an assistant turn"
    if any(a == b for a, b in itertools.pairwise(roles)):
        return "user and assistant turns must alternate"
    return None


def load_records(uri: str, limit: int | None = None) -> list[ConversationRecord]:
    """Converse JSONL records; the first invalid line stops with its file and line number."""
    if not storage.exists(uri):
        raise TrainingError(f"data not found: {uri}")
    records: list[ConversationRecord] = []
    with storage.open_read(uri) as stream:
        for line_no, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                record = ConversationRecord.from_json_line(raw)
            except (ValidationError, orjson.JSONDecodeError) as exc:
                reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not JSON"
                raise TrainingError(f"{uri} line {line_no}: not a Converse record ({reason})") from None
            if problem := check_record(record):
                raise TrainingError(f"{uri} line {line_no}: {problem}")
            records.append(record)
            if limit is not None and len(records) >= limit:
                break
    if not records:
        raise TrainingError(f"{uri}: no records")
    return records


def write_records(records: list[ConversationRecord], uri: str) -> None:
    with storage.open_write(uri) as stream:
        for record in records:
            stream.write(record.to_json_line().encode() + b"\n")


# --- outputs -----------------------------------------------------------------------------------


@contextmanager
def output_folder(uri: str | None) -> Iterator[Path]:
    """A local folder to write into; for ``s3://`` a temporary one uploaded when the block ends."""
    if uri is None:
        raise TrainingError("no --output given")
    if not storage.is_s3(uri):
        path = Path(uri)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="mixtune-out-") as tmp:
        yield Path(tmp)
        storage.upload_dir(tmp, uri)


@contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """A local folder holding ``uri`` (itself when local, a download for ``s3://``)."""
    if not storage.is_s3(uri):
        if not Path(uri).exists():
            raise TrainingError(f"not found: {uri}")
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="mixtune-in-") as tmp:
        storage.download_dir(uri, tmp)
        if not any(Path(tmp).iterdir()):
            raise TrainingError(f"nothing under {uri}")
        yield Path(tmp)


def quiet_progress() -> None:
    """No progress bars in job logs (they flood CloudWatch); the loss goes to progress.jsonl."""
    import datasets
    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices from peft/transformers
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def dump_json(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
