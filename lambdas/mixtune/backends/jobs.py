"""Turn a pipeline step (prepare, mix, smoke, train, evaluate baseline/tuned) into a backend
JobSpec (pure)."""

from __future__ import annotations

from typing import Any

from mixtune import layout, storage
from mixtune.backends.base import JobSpec, job_name_for
from mixtune.runs.model import RunConfig
from mixtune.settings import Settings
from mixtune.steps.state import JobKind, JobSlot, MixOutput
from mixtune.training_config import EvalConfig, TrainConfig

# Restarts of the full training job after infrastructure failures; it resumes from its checkpoints.
TRAIN_MAX_RETRIES = 2
ENTRY_POINTS: dict[str, str] = {
    "prepare": "prepare",
    "mix": "mix",
    "smoke": "train",
    "train": "train",
    "evaluate_baseline": "evaluate",
    "evaluate_tuned": "evaluate",
}


def base_model_of(config: RunConfig, settings: Settings) -> str:
    return config.base_model or settings.base_model


def backend_of(config: RunConfig, settings: Settings) -> str:
    return config.backend or settings.default_backend


def catalog_of(config: RunConfig, settings: Settings) -> str:
    """The general-data catalog of a run's mix ("" = none: the mix is all domain data)."""
    return str(config.mix.get("catalog_uri") or settings.catalog_uri or "")


def train_config(
    kind: JobKind, config: RunConfig, settings: Settings, prepared_uri: str, mix: MixOutput, output_uri: str
) -> TrainConfig:
    update: dict[str, Any] = {
        "base_model": base_model_of(config, settings),
        "data": mix.mixed_uri,
        "eval_data": layout.eval_split(prepared_uri),
        "output": output_uri,
    }
    if kind == "smoke":
        # The smoke run proves the job starts and steps; an eval-loss pass would dwarf it.
        update["max_steps"] = config.smoke_steps
        update["eval_data"] = None
    return config.train.model_copy(update=update)


def eval_config(
    kind: JobKind,
    config: RunConfig,
    settings: Settings,
    prepared_uri: str,
    output_uri: str,
    train: JobSlot | None = None,
) -> EvalConfig:
    adapter = None
    if kind == "evaluate_tuned":
        if train is None:
            raise ValueError("evaluating the tuned model needs the training job's output")
        adapter = layout.adapter(train.output_uri)
    return config.evaluation.model_copy(
        update={
            "base_model": base_model_of(config, settings),
            "adapter": adapter,
            "output": output_uri,
            "domain_data": config.evaluation.domain_data or layout.eval_split(prepared_uri),
            "mmlu_source": mmlu_source_of(config, settings),
        }
    )


def mmlu_source_of(config: RunConfig, settings: Settings) -> str:
    """The run's MMLU source, else the service's (``MIXTUNE_MMLU_SOURCE``) for a run left at
    ``auto``: on AWS the job has no repository beside it, so the service may point it at S3."""
    source = config.evaluation.mmlu_source
    return settings.mmlu_source if source == "auto" and settings.mmlu_source else source


def prepare_arguments(source_uri: str, prepared_uri: str, config: RunConfig) -> list[str]:
    """``mixtune prepare`` as the prepare job runs it: the run's own options, the outputs where
    the Lambda path would write them, and exit code 0 for a rejected dataset (the verdict is
    in report.json, which PrepareConclude reads)."""
    options = config.prepare_options().model_dump_json(exclude_defaults=True)
    return [source_uri, "--out", prepared_uri, "--options", options, "--exit-zero"]


def mix_arguments(prepared_uri: str, mix_folder: str, catalog_uri: str) -> list[str]:
    """``mixtune mix`` as the mix job runs it: the spec the Mix step wrote (layout.mix_spec)."""
    args = ["--domain", layout.prepared_data(prepared_uri), "--spec", layout.mix_spec(mix_folder)]
    args += ["--out", mix_folder, "--decontaminate", layout.eval_split(prepared_uri)]
    return [*args, "--catalog", catalog_uri] if catalog_uri else args


def job_spec(
    run_id: str,
    kind: JobKind,
    config: RunConfig,
    settings: Settings,
    prepared_uri: str,
    mix: MixOutput | None = None,
    train: JobSlot | None = None,
    source_uri: str = "",
) -> JobSpec:
    """The JobSpec of one step of a run."""
    output_uri = layout.run_folder(settings.work_bucket, run_id, kind)
    if kind in ("prepare", "mix"):
        return data_job_spec(run_id, kind, config, settings, prepared_uri, output_uri, source_uri)
    if ENTRY_POINTS[kind] == "train":
        if mix is None:
            raise ValueError(f"the {kind} step needs the mix step's output")
        training = train_config(kind, config, settings, prepared_uri, mix, output_uri)
        args = training.to_args()
        inputs = {"data": mix.mixed_uri, "eval_data": training.eval_data or ""}
    else:
        evaluation = eval_config(kind, config, settings, prepared_uri, output_uri, train)
        args = evaluation.to_args()
        inputs = {"domain_data": evaluation.domain_data or ""}
        if evaluation.adapter:
            inputs["adapter"] = evaluation.adapter
    base_model = base_model_of(config, settings)
    if storage.is_s3(base_model):
        inputs["base_model"] = base_model  # a folder of weights the job downloads (no hub needed)
    # The full run trains on every node; the smoke run and the evaluations need one.
    full = kind == "train"
    spec: dict[str, Any] = {
        "job_name": job_name_for(run_id, kind.replace("_", "-")),
        "entry_point": ENTRY_POINTS[kind],
        "arguments": args,
        "image_uri": settings.training_image_uri,
        "node_count": config.node_count if full else 1,
        "input_uris": {k: v for k, v in inputs.items() if v},
        "output_uri": output_uri,
        "max_runtime_s": config.max_runtime_s or settings.max_runtime_s,
        "environment": {"MIXTUNE_RUN_ID": run_id, "MIXTUNE_STEP": kind},
        "queue": config.queue or settings.hyperpod_queue or None,
        "priority": config.priority or settings.hyperpod_priority or None,
    }
    if full:
        # A restarted job (node failure, HyperPod auto-resume, SageMaker retry) resumes from here.
        spec["checkpoint_uri"] = layout.checkpoints(output_uri)
        spec["max_retries"] = TRAIN_MAX_RETRIES
    if config.instance_type:
        spec["instance_type"] = config.instance_type
    if config.gpus_per_node is not None and ENTRY_POINTS[kind] == "train":
        # Evaluation is one process on one GPU whatever the training used.
        spec["gpus_per_node"] = config.gpus_per_node
    return JobSpec.model_validate(spec)


def data_job_spec(
    run_id: str,
    kind: JobKind,
    config: RunConfig,
    settings: Settings,
    prepared_uri: str,
    output_uri: str,
    source_uri: str,
) -> JobSpec:
    """A prepare or mix job: one node, no GPU, the data job instance type where one is set."""
    if kind == "prepare":
        if not source_uri:
            raise ValueError("the prepare step needs the dataset's source_uri")
        args = prepare_arguments(source_uri, prepared_uri, config)
        inputs = {"source": source_uri}
    else:
        catalog = catalog_of(config, settings)
        args = mix_arguments(prepared_uri, output_uri, catalog)
        inputs = {"domain": layout.prepared_data(prepared_uri), "catalog": catalog}
    spec: dict[str, Any] = {
        "job_name": job_name_for(run_id, kind),
        "entry_point": ENTRY_POINTS[kind],
        "arguments": args,
        "image_uri": settings.training_image_uri,
        "node_count": 1,
        "gpus_per_node": 0,
        "input_uris": {k: v for k, v in inputs.items() if v},
        "output_uri": output_uri,
        "max_runtime_s": config.max_runtime_s or settings.max_runtime_s,
        "environment": {"MIXTUNE_RUN_ID": run_id, "MIXTUNE_STEP": kind},
        "queue": config.queue or settings.hyperpod_queue or None,
        "priority": config.priority or settings.hyperpod_priority or None,
    }
    instance_type = settings.data_job_instance_type or config.instance_type
    if instance_type:
        spec["instance_type"] = instance_type
    return JobSpec.model_validate(spec)
