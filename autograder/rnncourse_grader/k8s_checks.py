"""Offline checks of the grading run's Kubernetes objects (no cluster needed).

Two layers: the Kubernetes API schema of ``k8s.K8S_VERSION`` in strict mode (unknown fields
are errors), through ``kubernetes-validate``, which bundles the schemas; and the course's own
rules, which a schema cannot express (limits on every container, an Indexed Job with one
completion per shard, a deadline, TTL, no token, non-root, a network policy that denies all
egress to exactly the grading pods, a quota that fits the pods running at once).
"""

from rnncourse_grader import k8s


def schema_problems(obj: dict) -> list[str]:
    """What the API server's schema (strict) rejects in ``obj``."""
    import kubernetes_validate

    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(obj, k8s.K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        return [f"{name}: schema: {path}: {err.message}"]
    return []


def pod_problems(name: str, pod: dict) -> list[str]:
    """A grading pod runs untrusted code: bounded, unprivileged, no credentials."""
    spec, found = pod.get("spec", {}), []
    if spec.get("automountServiceAccountToken") is not False:
        found.append(f"{name}: the pod would get a service-account token")
    if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
        found.append(f"{name}: the pod may run as root (runAsNonRoot is not true)")
    for container in spec.get("containers", []):
        res = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in res.get(kind, {}):
                    found.append(
                        f"{name}: container {container.get('name')} has no {kind}.{resource}"
                    )
        if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: container {container.get('name')} may escalate privileges")
    return found


def job_problems(job: dict, spec: k8s.JobSpec) -> list[str]:
    """The Indexed Job: one completion per shard, capped parallelism, bounded in time."""
    name, js = f"Job/{job['metadata']['name']}", job.get("spec", {})
    found = []
    if js.get("completionMode") != "Indexed":
        found.append(f"{name}: not an Indexed Job (pods would not know their shard)")
    if js.get("completions") != spec.shards:
        found.append(f"{name}: {js.get('completions')} completions for {spec.shards} shards")
    if not 1 <= js.get("parallelism", 0) <= spec.parallelism:
        found.append(f"{name}: parallelism {js.get('parallelism')} over the cap {spec.parallelism}")
    for key in ("activeDeadlineSeconds", "ttlSecondsAfterFinished", "backoffLimitPerIndex"):
        if not isinstance(js.get(key), int):
            found.append(f"{name}: no {key}")
    return found + pod_problems(name, js.get("template", {}))


def network_problems(policy: dict, pod_labels: dict) -> list[str]:
    """The policy must select the grading pods and allow them no egress at all."""
    ps, name = policy.get("spec", {}), f"NetworkPolicy/{policy['metadata']['name']}"
    found = []
    selector = ps.get("podSelector", {}).get("matchLabels", {})
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
        found.append(f"{name}: does not select the grading pods")
    if "Egress" not in ps.get("policyTypes", []) or ps.get("egress"):
        found.append(f"{name}: lets the grading pods reach the network")
    return found


def quota_problems(quota: dict, spec: k8s.JobSpec) -> list[str]:
    """The quota must admit the pods that run at once (else the Job stalls unnoticed)."""
    hard, name = quota.get("spec", {}).get("hard", {}), f"ResourceQuota/{quota['metadata']['name']}"
    found = []
    if int(hard.get("pods", 0)) < spec.parallelism:
        found.append(f"{name}: admits fewer pods than the Job's parallelism")
    if int(hard.get("limits.cpu", 0)) < spec.parallelism * spec.cpu:
        found.append(f"{name}: limits.cpu below parallelism x cpu")
    for key in ("limits.memory", "requests.memory", "requests.cpu"):
        if key not in hard:
            found.append(f"{name}: no {key}")
    return found


def problems(manifests: k8s.Manifests, spec: k8s.JobSpec) -> list[str]:
    """Everything wrong with the objects: the schema's findings, then the course's rules."""
    found = [p for obj in manifests.files().values() for p in schema_problems(obj)]
    found += job_problems(manifests.grade_job, spec)
    merge = manifests.merge_job
    found += pod_problems(f"Job/{merge['metadata']['name']}", merge["spec"]["template"])
    labels = manifests.grade_job["spec"]["template"]["metadata"]["labels"]
    found += network_problems(manifests.network_policy, labels)
    merge_labels = merge["spec"]["template"]["metadata"]["labels"]
    found += network_problems(manifests.network_policy, merge_labels)
    found += quota_problems(manifests.quota, spec)
    return found
