"""Where a run's files live in the work bucket, and what they are called.

Every handler, the training image and the demo take these names from here::

    s3://<work>/datasets/<run id>/   prepared.jsonl  eval.jsonl  rejected.jsonl  report.json
    s3://<work>/runs/<run id>/mix/   mixed.jsonl  manifest.json  (spec.json: a mix run as a job)
    s3://<work>/runs/<run id>/<step>/  (smoke, train, evaluate_baseline, evaluate_tuned; prepare: a prepare job's own files)
        train and smoke:   adapter/  metrics.json  progress.jsonl  checkpoints/ (train)
        evaluations:       eval.json
    s3://<work>/reports/<run id>/    report.html  report.md  summary.json

Reports have a prefix of their own, apart from the data: the identity that signs their links
may read ``reports/`` and nothing else, so a link can never reach dataset text.

A re-evaluation run reads the prepared folder of the run it re-scores, so functions that
name a file inside a folder take the folder's URI, not a run id.
"""

from __future__ import annotations

from mixtune import storage

# data preparation
PREPARED = "prepared.jsonl"
EVAL_SPLIT = "eval.jsonl"
REJECTED = "rejected.jsonl"
PREPARE_REPORT = "report.json"
# mixing
MIXED = "mixed.jsonl"
MIX_MANIFEST = "manifest.json"
MIX_SPEC = "spec.json"  # the resolved mix spec a mix job reads
# training and evaluation jobs
ADAPTER = "adapter"
TRAIN_METRICS = "metrics.json"
PROGRESS = "progress.jsonl"
CHECKPOINTS = "checkpoints"
EVAL_RESULT = "eval.json"
# the run's report, written when its outcome is announced
REPORTS = "reports"
REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
REPORT_SUMMARY = "summary.json"
# What the report reads (key patterns of the work bucket, for the writer's IAM grant).
REPORT_INPUT_KEYS = (
    f"datasets/*/{PREPARE_REPORT}",
    f"runs/*/{MIX_MANIFEST}",
    f"runs/*/{TRAIN_METRICS}",
    f"runs/*/{PROGRESS}",
    f"runs/*/{EVAL_RESULT}",
)


def dataset_folder(work_bucket: str, run_id: str) -> str:
    """Where a run's prepared data goes."""
    return f"s3://{work_bucket}/datasets/{run_id}/"


def run_folder(work_bucket: str, run_id: str, part: str) -> str:
    """A folder of the run's outputs: ``mix`` or a step's name."""
    return f"s3://{work_bucket}/runs/{run_id}/{part}/"


def mix_folder(work_bucket: str, run_id: str) -> str:
    return run_folder(work_bucket, run_id, "mix")


def report_folder(work_bucket: str, run_id: str) -> str:
    """Where a run's report goes: a prefix apart from its data (see the module's docstring)."""
    return f"s3://{work_bucket}/{REPORTS}/{run_id}/"


def prepared_data(dataset: str) -> str:
    return storage.join(dataset, PREPARED)


def eval_split(dataset: str) -> str:
    return storage.join(dataset, EVAL_SPLIT)


def prepare_report(dataset: str) -> str:
    return storage.join(dataset, PREPARE_REPORT)


def mixed_data(mix: str) -> str:
    return storage.join(mix, MIXED)


def mix_manifest(mix: str) -> str:
    return storage.join(mix, MIX_MANIFEST)


def mix_spec(mix: str) -> str:
    return storage.join(mix, MIX_SPEC)


def adapter(train_output: str) -> str:
    """The LoRA adapter folder a training job writes under its output."""
    return storage.join(train_output, ADAPTER)


def eval_result(eval_output: str) -> str:
    return storage.join(eval_output, EVAL_RESULT)


def progress(train_output: str) -> str:
    return storage.join(train_output, PROGRESS)


def train_metrics(train_output: str) -> str:
    return storage.join(train_output, TRAIN_METRICS)


def checkpoints(train_output: str) -> str:
    """The durable checkpoint folder of a training job (SageMaker CheckpointConfig, HyperPod)."""
    return storage.join(train_output, CHECKPOINTS)
