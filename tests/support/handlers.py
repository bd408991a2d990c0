"""Stand-in Lambda handlers for tests of the local cloud's machinery."""

from __future__ import annotations

import time
from typing import Any


def sleep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleep ``event["seconds"]``: a task that outlives its state's TimeoutSeconds."""
    time.sleep(float(event.get("seconds", 3)))
    return {"slept": event.get("seconds", 3)}
