"""Folders filled once per machine, safely shared by every process that needs them.

The ranks of a node (8 on a p5) all ask for the same base model, tokenised data or
checkpoint at the same moment. :func:`fill_once` lets the first one fill the folder and the
others wait: the filler holds a file lock beside the folder, writes into a staging folder next
to it, marks it complete and renames it into place, so nobody ever sees half-written files,
and a filler that dies leaves only a staging folder that the next one removes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mixtune_training.common import TrainingError

COMPLETE_MARKER = ".mixtune-complete"
LOCK_TIMEOUT_S = float(os.environ.get("MIXTUNE_CACHE_LOCK_TIMEOUT_S", 6 * 3600))


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def fill_once(target: Path, fill: Callable[[Path], None], what: str = "") -> Path:
    """``target``, filled by ``fill(staging_folder)`` unless a complete copy is there already.

    Safe across processes (and across machines that share the folder through a file system with
    working locks, such as FSx for Lustre).
    """
    from filelock import FileLock, Timeout

    target = Path(target)
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target.parent / f".{target.name}.lock"))
    waited = time.monotonic()
    try:
        with lock.acquire(timeout=LOCK_TIMEOUT_S):
            if is_complete(target):  # another process filled it while this one waited
                return target
            if what:
                print(f"preparing {what} in {target}", flush=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
            try:
                fill(staging)
                (staging / COMPLETE_MARKER).write_text(f"{time.time()}\n")
                if target.exists():  # an incomplete folder left by an older version or a crash
                    shutil.rmtree(target)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except Timeout:
        raise TrainingError(
            f"waited {time.monotonic() - waited:.0f} s for another process to prepare {target}"
        ) from None
    return target
