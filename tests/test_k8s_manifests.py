"""The grading Job's Kubernetes objects, checked offline: the API schema of Kubernetes
(strict, through kubernetes-validate's bundled schemas) and the course's own rules. Each rule
is shown to catch the mistake it is for."""

import copy

import pytest
import yaml

from rnncourse_grader import cli, k8s, k8s_checks


@pytest.fixture
def spec():
    return k8s.JobSpec(shards=12, parallelism=5, image="registry.example/grader:1")


def test_the_emitted_objects_pass_the_schema_and_the_rules(spec, tmp_path):
    manifests = k8s.build(spec)
    assert k8s_checks.problems(manifests, spec) == []
    paths = k8s.write(manifests, tmp_path)
    assert [p.name for p in paths] == sorted(p.name for p in paths)  # kubectl's apply order
    for path in paths:
        obj = yaml.safe_load(path.read_text())
        assert k8s_checks.schema_problems(obj) == [], path.name
    job = yaml.safe_load((tmp_path / "10-grade-job.yaml").read_text())["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 12, 5)
    command = job["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["course", "grade-shard"] and "--index" not in command


def test_the_work_volume_can_bind_a_given_share():
    spec = k8s.JobSpec(shards=2, volume_name="course-work-nfs", storage_class="")
    manifests = k8s.build(spec)
    assert manifests.volume["spec"]["volumeName"] == "course-work-nfs"
    assert manifests.volume["spec"]["accessModes"] == ["ReadWriteMany"]
    assert k8s_checks.problems(manifests, spec) == []


def test_parallelism_is_capped_by_the_shards():
    assert k8s.JobSpec(shards=3, parallelism=50).parallelism == 3
    assert k8s.JobSpec(shards=3, parallelism=0).parallelism == 1


def _container(m):
    return m.grade_job["spec"]["template"]["spec"]["containers"][0]


MISTAKES = {
    "no memory limit": (lambda m: _container(m)["resources"]["limits"].pop("memory"), "limits"),
    "no cpu request": (lambda m: _container(m)["resources"]["requests"].pop("cpu"), "requests"),
    "not indexed": (lambda m: m.grade_job["spec"].pop("completionMode"), "Indexed"),
    "wrong completions": (lambda m: m.grade_job["spec"].update(completions=11), "completions"),
    "parallelism over cap": (lambda m: m.grade_job["spec"].update(parallelism=9), "cap"),
    "no deadline": (lambda m: m.grade_job["spec"].pop("activeDeadlineSeconds"), "Deadline"),
    "no ttl": (lambda m: m.grade_job["spec"].pop("ttlSecondsAfterFinished"), "ttl"),
    "no retry cap": (lambda m: m.grade_job["spec"].pop("backoffLimitPerIndex"), "backoff"),
    "token": (
        lambda m: m.grade_job["spec"]["template"]["spec"].pop("automountServiceAccountToken"),
        "token",
    ),
    "root": (
        lambda m: m.merge_job["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
        "root",
    ),
    "escalation": (
        lambda m: _container(m)["securityContext"].pop("allowPrivilegeEscalation"),
        "escalate",
    ),
    "egress allowed": (lambda m: m.network_policy["spec"].update(egress=[{}]), "network"),
    "egress not enforced": (
        lambda m: m.network_policy["spec"].update(policyTypes=["Ingress"]),
        "network",
    ),
    "policy misses the pods": (
        lambda m: m.network_policy["spec"]["podSelector"]["matchLabels"].update(app="x"),
        "select",
    ),
    "quota too small": (lambda m: m.quota["spec"]["hard"].update(pods="2"), "fewer pods"),
    "quota cpu too small": (lambda m: m.quota["spec"]["hard"].update({"limits.cpu": "4"}), "cpu"),
    "quota without memory": (lambda m: m.quota["spec"]["hard"].pop("limits.memory"), "memory"),
    "typo in a field": (lambda m: m.grade_job["spec"].update(paralelism=3), "schema"),
    "bad value type": (lambda m: m.volume["spec"].update(accessModes="ReadWriteMany"), "schema"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_rule_catches_its_mistake(spec, mistake):
    change, words = MISTAKES[mistake]
    manifests = copy.deepcopy(k8s.build(spec))
    change(manifests)
    found = k8s_checks.problems(manifests, spec)
    assert found, mistake
    assert any(words.lower() in p.lower() for p in found), found


def test_course_grade_takes_the_k8s_options(monkeypatch):
    seen = {}
    monkeypatch.setattr(
        cli.cli_k8s, "emit", lambda args, limits: seen.update(args=args, limits=limits) or 0
    )
    argv = ["grade", "01_rnn_forward", "--emit-k8s", "out", "--shards", "4", "--memory-mb", "512"]
    assert cli.main(argv) == 0
    args = seen["args"]
    assert (args.emit_k8s, args.shards, args.ids) == ("out", 4, ["01_rnn_forward"])
    assert seen["limits"]["memory_mb"] == 512
