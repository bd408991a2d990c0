"""The Kubernetes objects mixtune needs in a HyperPod (EKS) cluster: the jobs' namespace, the
pods' service account, and the launcher's namespaced Role limited to HyperPod PyTorch jobs.

Creating Kubernetes objects needs cluster credentials, which CloudFormation does not have;
the stack outputs this manifest and docs/infra.md shows how to apply it:

    python -m infra.stacks.k8s_rbac --namespace mixtune | kubectl apply -f -

The service account needs no annotation: EKS Pod Identity (the stack's association) gives its
pods the job role. The access entry maps the launcher Lambdas' role to ``group``.
"""

from __future__ import annotations

import argparse

import yaml

from mixtune.settings import Settings

HYPERPOD_API_GROUP = "sagemaker.amazonaws.com"
JOB_RESOURCES = ("hyperpodpytorchjobs", "hyperpodpytorchjobs/status")
JOB_VERBS = ("create", "get", "list", "watch", "delete")
ROLE_NAME = "mixtune-job-launcher"
DEFAULT_NAMESPACE = Settings.model_fields["hyperpod_namespace"].default
DEFAULT_GROUP = "mixtune-job-launchers"
DEFAULT_SERVICE_ACCOUNT = Settings.model_fields["hyperpod_service_account"].default
MANAGED_BY = {"app.kubernetes.io/managed-by": "mixtune"}


def rbac_objects(namespace: str, group: str, service_account: str = DEFAULT_SERVICE_ACCOUNT) -> list[dict]:
    """The namespace, the pods' service account, and a Role limited to HyperPod PyTorch jobs
    bound to the access entry's group."""
    namespace_object = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": MANAGED_BY},
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": service_account, "namespace": namespace, "labels": MANAGED_BY},
    }
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
    return [namespace_object, account, role, binding]


def rbac_manifest(namespace: str, group: str, service_account: str = DEFAULT_SERVICE_ACCOUNT) -> str:
    return yaml.safe_dump_all(rbac_objects(namespace, group, service_account), sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the Kubernetes objects mixtune needs in a HyperPod cluster."
    )
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    parser.add_argument("--group", default=DEFAULT_GROUP, help="the access entry's Kubernetes group")
    parser.add_argument("--service-account", default=DEFAULT_SERVICE_ACCOUNT, help="the job pods' account")
    args = parser.parse_args(argv)
    print(rbac_manifest(args.namespace, args.group, args.service_account), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
