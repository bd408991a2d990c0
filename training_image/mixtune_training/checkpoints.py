"""Checkpoints: where they are written, how they reach durable storage, and resuming from the newest.

The contract (docs/training.md, "Checkpoints and resume"):

- ``checkpoint_dir`` (``--checkpoint-dir``, env ``MIXTUNE_CHECKPOINT_DIR``): the local folder the
  trainer writes ``checkpoint-<step>/`` folders into. Default: in a SageMaker job
  (``TRAINING_JOB_NAME`` set, or a resource config), ``/opt/ml/checkpoints``, which SageMaker
  syncs with ``CheckpointConfig.S3Uri`` itself; else a path given as ``checkpoint_uri``; else
  ``<output>/checkpoints`` for a local output; else a folder under ``$MIXTUNE_CACHE``.
- ``checkpoint_uri`` (``--checkpoint-uri``, env ``MIXTUNE_CHECKPOINT_URI``): an ``s3://`` prefix
  the entry point uploads each checkpoint to and downloads the newest from at start, or a
  shared file system path (FSx for Lustre on HyperPod), used as the folder itself. Default for
  an ``s3://`` output outside SageMaker: ``<output>/checkpoints``.

A checkpoint is usable once ``latest.json`` (``{"step": N, "folder": "checkpoint-N"}``) names
it: it is written after the checkpoint's files, locally and then remotely, so a job killed in
the middle of a save resumes from the one before.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mixtune import storage
from mixtune.training_config import TrainConfig
from mixtune_training.cache import fill_once
from mixtune_training.distributed import Ranks, wait_for_everyone
from mixtune_training.tiny import cache_root

SAGEMAKER_CHECKPOINT_DIR = Path("/opt/ml/checkpoints")
POINTER = "latest.json"
CHECKPOINTS_PER_RUN = 10
MIN_CHECKPOINT_INTERVAL = 25  # a save costs a few steps' time on a small model: short runs rarely save
MAX_CHECKPOINT_INTERVAL = 500


@dataclass(frozen=True)
class CheckpointPlace:
    local: Path
    remote: str | None  # an s3:// prefix this process syncs to; None when the folder is durable itself

    def describe(self) -> str:
        return f"{self.local}" + (f" (synced to {self.remote})" if self.remote else "")


def on_sagemaker() -> bool:
    """Inside a SageMaker training job (which sets TRAINING_JOB_NAME and writes the resource config)."""
    from mixtune_training.launch import RESOURCE_CONFIG

    return bool(os.environ.get("TRAINING_JOB_NAME")) or RESOURCE_CONFIG.is_file()


def checkpoint_place(
    config: TrainConfig, output: str | None, sagemaker_dir: Path = SAGEMAKER_CHECKPOINT_DIR
) -> CheckpointPlace:
    uri = config.checkpoint_uri or os.environ.get("MIXTUNE_CHECKPOINT_URI") or None
    local = config.checkpoint_dir or os.environ.get("MIXTUNE_CHECKPOINT_DIR") or None
    if uri and not storage.is_s3(uri):
        return CheckpointPlace(Path(local or uri), None)  # a shared file system: the folder is durable
    if local:
        return CheckpointPlace(Path(local), uri)
    if on_sagemaker() and sagemaker_dir.is_dir():
        # the image has the folder everywhere; in a SageMaker job SageMaker syncs it with
        # CheckpointConfig.S3Uri (and with uri too, if given)
        return CheckpointPlace(sagemaker_dir, uri)
    if output and not storage.is_s3(output):
        return CheckpointPlace(Path(output) / "checkpoints", uri)
    remote = uri or (storage.join(output, "checkpoints") if output else None)
    key = (remote or "default").encode().hex()[-32:]
    return CheckpointPlace(cache_root().parent / "checkpoints" / key, remote)


def checkpoint_interval(config: TrainConfig, steps: int | None) -> int | None:
    """Optimizer steps between checkpoints; None: no checkpoints (the smoke run)."""
    if config.checkpoint_steps is not None:
        return config.checkpoint_steps
    if config.is_smoke or not steps:
        return None
    return min(max(math.ceil(steps / CHECKPOINTS_PER_RUN), MIN_CHECKPOINT_INTERVAL), MAX_CHECKPOINT_INTERVAL)


def _read_pointer(uri: str) -> dict[str, Any] | None:
    try:
        if not storage.exists(uri):
            return None
        pointer = orjson.loads(storage.read_bytes(uri))
    except (OSError, ValueError):
        return None
    return pointer if isinstance(pointer, dict) and "folder" in pointer else None


def newest_checkpoint(place: CheckpointPlace) -> Path | None:
    """The newest complete checkpoint folder, brought to ``place.local`` (downloaded once per node
    from ``place.remote`` when the local folder does not have it)."""
    local_pointer = _read_pointer(str(place.local / POINTER))
    remote_pointer = _read_pointer(storage.join(place.remote, POINTER)) if place.remote else None
    if place.remote and local_pointer != remote_pointer:
        # With a remote, the remote says which run's checkpoints these are: a local copy it does
        # not name is another run's leftover (the same job name on a machine that trained
        # before; a fresh bucket), never something to resume from.
        local_pointer = None
    candidates = [p for p in (local_pointer, remote_pointer) if p]
    if not candidates:
        return None
    best = max(candidates, key=lambda p: int(p.get("step", 0)))
    folder = place.local / best["folder"]
    if best is local_pointer and folder.is_dir():
        return folder
    remote = storage.join(place.remote or "", best["folder"])
    staged = fill_once(
        place.local / ".downloads" / best["folder"],
        lambda target: storage.download_dir(remote, target),
        what=f"checkpoint {best['folder']} from {remote}",
    )
    return staged


def sync_callback(place: CheckpointPlace) -> Any:
    """A TrainerCallback that marks each saved checkpoint complete (``latest.json``) and, with a
    remote, uploads it from each node (every node holds its ranks' RNG states) before the pointer."""
    from transformers import TrainerCallback

    class CheckpointSync(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            ranks = Ranks.from_env()
            name = f"checkpoint-{state.global_step}"
            folder = Path(args.output_dir) / name
            if place.remote and ranks.is_local_main and folder.is_dir():
                storage.upload_dir(folder, storage.join(place.remote, name))
            wait_for_everyone()
            if ranks.is_main:
                pointer = orjson.dumps({"step": state.global_step, "folder": name})
                storage.write_bytes(str(Path(args.output_dir) / POINTER), pointer)
                if place.remote:
                    storage.write_bytes(storage.join(place.remote, POINTER), pointer)
                print(f"checkpoint {name} saved in {place.describe()}", flush=True)
            return control

    return CheckpointSync()
