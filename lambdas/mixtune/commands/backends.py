"""`mixtune backends render`: what mixtune submits for a step of a run, without submitting it.

    mixtune backends render hyperpod --instance-type ml.p5.48xlarge --node-count 4
    mixtune backends render sagemaker --instance-type ml.g5.12xlarge --node-count 2 --step evaluate_tuned

The HyperPodPyTorchJob manifest (YAML) or the CreateTrainingJob request (JSON) comes from the
same code the launch Lambda runs, with the settings of the environment (``MIXTUNE_*``); settings
a deployment would give and this environment lacks (image, roles, key, cluster) are shown as
example values, named on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from mixtune.cli import UsageError

EXAMPLE_SETTINGS = {
    "training_image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mixtune-training:latest",
    "sagemaker_role_arn": "arn:aws:iam::123456789012:role/mixtune-sagemaker-execution",
    "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
}
# The settings that show in each backend's document.
SHOWN = {"hyperpod": ("training_image_uri",), "sagemaker": tuple(EXAMPLE_SETTINGS)}
EXAMPLE_RUN_ID = "support-3f2a9c1e5b7d4a60"
STEPS = ("smoke", "train", "evaluate_baseline", "evaluate_tuned")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("backends", help="show what mixtune submits to a training backend")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    render = actions.add_parser(
        "render", help="print the HyperPod manifest or SageMaker request of one step of a run"
    )
    render.add_argument("backend", choices=("hyperpod", "sagemaker"))
    render.add_argument("--instance-type", default="ml.p5.48xlarge")
    render.add_argument("--node-count", type=int, default=1, help="nodes of the training step")
    render.add_argument("--gpus-per-node", type=int, default=None, help="default: the instance type's")
    render.add_argument("--step", choices=STEPS, default="train")
    render.add_argument("--run-id", default=EXAMPLE_RUN_ID)
    render.add_argument("--base-model", default=None, help="a Hub id or an s3:// folder of weights")
    render.add_argument("--queue", default=None, help="Kueue LocalQueue (hyperpod)")
    render.add_argument("--priority", default=None, help="Kueue WorkloadPriorityClass (hyperpod)")
    render.set_defaults(func=run_render)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def rendered(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The document for ``args`` and the names of the settings shown with example values."""
    from pydantic import ValidationError

    from mixtune import layout
    from mixtune.backends import BackendError
    from mixtune.backends.hyperpod import HyperPodBackend
    from mixtune.backends.jobs import job_spec
    from mixtune.backends.sagemaker import SageMakerBackend
    from mixtune.runs.model import RunConfig
    from mixtune.settings import Settings
    from mixtune.steps.state import JobSlot, MixOutput

    settings = Settings()
    examples = [name for name in SHOWN[args.backend] if not getattr(settings, name)]
    settings = settings.model_copy(update={name: EXAMPLE_SETTINGS[name] for name in examples})
    try:
        config = RunConfig.model_validate(
            {
                "backend": args.backend,
                "instance_type": args.instance_type,
                "node_count": args.node_count,
                "gpus_per_node": args.gpus_per_node,
                "base_model": args.base_model,
                "queue": args.queue,
                "priority": args.priority,
            }
        ).resolved(settings)
        mix_folder = layout.mix_folder(settings.work_bucket, args.run_id)
        mix = MixOutput(mixed_uri=layout.mixed_data(mix_folder), manifest_uri=layout.mix_manifest(mix_folder))
        train = JobSlot(
            kind="train", job={}, output_uri=layout.run_folder(settings.work_bucket, args.run_id, "train")
        )
        prepared = layout.dataset_folder(settings.work_bucket, args.run_id)
        spec = job_spec(args.run_id, args.step, config, settings, prepared, mix=mix, train=train)
        if args.backend == "hyperpod":
            document = HyperPodBackend.from_settings(settings).manifest(spec)
            return yaml.safe_dump(document, sort_keys=False, width=100), examples
        request = SageMakerBackend.from_settings(settings).training_job_request(spec)
        return json.dumps(request, indent=2) + "\n", examples
    except (ValidationError, BackendError, ValueError) as error:
        raise UsageError(
            str(error).splitlines()[0] if isinstance(error, BackendError) else str(error)
        ) from None


def run_render(args: argparse.Namespace) -> int:
    text, examples = rendered(args)
    sys.stdout.write(text)
    if examples:
        names = ", ".join(f"MIXTUNE_{name.upper()}" for name in examples)
        print(f"(example values for {names}: set them to render a deployment's own)", file=sys.stderr)
    return 0
