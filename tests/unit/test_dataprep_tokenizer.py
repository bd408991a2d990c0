"""The optional tokenizer: its special tokens join the table; the Lambda path never imports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mixtune.dataprep import PrepareOptions, prepare_dataset


def test_preparing_without_a_tokenizer_imports_no_ml_framework(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text('{"question": "q", "answer": "a"}\n')
    code = (
        "import sys\n"
        "from mixtune.dataprep import prepare_dataset\n"
        f"prepare_dataset({str(src)!r}, {str(tmp_path / 'o')!r})\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tokenizer_special_tokens_are_removed_and_tokens_counted(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"[UNK]": 0, "<|special_x|>": 1, "hello": 2, "world": 3}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", additional_special_tokens=["<|special_x|>"]
    )
    folder = tmp_path / "tok"
    tokenizer.save_pretrained(folder)
    src = tmp_path / "d.jsonl"
    src.write_text('{"question": "hello <|special_x|>world", "answer": "hello world hello"}\n')
    report = prepare_dataset(
        str(src), str(tmp_path / "o"), PrepareOptions(tokenizer=str(folder), eval_share=0)
    )
    assert report.sanitize_counts == {"token:<|special_x|>": 1}
    assert report.tokens.method == f"tokenizer:{folder}"
    assert report.tokens.total == 5  # "hello world" (2, the token removed) + "hello world hello" (3)
