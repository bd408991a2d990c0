"""``mixtune-launch``: run an entry point on every GPU of every node of a SageMaker training job.

SageMaker starts the container once per instance and tells each where it stands in
``/opt/ml/input/config/resourceconfig.json`` (``current_host``, ``hosts``,
``network_interface_name``), or in ``SM_HOSTS`` / ``SM_CURRENT_HOST``. From that this
launcher starts ``torchrun`` with the node count, this node's rank and the first host as the
rendezvous (master) address; one process per GPU. ``evaluate``, ``generate-rehearsal``,
``merge`` and the data steps ``prepare`` and ``mix`` (``mixtune prepare`` / ``mixtune mix``,
for inputs too large for Lambda) run as one process on the first node (the others exit at once).

    mixtune-launch train --config /opt/ml/input/data/config/train.json
    mixtune-launch --print train --max-steps 5        # show the command, run nothing

Outside SageMaker (no resource config) it runs ``torchrun --standalone`` over this machine's
GPUs, or one plain process where there is at most one. HyperPod jobs do not use it: the
training operator's ``hyperpodrun`` (package ``hyperpod-elastic-agent``) rendezvouses the pods.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mixtune_training.common import TrainingError, run_main

RESOURCE_CONFIG = Path("/opt/ml/input/config/resourceconfig.json")
MASTER_PORT = 29500
ENTRY_MODULES = {
    "train": "mixtune_training.train",
    "evaluate": "mixtune_training.evaluate",
    "generate-rehearsal": "mixtune_training.generate_rehearsal",
    "merge": "mixtune_training.merge",
    # The data steps of inputs too large for Lambda (issue 14): `mixtune prepare` / `mixtune mix`
    # from the mixtune package the image installs.
    "prepare": "mixtune.commands.prepare",
    "mix": "mixtune.commands.mix",
}
TORCHRUN = (sys.executable, "-m", "torch.distributed.run")  # torchrun, from this interpreter
SINGLE_PROCESS = frozenset({"evaluate", "generate-rehearsal", "merge", "prepare", "mix"})
# Instance families with EFA: NCCL goes through libfabric's EFA provider (aws-ofi-nccl in the image).
EFA_PREFIXES = (
    "ml.p4d.",
    "ml.p4de.",
    "ml.p5.",
    "ml.p5e.",
    "ml.p5en.",
    "ml.p6-",
    "ml.g6e.48xlarge",
    "ml.g5.48xlarge",
)


@dataclass(frozen=True)
class Cluster:
    hosts: tuple[str, ...]
    current_host: str
    network_interface: str | None = None
    instance_type: str | None = None

    @property
    def node_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def master(self) -> str:
        return self.hosts[0]


def read_cluster(path: Path | None = None, env: Mapping[str, str] | None = None) -> Cluster | None:
    """This job's hosts, from SageMaker's resource config or its SM_* variables; None elsewhere."""
    path = RESOURCE_CONFIG if path is None else path
    env = os.environ if env is None else env
    if path.is_file():
        try:
            config = json.loads(path.read_text())
            hosts, current = tuple(config["hosts"]), config["current_host"]
        except (ValueError, KeyError, TypeError) as error:
            raise TrainingError(f"{path}: not a SageMaker resource config ({error})") from None
        network, instance = config.get("network_interface_name"), config.get("current_instance_type")
    elif env.get("SM_HOSTS") and env.get("SM_CURRENT_HOST"):
        try:
            hosts = tuple(json.loads(env["SM_HOSTS"]))
        except ValueError:
            raise TrainingError(f"SM_HOSTS is not a JSON list: {env['SM_HOSTS']!r}") from None
        current = env["SM_CURRENT_HOST"]
        network, instance = env.get("SM_NETWORK_INTERFACE_NAME"), env.get("SM_CURRENT_INSTANCE_TYPE")
    else:
        return None
    if current not in hosts:
        raise TrainingError(f"current host {current!r} is not among the job's hosts {list(hosts)}")
    return Cluster(hosts, current, network, instance)


def local_gpus(env: Mapping[str, str] = os.environ) -> int:
    if env.get("SM_NUM_GPUS"):
        return int(env["SM_NUM_GPUS"])
    import torch

    return torch.cuda.device_count()


def launch_command(
    entry: str, args: list[str], cluster: Cluster | None, nproc: int, port: int = MASTER_PORT
) -> list[str] | None:
    """The command this node runs for ``entry``; None when this node has nothing to run."""
    if entry not in ENTRY_MODULES:
        raise TrainingError(f"unknown entry point {entry!r}; one of {', '.join(ENTRY_MODULES)}")
    module = ENTRY_MODULES[entry]
    if entry in SINGLE_PROCESS:
        if cluster is not None and cluster.node_rank > 0:
            return None
        return [sys.executable, "-m", module, *args]
    if cluster is None or len(cluster.hosts) == 1:
        if nproc <= 1:
            return [sys.executable, "-m", module, *args]
        return [*TORCHRUN, "--standalone", f"--nproc-per-node={nproc}", "-m", module, *args]
    return [
        *TORCHRUN,
        f"--nnodes={len(cluster.hosts)}",
        f"--node-rank={cluster.node_rank}",
        f"--nproc-per-node={max(nproc, 1)}",
        f"--master-addr={cluster.master}",
        f"--master-port={port}",
        "-m",
        module,
        *args,
    ]


def launch_environment(cluster: Cluster | None, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Variables NCCL needs across nodes (those already set win): the interface SageMaker
    names, and libfabric's EFA provider on EFA instance types."""
    extra: dict[str, str] = {}
    if cluster is None or len(cluster.hosts) == 1:
        return extra
    if cluster.network_interface:
        extra["NCCL_SOCKET_IFNAME"] = cluster.network_interface
    if cluster.instance_type and cluster.instance_type.startswith(EFA_PREFIXES):
        extra.update(FI_PROVIDER="efa", FI_EFA_USE_DEVICE_RDMA="1")
    return {k: v for k, v in extra.items() if k not in env}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixtune-launch", description=__doc__.splitlines()[0])
    parser.add_argument("--nproc-per-node", type=int, help="processes per node (default: its GPUs)")
    parser.add_argument("--master-port", type=int, default=MASTER_PORT)
    parser.add_argument("--print", action="store_true", help="print the command and exit")
    parser.add_argument("entry", choices=sorted(ENTRY_MODULES))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the entry point's arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        options = build_parser().parse_args(argv)
        cluster = read_cluster()
        nproc = options.nproc_per_node if options.nproc_per_node is not None else local_gpus()
        command = launch_command(options.entry, options.args, cluster, nproc, options.master_port)
        where = f"node {cluster.node_rank} of {len(cluster.hosts)}" if cluster else "this machine"
        if command is None:
            print(f"{options.entry} runs on the first node only; {where} has nothing to do")
            return 0
        env = {**os.environ, **launch_environment(cluster)}
        print(f"{where}: {shlex.join(command)}", flush=True)
        if options.print:
            return 0
        sys.stdout.flush()
        os.execvpe(command[0], command, env)  # the launcher becomes the job: signals reach it
        return 0  # pragma: no cover

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
