from __future__ import annotations

from pathlib import Path

import pytest

from mixtune import storage
from mixtune_training.common import TrainingError
from mixtune_training.models import adapter_folder, resolve_base_model
from mixtune_training.tiny import _train_tokenizer, tiny_model_dir


def test_tiny_resolves_to_a_cached_model_folder() -> None:
    folder = resolve_base_model("tiny")
    assert folder == tiny_model_dir()
    assert (Path(folder) / "config.json").is_file() and (Path(folder) / "tokenizer.json").is_file()


def test_tiny_tokenizer_is_deterministic_and_encodes_any_text() -> None:
    first, second = _train_tokenizer(), _train_tokenizer()
    text = "Émile's card 💳 was lost"
    assert first.get_vocab() == second.get_vocab()
    assert first.decode(first(text, add_special_tokens=False)["input_ids"]) == text


def test_folder_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"no config\.json"):
        resolve_base_model(str(tmp_path))


def test_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(TrainingError, match="base model not found"):
        resolve_base_model("./missing-model")


def test_hub_ids_pass_through() -> None:
    assert resolve_base_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_s3_model_folder_is_downloaded_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("MIXTUNE_CACHE", str(tmp_path / "cache"))
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="models")
        storage.upload_dir(tiny_model_dir(), "s3://models/tiny")
        folder = Path(resolve_base_model("s3://models/tiny"))
    assert folder.is_relative_to(tmp_path / "cache")
    assert (folder / "config.json").is_file()


def test_adapter_folder_accepts_a_train_output_or_the_adapter(tmp_path: Path) -> None:
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    assert adapter_folder(tmp_path) == tmp_path / "adapter"
    assert adapter_folder(tmp_path / "adapter") == tmp_path / "adapter"
    with pytest.raises(TrainingError, match=r"adapter_config\.json"):
        adapter_folder(tmp_path / "adapter" / "nothing")
