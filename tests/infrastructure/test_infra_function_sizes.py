"""Lambda sizes set on purpose (issue 14): prepare and mix get the measured memory, timeout and
/tmp, each function is told its own /tmp, and a deployment overrides them by context."""

from __future__ import annotations

import re

import pytest
from aws_cdk.assertions import Template

from mixtune.functions import function

PIPELINE = "MixtunePipeline"


def _function_props(template: dict, name: str) -> dict:
    for resource in template["Resources"].values():
        if (
            resource["Type"] == "AWS::Lambda::Function"
            and resource["Properties"].get("Handler") == function(name).handler
        ):
            return resource["Properties"]
    raise AssertionError(f"no {name} function")


@pytest.mark.parametrize("name", ["prepare", "mix"])
def test_data_functions_get_the_measured_memory_timeout_and_tmp(synthesized, name: str) -> None:
    props = _function_props(synthesized.raw[PIPELINE], name)
    assert (props["MemorySize"], props["Timeout"], props["EphemeralStorage"]) == (1769, 900, {"Size": 2048})
    assert props["Environment"]["Variables"]["MIXTUNE_EPHEMERAL_STORAGE_MB"] == "2048"


def test_every_function_is_told_its_own_tmp(synthesized) -> None:
    props = _function_props(synthesized.raw[PIPELINE], "poll_job")
    assert props["EphemeralStorage"] == {"Size": 512}
    assert props["Environment"]["Variables"]["MIXTUNE_EPHEMERAL_STORAGE_MB"] == "512"


def test_function_sizes_context_overrides_a_functions_size(build_app) -> None:
    _app, service = build_app(functionSizes={"prepare": {"memory_mb": 3008, "ephemeral_mb": 10240}})
    props = _function_props(Template.from_stack(service.pipeline).to_json(), "prepare")
    assert (props["MemorySize"], props["Timeout"], props["EphemeralStorage"]) == (3008, 900, {"Size": 10240})
    assert props["Environment"]["Variables"]["MIXTUNE_EPHEMERAL_STORAGE_MB"] == "10240"


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"prepare": {"ephemeral_mb": 20000}}, "ephemeral_mb must be an integer from 512 to 10240"),
        ({"prepare": {"timeout_s": 901}}, "timeout_s must be an integer from 1 to 900"),
        ({"prepare": {"disk": 1}}, "unknown size(s) ['disk']"),
        ({"preparer": {"memory_mb": 2048}}, "unknown function(s) ['preparer']"),
    ],
)
def test_sizes_lambda_would_refuse_fail_at_synth(build_app, sizes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_app(functionSizes=sizes)
