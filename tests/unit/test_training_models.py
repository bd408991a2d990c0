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


def test_tiny_output_layer_lets_every_token_become_likely() -> None:
    """LoRA leaves the output layer frozen and the final RMSNorm holds the hidden state at unit
    RMS, so the output weights' scale alone decides how likely any token can get: the tiny model
    must be able to make each token likely, or it can never learn an answer (v1 topped at 1%)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir())
    weight, gain = model.lm_head.weight.detach(), model.model.norm.weight.detach()
    # the unit-RMS hidden state that favours token j most points along its output row (x the norm's gain)
    best = weight * gain
    best = best / best.norm(dim=1, keepdim=True) * weight.shape[1] ** 0.5
    reachable = torch.softmax((best * gain) @ weight.T, dim=1).diagonal()
    assert float(reachable.min()) > 0.5


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


_RACING_RANK = """
import hashlib, json, shutil, sys, time
from pathlib import Path

from mixtune import storage
from mixtune_training import models

source, config_written, report = (Path(a) for a in sys.argv[1:4])


def slow_download(uri, folder):
    # like storage.download_dir: sorted keys, each written as .partial and renamed; slowly
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        partial = target / f".{path.name}.partial"
        shutil.copyfile(path, partial)
        partial.replace(target / path.name)
        if path.name == "config.json":
            config_written.touch()
        time.sleep(0.25)
    return target


storage.download_dir = slow_download
folder = Path(models.resolve_base_model("s3://models/llama"))
# what the rank would load right now
seen = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if not p.name.startswith(".")}
report.write_text(json.dumps(seen))
"""


def test_ranks_racing_for_an_s3_model_all_see_the_complete_folder(tmp_path: Path) -> None:
    """Two ranks of a node resolve the same s3:// model at once; the second starts once the
    first has written config.json. Each must see every file whole, never a partial download."""
    import hashlib
    import json
    import os
    import subprocess
    import sys
    import time

    source = tiny_model_dir()
    expected = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in source.iterdir()
        if not p.name.startswith(".")
    }
    env = {**os.environ, "MIXTUNE_CACHE": str(tmp_path / "cache")}
    script = tmp_path / "rank.py"
    script.write_text(_RACING_RANK)
    signal = tmp_path / "config-written"

    def rank(n: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(script), str(source), str(signal), str(tmp_path / f"rank{n}.json")], env=env
        )

    first = rank(0)
    deadline = time.monotonic() + 60
    while not signal.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    second = rank(1)
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    for n in (0, 1):
        assert json.loads((tmp_path / f"rank{n}.json").read_text()) == expected, f"rank {n}"
