"""The Kubernetes RBAC objects the HyperPod launcher needs: one namespace, one resource.

Creating Kubernetes objects needs cluster credentials, which CloudFormation does not have;
the stack outputs this manifest and docs/infra.md shows how to apply it:

    python -m infra.stacks.k8s_rbac --namespace mixtune | kubectl apply -f -
"""

from __future__ import annotations

import argparse

import yaml

HYPERPOD_API_GROUP = "sagemaker.amazonaws.com"
JOB_RESOURCES = ("hyperpodpytorchjobs", "hyperpodpytorchjobs/status")
JOB_VERBS = ("create", "get", "list", "watch", "delete")
ROLE_NAME = "mixtune-job-launcher"


def rbac_objects(namespace: str, group: str) -> list[dict]:
    """A namespaced Role limited to HyperPod PyTorch jobs, bound to the access entry's group."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": ROLE_NAME, "namespace": namespace},
        "rules": [
            {
                "apiGroups": [HYPERPOD_API_GROUP],
                "resources": list(JOB_RESOURCES),
                "verbs": list(JOB_VERBS),
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": ROLE_NAME, "namespace": namespace},
        "subjects": [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"kind": "Role", "name": ROLE_NAME, "apiGroup": "rbac.authorization.k8s.io"},
    }
    return [role, binding]


def rbac_manifest(namespace: str, group: str) -> str:
    return yaml.safe_dump_all(rbac_objects(namespace, group), sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the mixtune HyperPod RBAC manifest.")
    parser.add_argument("--namespace", default="mixtune")
    parser.add_argument("--group", default="mixtune-job-launchers")
    args = parser.parse_args(argv)
    print(rbac_manifest(args.namespace, args.group), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
