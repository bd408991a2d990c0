"""train / evaluate / generate-rehearsal end to end on the tiny random model (seconds each)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from mixtune.evaluation import EvalResult
from mixtune.records import ConversationRecord
from mixtune.sample_data import support_intent_records, write_records
from mixtune_training import evaluate, generate_rehearsal, train
from mixtune_training.models import load_model


def _write_intents(path: Path, n: int, seed: int) -> Path:
    return write_records(support_intent_records(n, seed=seed, system="Classify."), path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, write_mmlu_csvs: Callable[[Path], Path]) -> Path:
    root = tmp_path_factory.mktemp("training")
    _write_intents(root / "train.jsonl", 40, seed=1)
    _write_intents(root / "eval.jsonl", 24, seed=2)
    write_mmlu_csvs(root / "mmlu")
    return root


def _train_tiny(data: Path, out: Path, *flags: str) -> int:
    """`mixtune-train` on the tiny model, as a user would call it."""
    return train.main(["--base-model", "tiny", "--data", str(data), "--output", str(out), *flags])


@pytest.fixture(scope="module")
def trained(workdir: Path) -> Path:
    out = workdir / "run"
    code = _train_tiny(
        workdir / "train.jsonl",
        out,
        "--max-steps",
        "5",
        "--per-device-batch-size",
        "4",
        "--learning-rate",
        "1e-3",
    )
    assert code == 0
    return out


def test_train_five_steps_gives_a_finite_loss_and_metrics(trained: Path) -> None:
    metrics = orjson.loads((trained / "metrics.json").read_bytes())
    assert metrics["steps"] == 5
    assert math.isfinite(metrics["final_loss"])
    assert [point["step"] for point in metrics["loss_curve"]] == [1, 2, 3, 4, 5]
    assert metrics["tokens"] > 0 and metrics["tokens_per_s"] > 0
    assert metrics["config"]["lora_r"] == 16
    progress = [orjson.loads(line) for line in (trained / "progress.jsonl").read_text().splitlines()]
    assert [p["step"] for p in progress] == [1, 2, 3, 4, 5]
    assert (trained / "trainer_state.json").is_file()


def test_adapter_is_saved_as_safetensors_and_reloads(trained: Path) -> None:
    from safetensors.torch import load_file

    adapter = trained / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "tokenizer.json").is_file()
    saved = load_file(adapter / "adapter_model.safetensors")
    assert any("lora_B" in name and tensor.abs().sum() > 0 for name, tensor in saved.items())
    model, _tokenizer = load_model("tiny", adapter=str(trained))
    state = model.state_dict()
    name = next(n for n in saved if "lora_B" in n)
    loaded = next(
        v for k, v in state.items() if k.replace(".default", "").endswith(name.split("base_model.model.")[-1])
    )
    assert (loaded == saved[name]).all()


def test_evaluate_writes_eval_json_with_f1_mmlu_and_general_loss(workdir: Path, trained: Path) -> None:
    out = workdir / "eval"
    code = evaluate.main(
        [
            "--base-model",
            "tiny",
            "--adapter",
            str(trained),
            "--domain-data",
            str(workdir / "eval.jsonl"),
            "--max-new-tokens",
            "6",
            "--mmlu-source",
            str(workdir / "mmlu"),
            "--mmlu-shots",
            "1",
            "--general-data",
            str(workdir / "train.jsonl"),
            "--general-limit",
            "8",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    result = EvalResult.from_json((out / "eval.json").read_bytes())
    assert result.domain is not None and result.domain.task == "classification"
    assert result.domain.classification is not None
    assert 0.0 <= result.domain.classification.macro_f1 <= 1.0
    assert result.mmlu is not None and result.mmlu.n == 6 and result.mmlu.shots == 1
    assert set(result.mmlu.per_subject) == {"anatomy", "virology"}
    assert result.general is not None and math.isfinite(result.general.loss)
    assert result.config["mmlu_shots"] == 1 and len(result.config_hash) == 16


def test_evaluate_base_and_tuned_share_a_config_hash(workdir: Path, trained: Path) -> None:
    common = ["--base-model", "tiny", "--mmlu-source", str(workdir / "mmlu"), "--mmlu-limit-per-subject", "1"]
    assert evaluate.main([*common, "--output", str(workdir / "base.json")]) == 0
    assert (
        evaluate.main(
            [*common, "--adapter", str(trained / "adapter"), "--output", str(workdir / "tuned.json")]
        )
        == 0
    )
    base = EvalResult.from_json((workdir / "base.json").read_bytes())
    tuned = EvalResult.from_json((workdir / "tuned.json").read_bytes())
    assert base.config_hash == tuned.config_hash and tuned.adapter is not None


def test_invalid_record_is_a_one_line_error_naming_the_line(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    good = (workdir / "train.jsonl").read_text().splitlines()[0]
    bad.write_text(good + "\n" + '{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}\n')
    assert train.main(["--base-model", "tiny", "--data", str(bad), "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"{bad} line 2" in err and "assistant" in err


def test_missing_base_model_is_a_clear_error(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-model"
    code = train.main(
        ["--base-model", str(missing), "--data", str(workdir / "train.jsonl"), "--output", str(tmp_path)]
    )
    assert code == 1
    assert "base model not found" in capsys.readouterr().err


def test_out_of_memory_names_the_batch_size(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    import trl

    def oom(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trl.SFTTrainer, "train", oom)
    code = _train_tiny(workdir / "train.jsonl", tmp_path, "--max-steps", "1", "--per-device-batch-size", "64")
    assert code == 1
    assert "per-device batch size 64" in capsys.readouterr().err


def test_config_file_and_flags_combine(workdir: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(f"base_model: tiny\ndata: {workdir / 'train.jsonl'}\nmax_steps: 50\nlora_r: 4\n")
    parsed = train.build_parser().parse_args(["--config", str(config), "--max-steps", "5", "--packing"])
    from mixtune.training_config import TrainConfig
    from mixtune_training.common import config_from_args

    result = config_from_args(TrainConfig, parsed)
    assert (result.max_steps, result.lora_r, result.packing) == (5, 4, True)


def test_packed_training_runs(workdir: Path, tmp_path: Path) -> None:
    code = _train_tiny(
        workdir / "train.jsonl",
        tmp_path,
        *("--max-steps", "2", "--per-device-batch-size", "2", "--packing", "--max-length", "128"),
    )
    assert code == 0
    assert math.isfinite(orjson.loads((tmp_path / "metrics.json").read_bytes())["final_loss"])


def test_generate_rehearsal_writes_converse_records(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(
            orjson.dumps({"id": f"p{i}", "prompt": f"Tell me fact {i}."}).decode() + "\n" for i in range(3)
        )
    )
    out = tmp_path / "rehearsal.jsonl"
    code = generate_rehearsal.main(
        [
            "--base-model",
            "tiny",
            "--prompts",
            str(prompts),
            "--limit",
            "2",
            "--max-new-tokens",
            "4",
            "--keep-truncated",  # a random model's answers never end
            "--output",
            str(out),
        ]
    )
    assert code == 0
    records = [ConversationRecord.from_json_line(line) for line in out.read_text().splitlines()]
    assert [r.turns()[0][1] for r in records] == ["Tell me fact 0.", "Tell me fact 1."]
    assert all(r.final_answer for r in records)
    manifest = orjson.loads((tmp_path / "rehearsal.manifest.json").read_bytes())
    assert manifest["records"] == 2


def test_evaluate_writes_to_s3(workdir: Path, aws_env: None) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="results")
        code = evaluate.main(
            [
                "--base-model",
                "tiny",
                "--mmlu-source",
                str(workdir / "mmlu"),
                "--mmlu-limit-per-subject",
                "1",
                "--output",
                "s3://results/runs/r1",
            ]
        )
        assert code == 0
        body = boto3.client("s3").get_object(Bucket="results", Key="runs/r1/eval.json")["Body"].read()
    assert EvalResult.from_json(body).mmlu is not None


def test_configs_survive_the_trip_through_command_line_flags() -> None:
    from mixtune.training_config import EvalConfig, TrainConfig
    from mixtune_training.common import config_from_args

    train_config = TrainConfig(
        base_model="tiny", data="s3://b/mixed.jsonl", max_steps=5, packing=True, lora_r=8
    )
    parsed = train.build_parser().parse_args(train_config.to_args())
    assert config_from_args(TrainConfig, parsed) == train_config
    eval_config = EvalConfig(
        base_model="tiny", adapter="s3://b/run", labels=["a", "b"], mmlu=False, domain_limit=3
    )
    parsed = evaluate.build_parser().parse_args(eval_config.to_args())
    assert config_from_args(EvalConfig, parsed) == eval_config


def test_merge_folds_the_adapter_into_safetensors_weights_that_score_like_base_plus_adapter(
    trained: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from mixtune_training import merge

    out = tmp_path / "merged"
    assert merge.main(["--base-model", "tiny", "--adapter", str(trained), "--output", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not (out / "adapter_config.json").exists()
    assert orjson.loads((out / "merge.json").read_bytes())["dtype"] == "float32"
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    with_adapter, _tokenizer = load_model("tiny", adapter=str(trained))
    base, _ = load_model("tiny")
    ids = torch.tensor([[5, 17, 42, 99, 3, 250]])
    with torch.no_grad():
        expected = with_adapter(ids).logits
        assert not torch.allclose(base(ids).logits, expected, atol=1e-6)  # the adapter changes the scores
        assert torch.allclose(merged(ids).logits, expected, atol=1e-5)


def test_merge_of_a_missing_adapter_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtune_training import merge

    code = merge.main(
        ["--base-model", "tiny", "--adapter", str(tmp_path / "none"), "--output", str(tmp_path / "o")]
    )
    assert code == 1
    assert "not found" in capsys.readouterr().err
