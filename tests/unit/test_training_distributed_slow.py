"""Two processes on this CPU (torchrun, gloo): DDP and FSDP train as one group and save one adapter.

FSDP2 shards run on gloo too, so the adapter save under FSDP (gathered through the trainer on
every rank) is checked here against the DDP run's adapter. About a minute: marked slow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from mixtune.sample_data import support_intent_records, write_records

pytestmark = pytest.mark.slow


def _torchrun(data: Path, out: Path, *flags: str) -> dict[str, object]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    command += [
        "-m",
        "mixtune_training.train",
        "--base-model",
        "tiny",
        "--data",
        str(data),
        "--output",
        str(out),
    ]
    command += ["--global-batch-size", "8", "--per-device-batch-size", "4", "--checkpoint-steps", "3", *flags]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("trained 6 steps") == 1  # rank 0 reports
    return orjson.loads((out / "metrics.json").read_bytes())


def test_ddp_and_fsdp_on_two_processes_train_one_model_and_save_the_same_adapter(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    data = write_records(support_intent_records(48, seed=1, system="Classify."), tmp_path / "train.jsonl")
    ddp = _torchrun(data, tmp_path / "ddp")
    fsdp = _torchrun(data, tmp_path / "fsdp", "--parallelism", "fsdp")
    for metrics in (ddp, fsdp):
        # 48 records, a global batch of 8 over 2 processes: one epoch is 6 steps, not 12
        assert metrics["world_size"] == 2 and metrics["steps"] == 6
        assert metrics["plan"]["global_batch"] == 8 and metrics["plan"]["per_device_batch"] == 4
    tokenised = [p for p in (tmp_path / "train.jsonl.mixtune-tokens").iterdir() if not p.name.startswith(".")]
    assert len(tokenised) == 1  # tokenised once, by rank 0, for both runs and both ranks
    first = load_file(tmp_path / "ddp" / "adapter" / "adapter_model.safetensors")
    second = load_file(tmp_path / "fsdp" / "adapter" / "adapter_model.safetensors")
    assert first.keys() == second.keys() and any("lora_B" in k for k in first)
    for name, tensor in first.items():
        assert tensor.shape == second[name].shape and tensor.numel() > 0, name
        assert torch.allclose(tensor, second[name], atol=1e-5), name
