"""The deployment files, checked with the real tools that work without a Docker engine.

- deploy/prometheus/: `promtool check config`, `promtool check rules` and the alerts' unit
  tests (`promtool test rules`); promtool comes from Debian's `prometheus` package, which
  scripts/install-prometheus installs when it is missing.
- deploy/grafana/dashboards/: every panel's PromQL goes through `promtool check rules` as a
  recording rule, and every metric the dashboard and the alerts name is one the worker
  exports (streams.runtime.metrics.WorkerMetrics).
- docker-compose.yml: the services, their STREAMS_* variables (real settings, valid
  values), the files it mounts, and `docker compose config -q` when Compose is installed.
- deploy/Dockerfile and .dockerignore: the instructions, the build context, the package
  built from that context as the image builds it, its ENTRYPOINT + CMD and its HEALTHCHECK.

What needs the engine (building the image, starting the stack) cannot run here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pydantic import SecretStr
from ruamel.yaml import YAML

from streams.actions.metrics import ActionMetrics
from streams.devstack.process import cache_dir, free_port
from streams.runtime.metrics import ApiMetrics, ConsumerLag, WorkerMetrics
from streams.settings import ApiSettings, DispatcherSettings, WorkerSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "streams.json"
DASHBOARD_CODE = DEPLOY / "grafana" / "dashboard.py"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
INSTALL_PROMETHEUS = ROOT / "scripts" / "install-prometheus"

WORKERS = ("worker-1", "worker-2")
# Series that Prometheus makes itself for every target, not the worker.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# The families the dashboard must show (the panels the deployment promises).
DASHBOARD_FAMILIES = {
    "streams_activities_total",
    "streams_memberships_total",
    "streams_batches_total",
    "streams_state_conflicts_total",
    "streams_batch_seconds",
    "streams_batch_records",
    "streams_rules_info",
    "streams_campaign_memberships_total",
    "streams_dead_letters_total",
    "streams_activity_delay_seconds",
    "streams_consumer_lag",
    "streams_api_requests_total",
    "streams_api_request_seconds",
    "streams_action_calls_total",
}
# Grafana's built-in variables, replaced by a value of the same kind before promtool reads
# an expression.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def _unavailable(what: str, reason: str) -> NoReturn:
    message = f"{what} is unavailable: {reason}"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def _run(*args: str | Path, cwd: Path = ROOT, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
        **kwargs,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{shlex.join(result.args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def promtool() -> str:
    """`promtool`, installed by scripts/install-prometheus if it is missing."""
    found = shutil.which("promtool")
    if found:
        return found
    log = cache_dir() / "install-prometheus.log"
    with log.open("wb") as out:
        rc = subprocess.run(
            ["bash", str(INSTALL_PROMETHEUS)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        ).returncode
    found = shutil.which("promtool")
    if rc != 0 or not found:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        _unavailable("promtool", f"{INSTALL_PROMETHEUS} exited {rc}; last lines of {log}:\n{tail}")
    return found


# --- PromQL: the expressions of the dashboard and of the alerts --------------------------


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_exprs() -> dict[str, str]:
    """`panel title/refId` -> PromQL, Grafana's variables replaced."""
    exprs = {}
    for panel in dashboard_panels(json.loads(DASHBOARD.read_text())["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: unknown Grafana variable in {expr}"
            exprs[f"{panel['title']}/{target['refId']}"] = expr
    return exprs


def alert_exprs() -> dict[str, str]:
    rules = _yaml(PROMETHEUS / "alerts.yml")
    return {rule["alert"]: rule["expr"] for g in rules["groups"] for rule in g["rules"]}


_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label
    matchers, ranges and groupings are gone, and that is not a function or a keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


def exported_names() -> set[str]:
    """Every series name the worker's, the API's and the dispatcher's /metrics can carry,
    from their `# TYPE` lines."""
    worker = WorkerMetrics(ConsumerLag(["127.0.0.1:1"], "group", "topic"))  # never connects
    names = _type_names(worker.render()) | _type_names(ApiMetrics().render())
    return names | _type_names(ActionMetrics().render())


def _type_names(rendered: bytes) -> set[str]:
    suffixes = {
        "counter": ("",),  # prometheus_client's TYPE line of a counter already ends in _total
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    names: set[str] = set()
    for line in rendered.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.update(name + suffix for suffix in suffixes[kind])
    return names


def family(name: str) -> str:
    return re.sub(r"_(?:bucket|sum|count)$", "", name)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (outcome) (rate(streams_activities_total{job="w"}[5m]))',
            {"streams_activities_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(a_bucket[1m]))) > 1 and on (instance) up",
            {"a_bucket", "up"},
        ),
        ("max by (instance) (up) == 1 unless on (instance) b offset 5m > 0", {"up", "b"}),
        ('count(count by (v) (c{v=~"x|y"})) > 1e3', {"c"}),
    ],
)
def test_metric_names_are_read_off_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# --- Prometheus ------------------------------------------------------------------------


def test_prometheus_config_is_valid(promtool: str) -> None:
    """The configuration and the rule files it names (alerts.yml) load."""
    out = _ok(_run(promtool, "check", "config", PROMETHEUS / "prometheus.yml"))
    assert "1 rule files found" in out


def test_alert_rules_are_valid(promtool: str) -> None:
    _ok(_run(promtool, "check", "rules", PROMETHEUS / "alerts.yml"))


def test_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    _ok(_run(promtool, "test", "rules", PROMETHEUS / "alerts_test.yml"))


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    """alerts_test.yml shows each alert firing somewhere and silent somewhere else."""
    tests = _yaml(PROMETHEUS / "alerts_test.yml")
    assert tests["rule_files"] == ["alerts.yml"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(alert_exprs())
    assert {"StreamsWorkerDown", "StreamsStateConflicts"} <= alerts
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - silent == set(), "alerts never shown silent"


def test_prometheus_scrapes_every_worker_of_the_compose_file() -> None:
    config = _yaml(PROMETHEUS / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "streams-worker"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for static in job["static_configs"] for t in static["targets"]}
    services = _yaml(COMPOSE)["services"]
    expected = {f"{w}:{services[w]['environment']['STREAMS_WEB_PORT']}" for w in WORKERS}
    assert targets == expected


# --- Grafana ----------------------------------------------------------------------------


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Each panel's expression, as a recording rule, through promtool's PromQL parser."""
    exprs = dashboard_exprs()
    assert exprs, "the dashboard has no queries"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": expr}
                    for n, expr in enumerate(exprs.values())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps(rules, indent=2))  # JSON is YAML
    out = _ok(_run(promtool, "check", "rules", path))
    assert f"SUCCESS: {len(exprs)} rules found" in out


def test_dashboard_and_alerts_use_only_exported_metrics() -> None:
    exported = exported_names()
    assert "streams_activities_total" in exported
    assert "streams_batch_seconds_bucket" in exported
    queries = {f"dashboard {k}": v for k, v in dashboard_exprs().items()}
    queries.update({f"alert {k}": v for k, v in alert_exprs().items()})
    unknown = {
        where: sorted(metric_names(expr) - exported - SCRAPE_SERIES)
        for where, expr in queries.items()
        if metric_names(expr) - exported - SCRAPE_SERIES
    }
    assert unknown == {}, f"metrics the worker does not export; it exports {sorted(exported)}"
    # The alerts' unit tests feed series under the real names too.
    tests = _yaml(PROMETHEUS / "alerts_test.yml")
    fed = {s["series"].split("{")[0] for case in tests["tests"] for s in case["input_series"]}
    assert fed - exported - SCRAPE_SERIES == set()


def test_dashboard_json_is_what_its_code_generates() -> None:
    """streams.json is generated by deploy/grafana/dashboard.py (reviewed as a diff of
    Python): run that file after editing it."""
    spec = importlib.util.spec_from_file_location("dashboard_code", DASHBOARD_CODE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DASHBOARD.read_text() == module.render(), f"run python {DASHBOARD_CODE}"


def test_dashboard_has_the_promised_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = {family(name) for expr in dashboard_exprs().values() for name in metric_names(expr)}
    assert used >= DASHBOARD_FAMILIES, f"no panel for {sorted(DASHBOARD_FAMILIES - used)}"
    exprs = dashboard_exprs().values()
    for quantile in ("0.5", "0.99"):
        assert any(
            f"histogram_quantile({quantile}," in e and "streams_batch_seconds_bucket" in e
            for e in exprs
        ), f"no batch latency p{quantile}"
    panel_ids = [p["id"] for p in dashboard_panels(dashboard["panels"])]
    assert len(panel_ids) == len(set(panel_ids)), "panel ids must be unique"
    datasource = _yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    (source,) = datasource["datasources"]
    for panel in dashboard_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == source["uid"], panel["title"]


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    grafana = _yaml(COMPOSE)["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    provider = _yaml(DEPLOY / "grafana/provisioning/dashboards/streams.yml")
    (dashboards,) = provider["providers"]
    source = next(src for src, dst in mounts.items() if dst == dashboards["options"]["path"])
    assert (ROOT / source / DASHBOARD.name).is_file()
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


# --- docker-compose.yml -----------------------------------------------------------------


def test_compose_services() -> None:
    compose = _yaml(COMPOSE)
    services = compose["services"]
    assert set(services) >= {"kafka", "redis", *WORKERS, "api", "prometheus", "grafana"}

    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.0"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "EXTERNAL://localhost:9094" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert any(p.endswith("9094:9094") for p in kafka["ports"]), "no host listener"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert str(env[key]) == "1", key
    assert any(v.endswith(":" + env["KAFKA_LOG_DIRS"]) for v in kafka["volumes"])

    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync always" in command  # see README: power loss under everysec
    assert any(v.endswith(":/data") for v in redis["volumes"])

    for name in WORKERS:
        worker = services[name]
        assert worker["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}
        assert worker.get("command") is None  # the image's CMD: worker
        assert worker["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
    for dependency in ("kafka", "redis"):
        assert services[dependency]["healthcheck"]["test"]
    envs = [services[w]["environment"] for w in WORKERS]
    assert all(e == envs[0] for e in envs), "the workers must be configured alike"
    assert envs[0]["STREAMS_BROKER"] == "kafka:9092"
    assert envs[0]["STREAMS_REDIS_URL"] == "redis://redis:6379/0"
    assert str(envs[0]["STREAMS_PARTITIONS"]) == "8"
    published = [p.split(":")[0] for w in WORKERS for p in services[w]["ports"]]
    assert published == ["6066", "6067"]

    api = services["api"]
    assert api["profiles"] == ["api"]
    assert api["command"] == ["api"]
    assert api["build"] == services["worker-1"]["build"]
    assert api["depends_on"] == {"kafka": {"condition": "service_healthy"}}  # no Redis
    api_env = api["environment"]
    assert api_env["STREAMS_BROKER"] == "kafka:9092"
    for shared in ("STREAMS_TOPIC_ACTIVITIES", "STREAMS_RULES_DIR"):  # what the workers read
        assert api_env.get(shared) == envs[0].get(shared), shared
    # The clients come from the environment, with no default secret (issue 7).
    assert api_env["STREAMS_API_CLIENTS"] == "${STREAMS_API_CLIENTS:-}"
    port = str(api_env.get("STREAMS_API_PORT", ApiSettings.model_fields["api_port"].default))
    assert api["ports"] == [f"127.0.0.1:{port}:{port}"], "the API is published on loopback only"
    probe = api["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"], probe
    assert f"http://localhost:{port}/health" in probe[3] and "urllib" in probe[3]

    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")
    for volume in set(compose["volumes"]):
        assert any(
            v.split(":")[0] == volume for s in services.values() for v in s.get("volumes", [])
        ), f"volume {volume} is not used"


def test_compose_mounts_exist() -> None:
    for name, service in _yaml(COMPOSE)["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


# Compose's interpolation with a default: `${VAR:-default}` or `${VAR-default}`.
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _interpolated(value: str) -> str:
    """A value as Compose reads it when none of the variables it names is set (the
    documented defaults)."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def _settings_class(
    service: str,
) -> type[WorkerSettings] | type[ApiSettings] | type[DispatcherSettings]:
    if service == "dispatcher":
        return DispatcherSettings
    return ApiSettings if service == "api" else WorkerSettings


def test_compose_streams_variables_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every STREAMS_* variable names a field of the settings of the process the service
    runs (ApiSettings for `api`, WorkerSettings for the workers), with a value it accepts."""
    for name, service in _yaml(COMPOSE)["services"].items():
        env = {k: _interpolated(str(v)) for k, v in (service.get("environment") or {}).items()}
        streams = {k: v for k, v in env.items() if k.startswith("STREAMS_")}
        if not name.startswith("worker") and name not in ("api", "dispatcher") and not streams:
            continue
        kind = _settings_class(name)
        fields = {f"STREAMS_{field.upper()}": field for field in kind.model_fields}
        unknown = sorted(set(streams) - set(fields))
        assert unknown == [], (
            f"{name}: not a {kind.__name__} setting: {unknown}; settings: {sorted(fields)}"
        )
        for variable in [v for v in os.environ if v.startswith("STREAMS_")]:
            monkeypatch.delenv(variable)
        for variable, value in streams.items():
            monkeypatch.setenv(variable, value)
        settings = kind()
        for variable, value in streams.items():
            actual = getattr(settings, fields[variable])
            if isinstance(actual, SecretStr):
                actual = actual.get_secret_value()
            assert str(actual) == value, f"{name}: {variable}"


def test_compose_interpolation_defaults() -> None:
    assert _interpolated("${STREAMS_API_CLIENTS:-demo:change-me}") == "demo:change-me"
    assert _interpolated("a-${X-b}-${Y}") == "a-b-"
    assert _interpolated("kafka:9092") == "kafka:9092"


def _compose_v2_works() -> bool:
    if shutil.which("docker") is None:
        return False
    return _run("docker", "compose", "version").returncode == 0


@pytest.mark.skipif(not _compose_v2_works(), reason="`docker compose` (v2) is not installed")
def test_docker_compose_config_is_valid() -> None:
    _ok(_run("docker", "compose", "-f", COMPOSE, "config", "-q"))
    _ok(_run("docker", "compose", "-f", COMPOSE, "--profile", "api", "config", "-q"))


# --- deploy/Dockerfile and .dockerignore ------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, list[str], str]]:
    """(INSTRUCTION, flags, arguments) for each instruction, continuation lines joined."""
    instructions = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        flags = []
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        instructions.append((keyword.upper(), flags, rest))
        current = ""
    return instructions


def instruction(name: str) -> tuple[list[str], str]:
    found = [(flags, args) for keyword, flags, args in dockerfile_instructions() if keyword == name]
    assert found, f"no {name} in {DOCKERFILE}"
    return found[-1]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore pattern (Go's filepath.Match plus `**`) as a regex."""
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether Docker leaves the path out of the context: the last matching pattern wins,
    and a directory left out takes its whole tree with it."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.match(prefix) for prefix in prefixes):
            result = not negated
    return result


def build_context() -> list[str]:
    """The files Docker sends as the build context of `docker build -f deploy/Dockerfile .`."""
    patterns = dockerignore_patterns()
    files = []
    for directory, dirs, names in os.walk(ROOT):
        base = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = [d for d in dirs if not ignored(prefix + d, patterns)]
        files += [prefix + n for n in names if not ignored(prefix + n, patterns)]
    return sorted(files)


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        (".venv/bin/python", True),
        ("streams/__pycache__/x.cpython-311.pyc", True),
        ("streams/engine/__pycache__/x.pyc", True),
        ("streams.egg-info/PKG-INFO", True),
        ("tests/unit/test_x.py", True),
        ("streams/engine/loader.py", False),
        ("rules/campaigns/x.yaml", False),
        ("pyproject.toml", False),
    ],
)
def test_dockerignore_matching(path: str, excluded: bool) -> None:
    assert ignored(path, dockerignore_patterns()) is excluded


def test_dockerfile_instructions() -> None:
    _, arg = instruction("ARG")
    name, _, default = arg.partition("=")
    froms = [args for keyword, _, args in dockerfile_instructions() if keyword == "FROM"]
    assert all(f.split()[0] in (f"${{{name}}}", "python:3.11-slim") for f in froms)
    assert default == "python:3.11-slim"
    _, user = instruction("USER")
    assert user.split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert json.loads(instruction("ENTRYPOINT")[1]) == ["python", "-m", "streams"]
    assert json.loads(instruction("CMD")[1]) == ["worker"]
    assert "6066" in instruction("EXPOSE")[1].split()
    healthcheck = json.loads(instruction("HEALTHCHECK")[1].removeprefix("CMD").strip())
    assert healthcheck[0] == "python"
    assert "/health" in healthcheck[-1]


def test_the_image_compiles_the_engine_where_the_selection_looks() -> None:
    """The `engine` stage runs `streams.engine_build` with the dev extra's mypy and
    setuptools, and the runtime stage puts the build at `build/engine/` beside the
    installed package (the site-packages of the default image's Python), which is where
    `streams.engine_select` looks for it (`BUILD_DIR` relative to the package's parent)."""
    import tomllib

    from streams.engine_select import BUILD_DIR
    from streams.engine_select import ROOT as PACKAGE_PARENT

    runs = " ".join(args for keyword, _, args in dockerfile_instructions() if keyword == "RUN")
    assert "python -m streams.engine_build" in runs
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name in ("mypy", "setuptools"):
        (pin,) = [d for d in dev["optional-dependencies"]["dev"] if re.match(name + "[<>=]", d)]
        assert f'"{pin}"' in runs, f"the image's {name} is not pinned as the dev extra's {pin}"
    (copy,) = [
        args
        for keyword, flags, args in dockerfile_instructions()
        if keyword == "COPY" and "--from=engine" in flags
    ]
    _, _, default = instruction("ARG")[1].partition("=")
    version = default.removeprefix("python:").split("-")[0]
    site = f"/usr/local/lib/python{version}/site-packages"
    assert copy.split()[1] == f"{site}/{BUILD_DIR.relative_to(PACKAGE_PARENT).as_posix()}"


def test_build_context_has_what_the_dockerfile_copies() -> None:
    context = build_context()
    for keyword, flags, args in dockerfile_instructions():
        if keyword != "COPY" or any(f.startswith("--from=") for f in flags):
            continue
        *sources, _destination = args.split()
        for source in sources:
            assert any(f == source or f.startswith(source + "/") for f in context), (
                f"COPY {source}: not in the build context (see .dockerignore)"
            )
    assert "streams/state/lua" in {str(Path(f).parent) for f in context}
    assert not [f for f in context if f.startswith((".venv/", ".git/", "tests/"))]
    assert not [f for f in context if "__pycache__" in f]
    size = sum((ROOT / f).stat().st_size for f in context)
    assert size < 5 * 1024 * 1024, f"build context of {size} bytes"


@pytest.fixture(scope="module")
def image_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the image holds, built the way deploy/Dockerfile builds it: a wheel of the
    package from the build context (non-editable), installed apart from the source tree,
    with rules/ beside it; dependencies come from this virtualenv. Returns the workdir."""
    root = tmp_path_factory.mktemp("image")
    context = root / "context"
    for relative in build_context():
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, context / relative)
    wheels = root / "wheels"
    _ok(_run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, context))
    (wheel,) = wheels.glob("streams-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert any(n.startswith("streams/state/lua/") and n.endswith(".lua") for n in names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    site = root / "site-packages"
    _ok(_run(sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "-t", site, wheel))
    app = root / "app"
    app.mkdir()
    shutil.copytree(context / "rules", app / "rules")
    return app


def _image_env(app: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    env.update(
        PYTHONPATH=str(app.parent / "site-packages"),
        HOME=str(app.parent / "home"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        STREAMS_RULES_DIR=str(app / "rules"),
        **extra,
    )
    return env


def test_image_runs_its_entrypoint_and_cmd(image_layout: Path) -> None:
    """ENTRYPOINT + CMD (`python -m streams worker`) is a command of the installed
    package, run from the image's workdir: `--help` works and the rules it ships validate."""
    command = json.loads(instruction("ENTRYPOINT")[1]) + json.loads(instruction("CMD")[1])
    env = _image_env(image_layout)
    where = _ok(
        _run("python", "-c", "import streams; print(streams.__file__)", cwd=image_layout, env=env)
    )
    assert Path(where.strip()).is_relative_to(image_layout.parent / "site-packages")
    out = _ok(_run(*command, "--help", cwd=image_layout, env=env))
    assert "STREAMS_BROKER" in out
    entrypoint = json.loads(instruction("ENTRYPOINT")[1])
    _ok(_run(*entrypoint, "validate", "rules", cwd=image_layout, env=env))


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
def test_healthcheck_command(image_layout: Path, status: int | None, healthy: bool) -> None:
    """The HEALTHCHECK command passes when /health answers 200 on STREAMS_WEB_PORT, and
    fails when it answers an error or nothing listens."""
    command = json.loads(instruction("HEALTHCHECK")[1].removeprefix("CMD").strip())
    port = free_port()
    server = None
    if status is not None:
        handler = type("Handler", (_Health,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = _image_env(image_layout, STREAMS_WEB_PORT=str(port))
        result = _run(*command, cwd=image_layout, env=env)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    assert (result.returncode == 0) is healthy, result.stderr
