"""The course's Zero to JupyterHub values (autograder/kubernetes/values.yaml) hold the keys the
course relies on; each check is shown to catch the mistake it is for."""

import copy

import pytest

from rnncourse_grader import z2jh


@pytest.fixture(scope="module")
def values():
    return z2jh.load()


def test_the_values_file_has_everything_the_course_relies_on(values):
    assert z2jh.problems(values) == []


def test_the_exchange_config_in_the_values_is_valid_python(values):
    source = values["singleuser"]["extraFiles"]["nbgrader-config"]["stringData"]
    compile(source, "nbgrader_config.py", "exec")
    compile(values["hub"]["extraConfig"]["10-rnncourse-profiles"], "extraConfig", "exec")


def _profile(values, slug):
    return next(p for p in values["singleuser"]["profileList"] if p["slug"] == slug)


def _policy(values):
    return values["singleuser"]["networkPolicy"]


def _config(values):
    return values["singleuser"]["extraFiles"]["nbgrader-config"]


MISTAKES = {
    "no gpu profile": (
        lambda v: v["singleuser"]["profileList"].remove(_profile(v, "gpu")),
        "'gpu' profile",
    ),
    "gpu without a gpu": (
        lambda v: _profile(v, "gpu")["kubespawner_override"].pop("extra_resource_limits"),
        "nvidia.com/gpu",
    ),
    "grader without memory limit": (
        lambda v: _profile(v, "grader")["kubespawner_override"].pop("mem_limit"),
        "grader: no mem_limit",
    ),
    "student not default": (lambda v: _profile(v, "student").pop("default"), "default"),
    "profiles open to all": (lambda v: v["hub"].pop("extraConfig"), "instructors"),
    "no cpu limit": (lambda v: v["singleuser"]["cpu"].pop("limit"), "cpu.limit"),
    "policy off": (lambda v: _policy(v).update(enabled=False), "not enabled"),
    "internet open": (lambda v: _policy(v)["egressAllowRules"].pop("nonPrivateIPs"), "nonPriv"),
    "metadata open": (
        lambda v: _policy(v)["egressAllowRules"].update(cloudMetadataServer=True),
        "cloudMetadata",
    ),
    "egress to anywhere": (
        lambda v: _policy(v)["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
        "beyond a pod selector",
    ),
    "folder exchange": (
        lambda v: _config(v).update(
            stringData=_config(v)["stringData"].replace("ExchangeFactory.submit", "Exchange.x")
        ),
        "ExchangeFactory.submit",
    ),
    "no exchange service": (lambda v: v["hub"].pop("services"), "nbexchange: no url"),
    "no culling": (lambda v: v["cull"].update(enabled=False), "cull"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_check_catches_its_mistake(values, mistake):
    change, words = MISTAKES[mistake]
    broken = copy.deepcopy(values)
    change(broken)
    found = z2jh.problems(broken)
    assert any(words in p for p in found), found
