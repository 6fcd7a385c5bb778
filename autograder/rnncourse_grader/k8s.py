"""The Kubernetes objects of a sharded grading run (``course grade --emit-k8s DIR``).

An *Indexed* Job (Kubernetes' own engine for "N pods, each knowing its index") runs
``course grade-shard`` once per shard of ``shards.ShardPlan``: ``completions`` = the shards,
``parallelism`` = how many pods at once, requests = limits per pod, a deadline, retries per
index, TTL cleanup, no service-account token, non-root. A NetworkPolicy denies the grading
pods all traffic in and out (student code runs there), a ResourceQuota caps the namespace,
and a ReadWriteMany volume holds the course's work folder (the plan, the submissions, the
gradebook, the shards' output). A second Job runs ``course merge-shards`` when the first is
complete. ``problems`` checks the objects offline: the API schema (``kubernetes-validate``,
which bundles the schemas) and the course's own rules.
"""

import dataclasses
from pathlib import Path

LABELS = {"app.kubernetes.io/name": "rnncourse-grader"}
WORK_MOUNT = "/srv/course-work"  # RNNCOURSE_WORK inside the pods
K8S_VERSION = "1.37.0"  # the API schema the objects are checked against


@dataclasses.dataclass
class JobSpec:
    """What the instructor chooses (``course grade --emit-k8s`` options)."""

    shards: int
    parallelism: int = 20  # pods at once (the cap), at most ``shards``
    image: str = "ghcr.io/rnn-course/rnn-course-grader:main"
    namespace: str = "rnncourse-grading"
    name: str = "rnncourse-grade"
    cpu: int = 2  # cores per pod: also its grading workers
    memory_gi: int = 8
    disk_gi: int = 10  # ephemeral storage per pod (kernels' scratch)
    deadline_s: int = 4 * 3600  # the whole Job
    ttl_s: int = 24 * 3600  # finished Jobs and their pods are deleted after this
    retries_per_index: int = 2
    volume_gi: int = 50
    storage_class: str | None = None  # a ReadWriteMany class (NFS, CephFS, EFS, Filestore)
    volume_name: str | None = None  # a PersistentVolume on the share the grader profile mounts

    def __post_init__(self):
        self.parallelism = max(1, min(self.parallelism, self.shards))


@dataclasses.dataclass
class Manifests:
    """The objects, one file each (``write``)."""

    volume: dict
    network_policy: dict
    quota: dict
    grade_job: dict
    merge_job: dict

    def files(self) -> dict[str, dict]:
        return {
            "00-volume.yaml": self.volume,
            "01-network-policy.yaml": self.network_policy,
            "02-resource-quota.yaml": self.quota,
            "10-grade-job.yaml": self.grade_job,
            "20-merge-job.yaml": self.merge_job,
        }


def _meta(spec: JobSpec, name: str, **labels) -> dict:
    return {"name": name, "namespace": spec.namespace, "labels": {**LABELS, **labels}}


def _pod(spec: JobSpec, command: list[str], component: str) -> dict:
    """A grading pod: non-root, no token, no privilege, fixed resources, the work volume."""
    amount = {
        "cpu": str(spec.cpu),
        "memory": f"{spec.memory_gi}Gi",
        "ephemeral-storage": f"{spec.disk_gi}Gi",
    }
    container = {
        "name": component,
        "image": spec.image,
        "command": command,
        "env": [{"name": "RNNCOURSE_WORK", "value": WORK_MOUNT}],
        "resources": {"requests": dict(amount), "limits": dict(amount)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "course-work", "mountPath": WORK_MOUNT}],
    }
    return {
        "metadata": {"labels": {**LABELS, "app.kubernetes.io/component": component}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [
                {"name": "course-work", "persistentVolumeClaim": {"claimName": _claim(spec)}}
            ],
        },
    }


def _claim(spec: JobSpec) -> str:
    return f"{spec.name}-work"


def grade_job(spec: JobSpec) -> dict:
    """The Indexed Job: pod ``i`` grades shard ``i`` (``$JOB_COMPLETION_INDEX``)."""
    command = ["course", "grade-shard", "--workers", str(spec.cpu)]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(spec, spec.name),
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.shards,
            "parallelism": spec.parallelism,
            "backoffLimitPerIndex": spec.retries_per_index,
            "activeDeadlineSeconds": spec.deadline_s,
            "ttlSecondsAfterFinished": spec.ttl_s,
            "template": _pod(spec, command, "grade-shard"),
        },
    }


def merge_job(spec: JobSpec) -> dict:
    """One pod that publishes the shards (apply once the grading Job is complete)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(spec, f"{spec.name}-merge"),
        "spec": {
            "completions": 1,
            "backoffLimit": 1,
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": spec.ttl_s,
            "template": _pod(spec, ["course", "merge-shards"], "merge-shards"),
        },
    }


def network_policy(spec: JobSpec) -> dict:
    """No traffic in or out of the grading pods (egress and ingress lists empty)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, f"{spec.name}-no-network"),
        "spec": {
            "podSelector": {"matchLabels": dict(LABELS)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [],
        },
    }


def quota(spec: JobSpec) -> dict:
    """The namespace's cap: the pods running at once, plus the merge pod, and the volume."""
    pods = spec.parallelism + 1
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(spec, f"{spec.name}-quota"),
        "spec": {
            "hard": {
                "pods": str(pods),
                "requests.cpu": str(pods * spec.cpu),
                "limits.cpu": str(pods * spec.cpu),
                "requests.memory": f"{pods * spec.memory_gi}Gi",
                "limits.memory": f"{pods * spec.memory_gi}Gi",
                "requests.ephemeral-storage": f"{pods * spec.disk_gi}Gi",
                "limits.ephemeral-storage": f"{pods * spec.disk_gi}Gi",
                "persistentvolumeclaims": "1",
                "requests.storage": f"{spec.volume_gi}Gi",
            }
        },
    }


def volume(spec: JobSpec) -> dict:
    """The course's work folder, shared by every pod (ReadWriteMany).

    A claim belongs to one namespace: the grader profile's claim (the hub's namespace) and
    this one must bind PersistentVolumes on the same share (``volume_name``)."""
    claim = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": f"{spec.volume_gi}Gi"}},
    }
    if spec.storage_class is not None:
        claim["storageClassName"] = spec.storage_class
    if spec.volume_name:
        claim["volumeName"] = spec.volume_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(spec, _claim(spec)),
        "spec": claim,
    }


def build(spec: JobSpec) -> Manifests:
    return Manifests(
        volume(spec), network_policy(spec), quota(spec), grade_job(spec), merge_job(spec)
    )


def write(manifests: Manifests, folder: Path) -> list[Path]:
    """One YAML file per object, in the order ``kubectl apply -f FOLDER`` should create them."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, obj in manifests.files().items():
        path = folder / name
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        paths.append(path)
    return paths
