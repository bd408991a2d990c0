"""Pure parts of the CDK app: context parsing, the layer's pip bundling and its cache, RBAC."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from aws_cdk import App
from pydantic import ValidationError

from infra.stacks import layer
from infra.stacks.config import InfraConfig
from infra.stacks.k8s_rbac import main as rbac_main
from infra.stacks.paths import PYPROJECT


def test_config_defaults_need_no_context():
    config = InfraConfig.from_app(App())
    assert config.prefix == "mixtune"
    assert config.schedules == ()
    assert not config.hyperpod_enabled


def test_config_reads_json_text_given_on_the_command_line():
    app = App(
        context={
            "schedules": '[{"name": "nightly", "expression": "cron(0 3 * * ? *)"}]',
            "reservedConcurrency": '{"prepare": 2}',
        }
    )
    config = InfraConfig.from_app(app)
    assert config.schedules[0].expression == "cron(0 3 * * ? *)"
    assert config.reserved_concurrency == {"prepare": 2}


def test_config_takes_a_default_run_config_and_refuses_an_invalid_one():
    app = App(context={"defaultRunConfig": '{"mix": {"domain_percent": 75}, "smoke_steps": 2}'})
    assert InfraConfig.from_app(app).default_run_config == {"mix": {"domain_percent": 75}, "smoke_steps": 2}
    with pytest.raises(ValidationError, match="no_such_field"):
        InfraConfig.model_validate({"defaultRunConfig": {"no_such_field": 1}})


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"defaultRunConfig": {"node_count": 8}}, "max_node_count"),
        ({"defaultRunConfig": {"backend": "local"}}, "refused on AWS"),
        ({"defaultRunConfig": {"poll_seconds": 1}}, "minimum of 10 s on AWS"),
        ({"defaultRunConfig": {"prepare": {"zzz": 1}}}, "config.prepare.zzz: unknown field"),
        ({"defaultBackend": "local"}, "defaultBackend"),
    ],
)
def test_synth_refuses_a_default_run_config_that_breaks_a_rule_of_the_door(context, expected):
    with pytest.raises(ValidationError, match=expected):
        InfraConfig.model_validate(context)


def test_config_rejects_a_schedule_that_is_neither_cron_nor_rate():
    with pytest.raises(ValidationError, match="cron"):
        InfraConfig.model_validate({"schedules": [{"name": "bad", "expression": "every day"}]})


def test_config_rejects_unknown_keys_and_half_a_hyperpod_setup():
    with pytest.raises(ValidationError):
        InfraConfig.model_validate({"notAKnownKey": 1})
    with pytest.raises(ValidationError, match="both"):
        InfraConfig.model_validate({"hyperpodClusterName": "hp"})


@pytest.mark.parametrize("doc", ["README.md", "docs/infra.md"])
def test_every_context_key_is_documented(doc):
    text = (Path(__file__).resolve().parents[2] / doc).read_text()
    missing = [key for key in InfraConfig.context_keys() if f"`{key}`" not in text]
    assert not missing


def test_layer_requirements_are_the_pyproject_core_dependencies():
    with PYPROJECT.open("rb") as handle:
        expected = tomllib.load(handle)["project"]["dependencies"]
    assert layer.core_requirements() == expected


def test_pip_command_targets_lambda_arm64_python_312_wheels_only():
    command = layer.pip_command(["orjson>=3"], "/out/python")
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--python-version 3.12" in joined
    assert "--only-binary=:all:" in command
    assert command[-1] == "orjson>=3"


def test_local_bundling_installs_once_and_serves_later_bundles_from_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_pip(command, check):
        target = Path(command[command.index("--target") + 1])
        (target / "fakepkg").mkdir(parents=True)
        (target / "fakepkg" / "__init__.py").write_text("")
        calls.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(layer.subprocess, "run", fake_pip)
    bundling = layer.PipLayerBundling(["fakepkg==1"], cache_dir=tmp_path / "cache" / "layer")
    for attempt in ("first", "second"):
        out = tmp_path / attempt
        out.mkdir()
        assert bundling.try_bundle(str(out)) is True
        assert (out / "python" / "fakepkg" / "__init__.py").exists()
    assert len(calls) == 1
    assert (tmp_path / "cache" / ".gitignore").read_text().strip().endswith("*")


def test_local_bundling_declines_when_pip_fails_so_cdk_can_fall_back(tmp_path, monkeypatch):
    def failing_pip(command, check):
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(layer.subprocess, "run", failing_pip)
    bundling = layer.PipLayerBundling(["fakepkg==1"], cache_dir=tmp_path / "cache")
    assert bundling.try_bundle(str(tmp_path)) is False
    assert not any((tmp_path / "cache").glob("*/python"))


def test_requirements_hash_changes_with_the_requirements():
    assert layer.requirements_hash(["a==1"]) != layer.requirements_hash(["a==2"])
    assert layer.requirements_hash(["a", "b"]) == layer.requirements_hash(["b", "a"])


def test_rbac_cli_prints_a_manifest_for_the_namespace(capsys):
    assert rbac_main(["--namespace", "team-b"]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [o["kind"] for o in objects] == ["Namespace", "ServiceAccount", "Role", "RoleBinding"]
    assert objects[0]["metadata"]["name"] == "team-b"
    assert {o["metadata"]["namespace"] for o in objects[1:]} == {"team-b"}
