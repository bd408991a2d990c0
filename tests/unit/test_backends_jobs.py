"""Pipeline steps as jobs (mixtune.backends.jobs): what each step asks of a backend, and what the
deployed settings add (the HyperPod launcher, service account, queue; the SageMaker key)."""

from __future__ import annotations

from typing import Any

import pytest

from mixtune import layout
from mixtune.backends import BackendError, get_backend
from mixtune.backends.hyperpod import HyperPodBackend
from mixtune.backends.jobs import job_spec
from mixtune.runs.model import RunConfig
from mixtune.settings import Settings
from mixtune.steps.state import JobSlot, MixOutput

PREPARED = "s3://work/datasets/r/"
MIX = MixOutput(
    mixed_uri="s3://work/runs/r/mix/mixed.jsonl", manifest_uri="s3://work/runs/r/mix/manifest.json"
)
SETTINGS = Settings(work_bucket="work", base_model="tiny", training_image_uri="img:1")


def specs(settings: Settings = SETTINGS, **config: Any) -> dict[str, Any]:
    run = RunConfig.model_validate(config).resolved(settings)
    train = job_spec("r", "train", run, settings, PREPARED, mix=MIX)
    slot = JobSlot(kind="train", job={}, output_uri=train.output_uri)
    return {
        "smoke": job_spec("r", "smoke", run, settings, PREPARED, mix=MIX),
        "train": train,
        "evaluate_tuned": job_spec("r", "evaluate_tuned", run, settings, PREPARED, train=slot),
        "evaluate_baseline": job_spec("r", "evaluate_baseline", run, settings, PREPARED),
    }


def argument(spec: Any, flag: str) -> str:
    return spec.arguments[spec.arguments.index(flag) + 1]


def test_evaluations_are_one_process_on_one_gpu_whatever_the_training_uses() -> None:
    jobs = specs(instance_type="ml.p5.48xlarge", node_count=4, gpus_per_node=8)
    assert (jobs["train"].node_count, jobs["train"].processes_per_node()) == (4, 8)
    for kind in ("evaluate_tuned", "evaluate_baseline"):
        assert jobs[kind].node_count == 1
        assert (jobs[kind].gpus(), jobs[kind].processes_per_node()) == (1, 1), kind


def test_training_gpus_default_to_the_instance_types() -> None:
    jobs = specs(instance_type="ml.g6e.48xlarge", node_count=2)
    assert jobs["train"].gpus() == 8 and jobs["smoke"].gpus() == 8


def test_the_full_run_checkpoints_under_its_run_folder_and_may_be_restarted() -> None:
    jobs = specs(instance_type="ml.p5.48xlarge", node_count=4)
    assert jobs["train"].checkpoint_uri == "s3://work/runs/r/train/checkpoints"
    assert jobs["train"].max_retries > 0
    assert jobs["smoke"].checkpoint_uri == "" and jobs["smoke"].max_retries == 0


def test_kueue_queue_and_priority_come_from_the_run_config_else_the_service() -> None:
    settings = Settings(**{**SETTINGS.model_dump(), "hyperpod_queue": "team-q", "hyperpod_priority": "low"})
    assert {(s.queue, s.priority) for s in specs(settings).values()} == {("team-q", "low")}
    jobs = specs(settings, queue="urgent-q", priority="high")
    assert {(s.queue, s.priority) for s in jobs.values()} == {("urgent-q", "high")}
    assert {(s.queue, s.priority) for s in specs().values()} == {(None, None)}


def test_a_base_model_in_s3_is_passed_to_every_job_which_downloads_it() -> None:
    model = "s3://models/llama-3.1-8b-instruct/"
    for kind, spec in specs(base_model=model).items():
        assert argument(spec, "--base-model") == model, kind
        assert spec.job_environment()["MIXTUNE_INPUT_BASE_MODEL_URI"] == model, kind


def test_the_hyperpod_settings_reach_the_manifest() -> None:
    settings = Settings(
        **{
            **SETTINGS.model_dump(),
            "hyperpod_cluster_name": "c",
            "hyperpod_namespace": "team-a",
            "hyperpod_service_account": "team-a-training",
            "hyperpod_checkpoint_claim": "fsx-claim",
        }
    )
    backend = get_backend("hyperpod", settings)
    assert isinstance(backend, HyperPodBackend)
    manifest = backend.manifest(specs(settings, instance_type="ml.p5.48xlarge", node_count=4)["train"])
    pod = manifest["spec"]["replicaSpecs"][0]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["hyperpodrun"]  # the default launcher
    assert pod["serviceAccountName"] == "team-a-training"
    assert manifest["metadata"]["namespace"] == "team-a"
    assert {
        "name": "checkpoints",
        "persistentVolumeClaim": {"claimName": "fsx-claim", "readOnly": False},
    } in pod["volumes"]
    other = get_backend("hyperpod", Settings(**{**settings.model_dump(), "hyperpod_launcher": "torchrun"}))
    assert isinstance(other, HyperPodBackend)
    with pytest.raises(BackendError, match="torchrun cannot join 4 HyperPod nodes"):
        other.manifest(specs(settings, instance_type="ml.p5.48xlarge", node_count=4)["train"])
    spec = specs(settings, instance_type="ml.p5.48xlarge")["train"]
    assert other.manifest(spec)["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0][
        "command"
    ] == ["torchrun"]


def test_the_launcher_setting_is_read_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("MIXTUNE_HYPERPOD_LAUNCHER", "torchrun")
    assert Settings().hyperpod_launcher == "torchrun"
    monkeypatch.delenv("MIXTUNE_HYPERPOD_LAUNCHER")
    assert Settings().hyperpod_launcher == "hyperpodrun"


def test_the_services_mmlu_source_reaches_evaluate_jobs_of_runs_left_at_auto() -> None:
    settings = Settings(**{**SETTINGS.model_dump(), "mmlu_source": "s3://work/eval/mmlu.jsonl"})
    for kind in ("evaluate_tuned", "evaluate_baseline"):
        assert argument(specs(settings)[kind], "--mmlu-source") == "s3://work/eval/mmlu.jsonl"
        # a run's own source wins; a service without one leaves the job to resolve "auto"
        own = specs(settings, evaluation={"mmlu_source": "s3://mine/mmlu/"})
        assert argument(own[kind], "--mmlu-source") == "s3://mine/mmlu/"
        assert "--mmlu-source" not in specs()[kind].arguments  # the job's default: auto


def test_a_prepare_job_runs_mixtune_prepare_with_the_runs_options_on_one_cpu_process() -> None:
    """Issue 14: the job a dataset too large for Lambda gets: the same image, `mixtune prepare`
    with the run's prepare options (max_tokens from the training length) and --exit-zero, the
    outputs where the Lambda path writes them, no GPU."""
    import json

    from mixtune.backends.jobs import job_spec
    from mixtune.runs.model import RunConfig
    from mixtune.settings import Settings

    settings = Settings(work_bucket="work", training_image_uri="123.dkr.ecr/mixtune:1", hyperpod_queue="q")
    config = RunConfig.model_validate({"train": {"max_length": 512}, "prepare": {"eval_share": 0.2}})
    spec = job_spec(
        "support-0123456789abcdef",
        "prepare",
        config,
        settings,
        "s3://work/datasets/r",
        source_uri="s3://raw/incoming/a.jsonl",
    )
    assert spec.entry_point == "prepare" and spec.module == "mixtune.commands.prepare"
    assert spec.arguments[:3] == ["s3://raw/incoming/a.jsonl", "--out", "s3://work/datasets/r"]
    options = json.loads(spec.arguments[spec.arguments.index("--options") + 1])
    assert options["max_tokens"] == 512 and options["eval_share"] == 0.2
    assert "--exit-zero" in spec.arguments
    assert (spec.node_count, spec.gpus(), spec.processes_per_node()) == (1, 0, 1)
    assert spec.image_uri == "123.dkr.ecr/mixtune:1" and spec.queue == "q"


def test_a_mix_job_reads_the_spec_the_mix_step_wrote_and_decontaminates_against_the_eval_split() -> None:
    from mixtune.backends.jobs import job_spec
    from mixtune.runs.model import RunConfig
    from mixtune.settings import Settings

    settings = Settings(
        work_bucket="work", catalog_uri="s3://work/catalog.yaml", data_job_instance_type="ml.m5.4xlarge"
    )
    spec = job_spec("support-0123456789abcdef", "mix", RunConfig(), settings, "s3://work/datasets/r")
    args = spec.arguments
    assert args[args.index("--domain") + 1] == "s3://work/datasets/r/prepared.jsonl"
    assert args[args.index("--spec") + 1] == "s3://work/runs/support-0123456789abcdef/mix/spec.json"
    assert args[args.index("--out") + 1] == layout.mix_folder("work", "support-0123456789abcdef")
    assert args[args.index("--decontaminate") + 1] == "s3://work/datasets/r/eval.jsonl"
    assert args[args.index("--catalog") + 1] == "s3://work/catalog.yaml"
    assert spec.instance_type == "ml.m5.4xlarge" and spec.gpus_per_node == 0
