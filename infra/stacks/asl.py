"""The state machine definition: the ASL file and the substitutions its placeholders need.

The placeholder names come from :mod:`mixtune.functions`, the same list the Lambdas come from.
"""

from __future__ import annotations

import re
from pathlib import Path

from mixtune.functions import EXTRA_ASL_PLACEHOLDERS, FUNCTIONS

from .paths import ASL_PATH

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def load_definition(path: Path = ASL_PATH) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"state machine definition {path} is missing (the pipeline owns it)")
    return path.read_text(encoding="utf-8")


def placeholders_in(definition: str) -> set[str]:
    return set(_PLACEHOLDER.findall(definition))


def expected_placeholders() -> set[str]:
    """Every name the stack substitutes: one ARN per state-machine function, plus the extras."""
    return {fn.asl_placeholder for fn in FUNCTIONS if fn.in_state_machine} | set(EXTRA_ASL_PLACEHOLDERS)


def check_placeholders(definition: str) -> None:
    """Fail synth early when the ASL names a placeholder the stack cannot fill."""
    unknown = placeholders_in(definition) - expected_placeholders()
    if unknown:
        raise ValueError(f"{ASL_PATH.name} uses unknown placeholders: {', '.join(sorted(unknown))}")
