"""Stand-in Lambda handlers for tests of the local cloud's machinery."""

from __future__ import annotations

import time
from typing import Any


def sleep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleep ``event["seconds"]``: a task that outlives its state's TimeoutSeconds."""
    time.sleep(float(event.get("seconds", 3)))
    return {"slept": event.get("seconds", 3)}


def fill_tmp(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Write ``event["mb"]`` MB under the temporary folder, in a file removed from the folder at
    once (``tempfile.TemporaryFile``), and hold it: what a spill file does to Lambda's /tmp."""
    import tempfile

    with tempfile.TemporaryFile() as spill:
        for _ in range(int(event["mb"])):
            spill.write(b"\0" * (1 << 20))
            spill.flush()
        time.sleep(float(event.get("hold_s", 2)))
    return {"wrote_mb": event["mb"]}


def hold_memory(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Hold ``event["mb"]`` MB of touched memory for ``hold_s`` seconds."""
    block = bytearray(int(event["mb"]) << 20)
    block[:: 1 << 12] = b"\1" * len(block[:: 1 << 12])
    time.sleep(float(event.get("hold_s", 2)))
    return {"held_mb": len(block) >> 20}
