"""The kustomize components of deploy/kubernetes/components/: KEDA autoscaling on the Redis
lists (replacing the HPAs, never beside them) and the Prometheus Operator's PodMonitors and
PrometheusRule, validated offline (core kinds with kubernetes-validate, custom resources with
the CRD schemas of tests/data/crds/) and rendered with ``kubectl kustomize``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
COMPONENTS = K8S / "components"
CRDS = ROOT / "tests" / "data" / "crds"
KEDA_COMPONENTS = ("keda", "keda-sentinel")
SCALER = {"keda": "redis", "keda-sentinel": "redis-sentinel"}
# The Redis lists each worker pool takes (its -Q): kombu's queues are Redis lists of those names.
POOL_QUEUES = {"publishing-worker-high": ["high"], "publishing-worker": ["high", "medium", "low"]}
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_v1alpha1_scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_v1alpha1_triggerauthentication.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_v1_podmonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_prometheusrule.json",
}
K8S_VERSION = kubernetes_validate.utils.latest_version()


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomization(component: str) -> dict[str, Any]:
    return dict(yaml.safe_load((COMPONENTS / component / "kustomization.yaml").read_text()))


def component_resources(component: str) -> list[dict[str, Any]]:
    return [
        r for name in kustomization(component)["resources"] for r in documents(COMPONENTS / component / name)
    ]


def all_component_resources() -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, r) for c in sorted(COMPONENTS.iterdir()) for r in component_resources(c.name)]


def validate(resource: dict[str, Any]) -> None:
    """Against the CRD schema of a custom resource, else the Kubernetes schema."""
    schema_file = CRD_SCHEMAS.get((resource["apiVersion"], resource["kind"]))
    if schema_file is None:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        return
    schema = json.loads((CRDS / schema_file).read_text())
    jsonschema.Draft202012Validator(schema).validate(resource)


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is missing in CI: the components cannot be rendered")
        pytest.skip("kubectl is not installed")
    return path


def render(tmp_path: Path, components: list[str]) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of an overlay of the base with these components, as a user writes one."""
    base = os.path.relpath(K8S, tmp_path)
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [base],
        "components": [f"{base}/components/{c}" for c in components],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    result = subprocess.run(
        [kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


# --- every resource validates ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("component", "resource"),
    all_component_resources(),
    ids=lambda v: v if isinstance(v, str) else f"{v['kind']}/{v['metadata']['name']}",
)
def test_every_component_resource_validates(component: str, resource: dict[str, Any]) -> None:
    validate(resource)
    assert resource["metadata"]["namespace"] == "publishing"


@pytest.mark.parametrize("component", sorted(c.name for c in COMPONENTS.iterdir()))
def test_every_component_is_a_kustomize_component(component: str) -> None:
    assert kustomization(component)["kind"] == "Component"


BAD = [
    pytest.param("ScaledObject", lambda r: r["spec"]["triggers"][0]["metadata"].update(listLength=10), id="number-in-trigger-metadata"),
    pytest.param("ScaledObject", lambda r: r["spec"].pop("scaleTargetRef"), id="scaledobject-without-target"),
    pytest.param("ScaledObject", lambda r: r["spec"].update(minReplicas=2), id="hpa-field-in-scaledobject"),
    pytest.param("TriggerAuthentication", lambda r: r["spec"]["secretTargetRef"][0].pop("key"), id="secret-ref-without-key"),
    pytest.param("PodMonitor", lambda r: r["spec"]["podMetricsEndpoints"][0].update(interval="15 seconds"), id="bad-interval"),
    pytest.param("PodMonitor", lambda r: r["spec"]["podMetricsEndpoints"][0]["relabelings"][0].update(action="rename"), id="bad-relabel-action"),
    pytest.param("PrometheusRule", lambda r: r["spec"]["groups"][0]["rules"][0].pop("expr"), id="rule-without-expr"),
    pytest.param("PrometheusRule", lambda r: r["spec"]["groups"][0]["rules"][0]["labels"].update(page=True), id="label-not-a-string"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "breakage"), BAD)
def test_the_crd_schemas_reject_a_broken_resource(kind: str, breakage: Any) -> None:
    resource = next(r for _, r in all_component_resources() if r["kind"] == kind)
    broken = json.loads(json.dumps(resource))
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


# --- KEDA ---------------------------------------------------------------------------------------


def hpa_names() -> set[str]:
    return {r["metadata"]["name"] for r in documents(K8S / "hpa.yaml")}


@pytest.mark.parametrize("component", KEDA_COMPONENTS)
def test_keda_scales_each_pool_on_the_redis_lists_it_takes(component: str) -> None:
    resources = component_resources(component)
    scaled = {r["spec"]["scaleTargetRef"]["name"]: r for r in resources if r["kind"] == "ScaledObject"}
    assert set(scaled) == set(POOL_QUEUES) == hpa_names()
    auth = {r["metadata"]["name"] for r in resources if r["kind"] == "TriggerAuthentication"}
    for pool, queues in POOL_QUEUES.items():
        triggers = scaled[pool]["spec"]["triggers"]
        assert [t["metadata"]["listName"] for t in triggers] == queues
        for trigger in triggers:
            assert trigger["type"] == SCALER[component]
            assert trigger["authenticationRef"]["name"] in auth
            # The password comes from the TriggerAuthentication, never inline.
            assert not {"password", "passwordFromEnv"} & set(trigger["metadata"])


@pytest.mark.parametrize("component", KEDA_COMPONENTS)
def test_keda_reads_the_redis_password_from_the_redis_secret(component: str) -> None:
    [auth] = [r for r in component_resources(component) if r["kind"] == "TriggerAuthentication"]
    [ref] = auth["spec"]["secretTargetRef"]
    redis_secret = next(r for r in documents(K8S / "addons" / "redis.yaml") if r["kind"] == "Secret")
    assert (ref["parameter"], ref["name"]) == ("password", redis_secret["metadata"]["name"])
    assert ref["key"] in redis_secret["stringData"]


@pytest.mark.parametrize("component", KEDA_COMPONENTS)
def test_keda_components_delete_every_hpa_of_the_base(component: str) -> None:
    deleted = set()
    for entry in kustomization(component)["patches"]:
        patch = yaml.safe_load(entry["patch"])
        assert patch["$patch"] == "delete" and patch["kind"] == "HorizontalPodAutoscaler"
        deleted.add(patch["metadata"]["name"])
    assert deleted == hpa_names()


@pytest.mark.parametrize("component", KEDA_COMPONENTS)
def test_rendered_with_keda_no_hpa_scales_a_worker(tmp_path: Path, component: str) -> None:
    rendered = render(tmp_path, [component, "prometheus-operator"])
    kinds = {(r["kind"], r["metadata"]["name"]) for r in rendered}
    assert not [r for r in rendered if r["kind"] == "HorizontalPodAutoscaler"]
    assert {("ScaledObject", pool) for pool in POOL_QUEUES} <= kinds
    assert {("Deployment", pool) for pool in POOL_QUEUES} <= kinds
    for resource in rendered:
        if (resource["apiVersion"], resource["kind"]) in CRD_SCHEMAS:
            validate(resource)


def test_rendered_without_keda_the_hpas_stay(tmp_path: Path) -> None:
    rendered = render(tmp_path, ["prometheus-operator"])
    assert {r["metadata"]["name"] for r in rendered if r["kind"] == "HorizontalPodAutoscaler"} == hpa_names()
    assert not [r for r in rendered if r["kind"] == "ScaledObject"]


# --- the Prometheus Operator --------------------------------------------------------------------


def pod_template_labels(name: str) -> dict[str, str]:
    for path in K8S.glob("*.yaml"):
        for resource in documents(path):
            if resource["kind"] == "Deployment" and resource["metadata"]["name"] == name:
                return dict(resource["spec"]["template"]["metadata"]["labels"])
    raise AssertionError(f"no Deployment {name}")


def container_ports(name: str) -> set[str]:
    for path in K8S.glob("*.yaml"):
        for resource in documents(path):
            if resource["kind"] == "Deployment" and resource["metadata"]["name"] == name:
                containers = resource["spec"]["template"]["spec"]["containers"]
                return {p["name"] for c in containers for p in c.get("ports", [])}
    raise AssertionError(f"no Deployment {name}")


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


PODMONITOR_TARGETS = {
    "publishing-api": (["publishing-api"], "http"),
    "publishing-workers": (["publishing-worker-high", "publishing-worker"], "metrics"),
}


@pytest.mark.parametrize(("monitor", "expected"), PODMONITOR_TARGETS.items())
def test_podmonitors_scrape_the_metrics_ports_under_the_rules_job_names(
    monitor: str, expected: tuple[list[str], str]
) -> None:
    deployments, port = expected
    monitors = {
        r["metadata"]["name"]: r
        for r in component_resources("prometheus-operator")
        if r["kind"] == "PodMonitor"
    }
    spec = monitors[monitor]["spec"]
    for deployment in ["publishing-api", "publishing-worker-high", "publishing-worker", "publishing-flower"]:
        assert selects(spec["selector"], pod_template_labels(deployment)) is (deployment in deployments), (
            deployment
        )
    [endpoint] = spec["podMetricsEndpoints"]
    for deployment in deployments:
        assert endpoint["port"] in container_ports(deployment)
    assert endpoint["port"] == port
    job = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
    assert [r["replacement"] for r in job] == [monitor]


def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "prometheus_build", ROOT / "deploy" / "prometheus" / "build.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_prometheusrule_is_generated_from_the_rules() -> None:
    build = build_script()
    rules = yaml.safe_load(build.RULES.read_text())
    assert build.PROMETHEUS_RULE.read_text() == build.prometheus_rule(rules), (
        "the PrometheusRule is stale: run `python deploy/prometheus/build.py`"
    )
    [resource] = documents(build.PROMETHEUS_RULE)
    assert resource["spec"]["groups"] == rules["groups"]


def test_setting_the_runbook_base_rewrites_every_link() -> None:
    build = build_script()
    text = build.RULES.read_text()
    assert build.runbook_bases(text) == {build.PLACEHOLDER_BASE}
    moved = build.set_runbook_base(text, "https://docs.example.com/ops.md/")
    assert build.runbook_bases(moved) == {"https://docs.example.com/ops.md"}
    assert moved.count("runbook_url: https://docs.example.com/ops.md#") == text.count("runbook_url:")


# --- and against the CRDs as their projects publish them ----------------------------------------

PUBLISHED = CRDS / "published"


def published_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``kind`` at ``api_version`` from the CRD manifests kept in
    tests/data/crds/published (copied whole from the KEDA and Prometheus Operator releases)."""
    group, version = api_version.split("/")
    for path in sorted(PUBLISHED.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["group"] != group or crd["spec"]["names"]["kind"] != kind:
            continue
        for entry in crd["spec"]["versions"]:
            if entry["name"] == version:
                return dict(entry["schema"]["openAPIV3Schema"])
    raise AssertionError(f"no published CRD for {api_version} {kind}")


@pytest.mark.parametrize(
    ("component", "resource"),
    [(c, r) for c, r in all_component_resources() if (r["apiVersion"], r["kind"]) in CRD_SCHEMAS],
    ids=lambda v: v if isinstance(v, str) else f"{v['kind']}/{v['metadata']['name']}",
)
def test_every_custom_resource_validates_against_its_published_crd(
    component: str, resource: dict[str, Any]
) -> None:
    schema = published_schema(resource["apiVersion"], resource["kind"])
    # The API server validates the object without its apiVersion/kind/metadata envelope rules
    # beyond what the schema says; OpenAPI v3 schemas read as JSON Schema draft 4 keywords.
    jsonschema.Draft4Validator(schema).validate(resource)


def test_the_published_crds_reject_a_wrong_type() -> None:
    resource = next(r for _, r in all_component_resources() if r["kind"] == "ScaledObject")
    broken = json.loads(json.dumps(resource))
    broken["spec"]["maxReplicaCount"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(published_schema(broken["apiVersion"], "ScaledObject")).validate(broken)
