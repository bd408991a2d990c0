"""docs/backends.md shows what mixtune submits: each block under a `<!-- command -->` marker is
what that command prints today (the launch Lambda's code, the default settings)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from infra.stacks.k8s_rbac import main as rbac_main
from mixtune.cli import main as mixtune_main

DOC = Path(__file__).resolve().parents[2] / "docs" / "backends.md"
BLOCK = re.compile(r"<!-- (?P<command>[^>]+) -->\n```[a-z]*\n(?P<text>.*?)```", re.S)
COMMANDS = {"mixtune": mixtune_main, "python -m infra.stacks.k8s_rbac": rbac_main}


def documented() -> list[tuple[str, str]]:
    return [(m["command"].strip(), m["text"]) for m in BLOCK.finditer(DOC.read_text())]


def test_the_doc_shows_the_p5_manifest_the_g5_request_and_the_kubernetes_objects() -> None:
    commands = [command for command, _ in documented()]
    assert commands == [
        "python -m infra.stacks.k8s_rbac",
        "mixtune backends render hyperpod --instance-type ml.p5.48xlarge --node-count 4",
        "mixtune backends render sagemaker --instance-type ml.g5.12xlarge --node-count 2",
    ]


@pytest.mark.parametrize(("command", "text"), documented(), ids=lambda value: value[:40])
def test_each_documented_block_is_what_its_command_prints(
    command: str, text: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("MIXTUNE_")]:
        monkeypatch.delenv(name)
    program = next(p for p in COMMANDS if command.startswith(p))
    assert COMMANDS[program](shlex.split(command)[len(shlex.split(program)) :]) == 0
    assert capsys.readouterr().out == text


def test_render_refuses_what_a_backend_cannot_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert mixtune_main(["backends", "render", "hyperpod", "--instance-type", "ml.custom.2xlarge"]) == 2
    assert "set gpus_per_node" in capsys.readouterr().err
    assert (
        mixtune_main(["backends", "render", "sagemaker", "--step", "evaluate_tuned", "--node-count", "2"])
        == 0
    )
