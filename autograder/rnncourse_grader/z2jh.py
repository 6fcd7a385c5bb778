"""The keys the course relies on in its Zero to JupyterHub values (autograder/kubernetes/).

z2jh's own schema (values.schema.json in the chart) checks types; it cannot say that kernels
must have no egress, that every profile is bounded, that the GPU profile asks for a GPU, or
that nbgrader talks to the exchange service. ``problems`` does, on the loaded YAML.
"""

from pathlib import Path

VALUES = Path(__file__).resolve().parents[1] / "kubernetes" / "values.yaml"
PROFILES = ("student", "gpu", "grader")
EXCHANGE_PLUGINS = (
    "exchange",
    "fetch_assignment",
    "fetch_feedback",
    "release_assignment",
    "release_feedback",
    "list",
    "submit",
    "collect",
)
CLOSED = ("cloudMetadataServer", "dnsPortsCloudMetadataServer", "nonPrivateIPs", "privateIPs")


def load(path: Path = VALUES) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def _get(values: dict, dotted: str):
    node = values
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def profile_problems(values: dict) -> list[str]:
    """Student, GPU and grader profiles, each with CPU and memory limits; a GPU on ``gpu``."""
    found = []
    profiles = {p.get("slug"): p for p in _get(values, "singleuser.profileList") or []}
    for slug in PROFILES:
        if slug not in profiles:
            found.append(f"singleuser.profileList: no {slug!r} profile")
            continue
        override = profiles[slug].get("kubespawner_override", {})
        for key in ("cpu_limit", "mem_limit"):
            if key not in override:
                found.append(f"profile {slug}: no {key}")
    gpu = profiles.get("gpu", {}).get("kubespawner_override", {})
    if "gpu" in profiles and "nvidia.com/gpu" not in gpu.get("extra_resource_limits", {}):
        found.append("profile gpu: no nvidia.com/gpu in extra_resource_limits")
    if not any(p.get("default") and slug == "student" for slug, p in profiles.items()):
        found.append("profile student: not the default")
    if "_course_profiles" not in str(_get(values, "hub.extraConfig")):
        found.append("hub.extraConfig: the grader and GPU profiles are not kept to instructors")
    for key in ("singleuser.cpu.limit", "singleuser.memory.limit"):
        if _get(values, key) is None:
            found.append(f"{key}: not set")
    return found


def network_problems(values: dict) -> list[str]:
    """Kernels reach nothing but the hub, DNS and the exchange service."""
    found = []
    policy = _get(values, "singleuser.networkPolicy") or {}
    if policy.get("enabled") is not True:
        found.append("singleuser.networkPolicy: not enabled")
    rules = policy.get("egressAllowRules", {})
    for rule in CLOSED:
        if rules.get(rule) is not False:  # the chart's defaults open some of these
            found.append(f"singleuser.networkPolicy.egressAllowRules.{rule}: not false")
    for egress in policy.get("egress", []):
        targets = egress.get("to", [])
        if not targets or any("podSelector" not in t for t in targets):
            found.append("singleuser.networkPolicy.egress: a rule reaches beyond a pod selector")
    return found


def exchange_problems(values: dict) -> list[str]:
    """nbgrader's pluggable exchange points every operation at the exchange service."""
    config = str(_get(values, "singleuser.extraFiles.nbgrader-config.stringData") or "")
    found = [
        f"nbgrader config: c.ExchangeFactory.{name} is not nbexchange's"
        for name in EXCHANGE_PLUGINS
        if f'c.ExchangeFactory.{name} = "nbexchange.plugin.' not in config
    ]
    if not str(_get(values, "hub.services.nbexchange.url") or "").startswith("http"):
        found.append("hub.services.nbexchange: no url")
    return found


def problems(values: dict) -> list[str]:
    """Everything the course needs from the values and does not find."""
    if _get(values, "cull.enabled") is not True:
        extra = ["cull.enabled: idle servers are never stopped"]
    else:
        extra = []
    return profile_problems(values) + network_problems(values) + exchange_problems(values) + extra
