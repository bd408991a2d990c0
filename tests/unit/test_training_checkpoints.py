"""Checkpoints and resume: a killed training restarts at its last checkpoint and ends where an
uninterrupted run ends; checkpoints and tokenised data travel through S3 between machines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from mixtune.sample_data import support_intent_records, write_records
from mixtune.training_config import TrainConfig
from mixtune_training import train
from mixtune_training.checkpoints import SAGEMAKER_CHECKPOINT_DIR, checkpoint_place

# A training that dies (SIGKILL, as a lost node or a preempted instance would) right after its
# first checkpoint is complete.
_KILLED_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
from mixtune_training import checkpoints, train

make_sync = checkpoints.sync_callback


def sync_then_die(place):
    sync = make_sync(place)
    base = type(sync)

    class Dying(base):
        def on_save(self, args, state, control, **kwargs):
            base.on_save(self, args, state, control, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

    return Dying()


checkpoints.sync_callback = sync_then_die
sys.exit(train.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_records(
        support_intent_records(24, seed=3, system="Classify."),
        tmp_path_factory.mktemp("ckpt") / "train.jsonl",
    )


def _args(data: Path, out: Path | str, *extra: str) -> list[str]:
    return [
        *("--base-model", "tiny", "--data", str(data), "--output", str(out)),
        *("--max-steps", "6", "--checkpoint-steps", "2", "--per-device-batch-size", "4"),
        *("--learning-rate", "1e-3", "--seed", "7", *extra),
    ]


def _adapter(out: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(out / "adapter" / "adapter_model.safetensors")


class _Crash(RuntimeError):
    """Stands for a lost node: raised right after the first checkpoint is complete."""


def _crash_after_first_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from mixtune_training import checkpoints

    make_sync = checkpoints.sync_callback

    def sync_then_crash(place):  # type: ignore[no-untyped-def]
        sync = make_sync(place)
        base = type(sync)

        class Crashing(base):  # type: ignore[misc, valid-type]
            def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
                base.on_save(self, args, state, control, **kwargs)
                raise _Crash(f"lost after step {state.global_step}")

        return Crashing()

    monkeypatch.setattr(checkpoints, "sync_callback", sync_then_crash)


def _assert_resumed_like_the_whole_run(whole: Path, resumed: Path) -> None:
    import torch

    metrics = orjson.loads((resumed / "metrics.json").read_bytes())
    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 6
    # the curve holds the first run's steps (restored from the checkpoint) and matches the whole run's
    assert metrics["loss_curve"] == orjson.loads((whole / "metrics.json").read_bytes())["loss_curve"]
    assert [p["step"] for p in metrics["loss_curve"]] == [1, 2, 3, 4, 5, 6]
    progress = [orjson.loads(line)["step"] for line in (resumed / "progress.jsonl").read_text().splitlines()]
    assert progress == [1, 2, 3, 4, 5, 6]  # the first run's lines are kept
    first, second = _adapter(whole), _adapter(resumed)
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def test_a_crashed_training_resumes_at_its_checkpoint_and_ends_like_an_uninterrupted_one(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert train.main(_args(data, tmp_path / "whole")) == 0
    crashed = tmp_path / "crashed"
    with monkeypatch.context() as patch:
        _crash_after_first_checkpoint(patch)
        with pytest.raises(_Crash):
            train.main(_args(data, crashed))
    assert not (crashed / "adapter").exists()
    assert orjson.loads((crashed / "checkpoints" / "latest.json").read_bytes())["step"] == 2
    assert train.main(_args(data, crashed)) == 0  # the restart: same command, same output
    _assert_resumed_like_the_whole_run(tmp_path / "whole", crashed)


@pytest.mark.slow
def test_a_killed_training_resumes_at_its_checkpoint_and_ends_like_an_uninterrupted_one(
    data: Path, tmp_path: Path
) -> None:
    """The same with SIGKILL in a child process, as a preempted instance dies (about 40 s of CPU)."""
    assert train.main(_args(data, tmp_path / "whole")) == 0
    killed = tmp_path / "killed"
    script = tmp_path / "dying.py"
    script.write_text(_KILLED_AFTER_FIRST_CHECKPOINT)
    run = subprocess.run([sys.executable, str(script), *_args(data, killed)], capture_output=True, text=True)
    assert run.returncode == -9, run.stderr[-2000:]
    assert not (killed / "adapter").exists()
    assert orjson.loads((killed / "checkpoints" / "latest.json").read_bytes())["step"] == 2
    assert train.main(_args(data, killed)) == 0  # the restart: same command, same output
    _assert_resumed_like_the_whole_run(tmp_path / "whole", killed)


def test_checkpoints_sync_to_s3_and_a_new_machine_resumes_from_there(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="work")
        monkeypatch.setenv("MIXTUNE_CACHE", str(tmp_path / "machine-1"))
        first = ["--max-steps", "4", "--checkpoint-uri", "s3://work/runs/r1/checkpoints"]
        assert train.main([*_args(data, tmp_path / "one"), *first]) == 0
        s3 = boto3.client("s3")
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="work", Prefix="runs/r1/")["Contents"]}
        assert "runs/r1/checkpoints/checkpoint-4/adapter_model.safetensors" in keys
        assert "runs/r1/checkpoints/checkpoint-2/optimizer.pt" in keys
        pointer = s3.get_object(Bucket="work", Key="runs/r1/checkpoints/latest.json")["Body"].read()
        assert orjson.loads(pointer) == {"step": 4, "folder": "checkpoint-4"}

        # another machine, nothing local: the job's environment names the checkpoint URI
        monkeypatch.setenv("MIXTUNE_CACHE", str(tmp_path / "machine-2"))
        monkeypatch.setenv("MIXTUNE_CHECKPOINT_URI", "s3://work/runs/r1/checkpoints")
        assert train.main(_args(data, "s3://work/runs/r1/train")) == 0
        metrics = orjson.loads(s3.get_object(Bucket="work", Key="runs/r1/train/metrics.json")["Body"].read())
    assert metrics["resumed_from_step"] == 4 and metrics["steps"] == 6


def test_a_local_checkpoint_the_remote_does_not_name_is_never_resumed(tmp_path: Path, aws_env: None) -> None:
    """Another run's leftover under the same job name (a tiny model's, say) on this machine, and
    a remote without checkpoints: training starts from scratch."""
    import boto3
    from moto import mock_aws

    from mixtune_training.checkpoints import CheckpointPlace, newest_checkpoint

    local = tmp_path / "cache" / "checkpoints"
    (local / "checkpoint-2").mkdir(parents=True)
    (local / "latest.json").write_bytes(orjson.dumps({"step": 2, "folder": "checkpoint-2"}))
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="work")
        place = CheckpointPlace(local, "s3://work/runs/r1/train/checkpoints")
        assert newest_checkpoint(place) is None
        assert newest_checkpoint(CheckpointPlace(local, None)) == local / "checkpoint-2"  # durable folder


def test_tokenised_s3_data_is_shared_with_other_machines_instead_of_tokenised_again(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    import boto3
    from moto import mock_aws

    from mixtune_training import data as data_module
    from mixtune_training.models import load_tokenizer

    tokenizer = load_tokenizer("tiny")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="work")
        boto3.client("s3").upload_file(str(data), "work", "mix/mixed.jsonl")
        monkeypatch.setenv("MIXTUNE_CACHE", str(tmp_path / "node-1"))
        first, stats = data_module.tokenized_dataset("s3://work/mix/mixed.jsonl", tokenizer, 128)
        listed = boto3.client("s3").list_objects_v2(Bucket="work", Prefix="mix/mixed.jsonl.mixtune-tokens/")
        assert any(o["Key"].endswith("/meta.json") for o in listed["Contents"])

        def no_tokenising(*args: object, **kwargs: object) -> None:
            raise AssertionError("tokenised again")

        monkeypatch.setattr(data_module, "build_rows", no_tokenising)
        monkeypatch.setenv("MIXTUNE_CACHE", str(tmp_path / "node-2"))
        second, stats_again = data_module.tokenized_dataset("s3://work/mix/mixed.jsonl", tokenizer, 128)
    assert stats_again == stats and second["input_ids"] == first["input_ids"]


def test_local_tokenised_cache_is_reused_and_keyed_by_max_length(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mixtune_training import data as data_module
    from mixtune_training.models import load_tokenizer

    copy = tmp_path / "mix.jsonl"
    copy.write_bytes(data.read_bytes())
    tokenizer = load_tokenizer("tiny")
    data_module.tokenized_dataset(str(copy), tokenizer, 128)
    cached = [p for p in (tmp_path / "mix.jsonl.mixtune-tokens").iterdir() if not p.name.startswith(".")]
    assert len(cached) == 1 and (cached[0] / "meta.json").is_file()
    calls = []
    real = data_module.build_rows
    monkeypatch.setattr(data_module, "build_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    data_module.tokenized_dataset(str(copy), tokenizer, 128)
    assert calls == []
    data_module.tokenized_dataset(str(copy), tokenizer, 64)
    assert calls == [1]


def test_checkpoint_place_follows_the_documented_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIXTUNE_CHECKPOINT_URI", raising=False)
    monkeypatch.delenv("MIXTUNE_CHECKPOINT_DIR", raising=False)
    absent = tmp_path / "no-sagemaker"
    monkeypatch.delenv("TRAINING_JOB_NAME", raising=False)
    local = checkpoint_place(TrainConfig(), str(tmp_path / "out"), sagemaker_dir=absent)
    assert (local.local, local.remote) == (tmp_path / "out" / "checkpoints", None)
    sagemaker_dir = tmp_path / "opt-ml-checkpoints"
    sagemaker_dir.mkdir()
    monkeypatch.setenv("TRAINING_JOB_NAME", "r1-train")  # what SageMaker sets in its jobs
    on_sagemaker = checkpoint_place(TrainConfig(), "s3://work/runs/r1/train/", sagemaker_dir=sagemaker_dir)
    assert (on_sagemaker.local, on_sagemaker.remote) == (sagemaker_dir, None)  # SageMaker syncs it
    monkeypatch.delenv("TRAINING_JOB_NAME")
    # the image has the folder everywhere; on HyperPod it is not synced, so S3 is
    on_hyperpod = checkpoint_place(TrainConfig(), "s3://work/runs/r1/train/", sagemaker_dir=sagemaker_dir)
    assert on_hyperpod.remote == "s3://work/runs/r1/train/checkpoints"
    fsx = checkpoint_place(TrainConfig(checkpoint_uri="/fsx/runs/r1"), "s3://w/o", sagemaker_dir=absent)
    assert (fsx.local, fsx.remote) == (Path("/fsx/runs/r1"), None)
    elsewhere = checkpoint_place(TrainConfig(), "s3://work/runs/r1/train/", sagemaker_dir=absent)
    assert elsewhere.remote == "s3://work/runs/r1/train/checkpoints"
    monkeypatch.setenv("MIXTUNE_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.setenv("MIXTUNE_CHECKPOINT_URI", "s3://work/ckpt")
    from_env = checkpoint_place(TrainConfig(), None, sagemaker_dir=absent)
    assert (from_env.local, from_env.remote) == (tmp_path / "ckpt", "s3://work/ckpt")
    assert str(SAGEMAKER_CHECKPOINT_DIR) == "/opt/ml/checkpoints"  # SageMaker's CheckpointConfig default
