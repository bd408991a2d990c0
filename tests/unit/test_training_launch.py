"""mixtune-launch: SageMaker's resource config becomes a torchrun command per node."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from mixtune_training import launch
from mixtune_training.common import TrainingError
from mixtune_training.launch import Cluster, launch_command, launch_environment, read_cluster

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _resource_config(path: Path, current: str, hosts: list[str]) -> Path:
    # the layout SageMaker writes to /opt/ml/input/config/resourceconfig.json
    path.write_text(
        json.dumps(
            {
                "current_host": current,
                "current_instance_type": "ml.p5.48xlarge",
                "current_group_name": "homogeneousCluster",
                "hosts": hosts,
                "instance_groups": [
                    {
                        "instance_group_name": "homogeneousCluster",
                        "instance_type": "ml.p5.48xlarge",
                        "hosts": hosts,
                    }
                ],
                "network_interface_name": "eth0",
            }
        )
    )
    return path


def test_resource_config_of_a_two_host_job_is_read(tmp_path: Path) -> None:
    path = _resource_config(tmp_path / "resourceconfig.json", "algo-2", ["algo-1", "algo-2"])
    cluster = read_cluster(path, env={})
    assert cluster == Cluster(("algo-1", "algo-2"), "algo-2", "eth0", "ml.p5.48xlarge")
    assert (cluster.node_rank, cluster.master) == (1, "algo-1")


def test_sm_hosts_variables_stand_in_for_the_file(tmp_path: Path) -> None:
    env = {
        "SM_HOSTS": '["algo-1","algo-2"]',
        "SM_CURRENT_HOST": "algo-1",
        "SM_NETWORK_INTERFACE_NAME": "ens5",
    }
    cluster = read_cluster(tmp_path / "absent.json", env=env)
    assert cluster is not None and (cluster.node_rank, cluster.network_interface) == (0, "ens5")
    assert read_cluster(tmp_path / "absent.json", env={}) is None


def test_a_host_missing_from_its_own_job_is_a_clear_error(tmp_path: Path) -> None:
    path = _resource_config(tmp_path / "resourceconfig.json", "algo-3", ["algo-1", "algo-2"])
    with pytest.raises(TrainingError, match="algo-3"):
        read_cluster(path, env={})


def test_each_node_of_a_two_host_job_gets_its_rank_and_the_first_host_as_master(tmp_path: Path) -> None:
    commands = []
    for host in ("algo-1", "algo-2"):
        cluster = read_cluster(
            _resource_config(tmp_path / f"{host}.json", host, ["algo-1", "algo-2"]), env={}
        )
        commands.append(launch_command("train", ["--config", "t.json"], cluster, nproc=8))
    for rank, command in enumerate(commands):
        assert command == [
            *TORCHRUN,
            "--nnodes=2",
            f"--node-rank={rank}",
            "--nproc-per-node=8",
            "--master-addr=algo-1",
            "--master-port=29500",
            "-m",
            "mixtune_training.train",
            "--config",
            "t.json",
        ]


def test_one_node_runs_standalone_and_one_gpu_runs_plain_python() -> None:
    one = Cluster(("algo-1",), "algo-1")
    assert launch_command("train", [], one, nproc=4) == [
        *TORCHRUN,
        "--standalone",
        "--nproc-per-node=4",
        "-m",
        "mixtune_training.train",
    ]
    assert launch_command("train", ["--max-steps", "5"], None, nproc=1) == [
        sys.executable,
        "-m",
        "mixtune_training.train",
        "--max-steps",
        "5",
    ]


def test_evaluation_is_one_process_on_the_first_node_only() -> None:
    hosts = ("algo-1", "algo-2")
    assert launch_command("evaluate", ["--x"], Cluster(hosts, "algo-1"), nproc=8) == [
        sys.executable,
        "-m",
        "mixtune_training.evaluate",
        "--x",
    ]
    assert launch_command("evaluate", [], Cluster(hosts, "algo-2"), nproc=8) is None


def test_nccl_gets_the_interface_and_efa_on_p5_unless_already_set() -> None:
    cluster = Cluster(("algo-1", "algo-2"), "algo-1", "eth0", "ml.p5.48xlarge")
    assert launch_environment(cluster, env={}) == {
        "NCCL_SOCKET_IFNAME": "eth0",
        "FI_PROVIDER": "efa",
        "FI_EFA_USE_DEVICE_RDMA": "1",
    }
    assert "NCCL_SOCKET_IFNAME" not in launch_environment(cluster, env={"NCCL_SOCKET_IFNAME": "ens"})
    assert launch_environment(Cluster(("a", "b"), "a", "eth0", "ml.g5.12xlarge"), env={}) == {
        "NCCL_SOCKET_IFNAME": "eth0"
    }


def test_print_shows_the_command_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        launch, "RESOURCE_CONFIG", _resource_config(tmp_path / "rc.json", "algo-2", ["algo-1", "algo-2"])
    )
    monkeypatch.delenv("SM_HOSTS", raising=False)
    monkeypatch.setattr(launch.os, "execvpe", lambda *a: pytest.fail("ran the command"))
    assert launch.main(["--print", "--nproc-per-node", "8", "train", "--max-steps", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("node 1 of 2: ") and "--node-rank=1" in out and "--max-steps 5" in out


def test_data_steps_run_as_one_process_of_the_mixtune_package_on_the_first_node() -> None:
    """Issue 14: a prepare or mix job on SageMaker (``launch prepare ...``) runs `mixtune prepare`
    / `mixtune mix` from the package the image installs, once."""
    from mixtune.backends.base import ENTRY_MODULES

    hosts = ("algo-1", "algo-2")
    for entry in ("prepare", "mix"):
        module = ENTRY_MODULES[entry]
        assert launch_command(entry, ["--x"], Cluster(hosts, "algo-1"), nproc=8) == [
            sys.executable,
            "-m",
            module,
            "--x",
        ]
        assert launch_command(entry, ["--x"], Cluster(hosts, "algo-2"), nproc=8) is None
        assert importlib.import_module(module).__name__ == module
