"""The training image's Dockerfile: its entry points exist, import and match pyproject's scripts."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "training_image" / "Dockerfile"


def _entrypoints() -> dict[str, str]:
    text = DOCKERFILE.read_text()
    match = re.search(r"^ARG ENTRYPOINTS=(.+)$", text, re.MULTILINE)
    assert match, "Dockerfile declares no ARG ENTRYPOINTS"
    pairs = shlex.split(match.group(1))[0].split()
    return dict(pair.split("=", 1) for pair in pairs)


def test_dockerfile_declares_train_evaluate_and_generate_rehearsal() -> None:
    assert set(_entrypoints()) == {"train", "evaluate", "generate-rehearsal"}


def test_every_entrypoint_module_imports_and_has_main() -> None:
    for module_name in _entrypoints().values():
        module = importlib.import_module(module_name)
        assert callable(module.main), module_name


def test_label_and_console_scripts_agree_with_the_entrypoints() -> None:
    entrypoints = _entrypoints()
    label = re.search(r'mixtune\.entrypoints="([^"]+)"', DOCKERFILE.read_text())
    assert label and dict(p.split("=", 1) for p in label.group(1).split()) == entrypoints
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, module in entrypoints.items():
        assert scripts[f"mixtune-{name}"] == f"{module}:main"


def test_dockerfile_copies_what_it_installs_and_pins_its_base() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base and ":" in base.group(1) and not base.group(1).endswith(":latest")
    for source in re.findall(r"^COPY (\S+)", text, re.MULTILINE):
        assert (ROOT / source).exists(), source


def test_requirements_are_pinned_and_torch_matches_pyproject() -> None:
    lines = [
        line
        for line in (ROOT / "training_image" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("==" in line for line in lines)
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["train"]
    torch_pin = next(item for item in extra if item.startswith("torch"))
    assert torch_pin in lines
