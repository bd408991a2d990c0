"""The pipeline's state machine definition: the one ASL file, its ``${...}`` placeholders and
their substitution. The CDK app, the local cloud and the tests all load it through here.

The placeholder names come from :mod:`mixtune.functions`: one ARN per function the state
machine invokes (``${MixFunctionArn}``...), plus :data:`EXTRA_ASL_PLACEHOLDERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from mixtune.functions import EXTRA_ASL_PLACEHOLDERS, FUNCTIONS, FunctionDef

ASL_PATH = Path(__file__).resolve().parents[2] / "infra" / "statemachine" / "pipeline.asl.json"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def load_definition(path: Path = ASL_PATH) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"state machine definition {path} is missing (the pipeline owns it)")
    return path.read_text(encoding="utf-8")


def placeholders_in(definition: str) -> set[str]:
    return set(_PLACEHOLDER.findall(definition))


def expected_placeholders() -> set[str]:
    """Every name a deployment substitutes: one ARN per state-machine function, plus the extras."""
    return {fn.asl_placeholder for fn in FUNCTIONS if fn.in_state_machine} | set(EXTRA_ASL_PLACEHOLDERS)


def check_placeholders(definition: str) -> None:
    """Fail early when the ASL names a placeholder no deployment fills."""
    unknown = placeholders_in(definition) - expected_placeholders()
    if unknown:
        raise ValueError(f"{ASL_PATH.name} uses unknown placeholders: {', '.join(sorted(unknown))}")


def substitutions(
    function_arn: Callable[[FunctionDef], str],
    topic_arn: str,
    functions: Iterable[FunctionDef] = FUNCTIONS,
) -> dict[str, str]:
    """The value of every placeholder, from a function's ARN and the run-events topic."""
    values = {fn.asl_placeholder: function_arn(fn) for fn in functions if fn.in_state_machine}
    values["TopicArn"] = topic_arn
    return values


def substitute(definition: str, values: Mapping[str, str]) -> str:
    """Replace every ``${Name}``; a placeholder with no value is an error, not a silent gap."""
    missing = sorted(name for name in placeholders_in(definition) if name not in values)
    if missing:
        raise ValueError(f"{ASL_PATH.name}: no value for placeholder(s) {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], definition)
