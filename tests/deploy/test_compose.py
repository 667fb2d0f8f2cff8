"""deploy/compose.yaml and its Prometheus config: valid, scalable, and wired to the real code and files.

No Docker engine is needed: the file is checked against the Compose Specification's JSON
schema (the copy vendored by check-jsonschema, from compose-spec/compose-spec), its
settings against ``schemas.settings``, its mounts against the repository and its
Prometheus config with ``promtool``.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from schemas.settings import ConsumerSettings, environment_variables

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus-compose.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "docmill.json"
DASHBOARD_PROVIDER = GRAFANA / "provisioning" / "dashboards" / "docmill.yml"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"

SERVICES = {"kafka", "topics", "consumer", "producer", "prometheus", "grafana"}
DOCMILL_SERVICES = ("topics", "consumer", "producer")
METRICS_PORT: int = ConsumerSettings.model_fields["metrics_port"].default
SHUTDOWN_GRACE: float = ConsumerSettings.model_fields["shutdown_grace_seconds"].default
SETTING_VARIABLES = environment_variables()

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}, ${NAME:+alt}, $NAME
_INTERPOLATION = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def scrape_job() -> dict[str, Any]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "docmill"]
    assert len(jobs) == 1, "prometheus-compose.yml needs exactly one scrape job named docmill"
    job: dict[str, Any] = jobs[0]
    return job


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's interpolation of one string, with ``env`` as the shell environment (default: empty)."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        op, arg, current = match["op"], match["arg"] or "", env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return arg if current is not None else ""
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise ValueError(f"{name} is required: {arg}")
        return current or ""

    parts = value.split("$$")
    return "$".join(_INTERPOLATION.sub(one, part) for part in parts)


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a mapping, whichever of the two syntaxes it uses."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {name: None if value is None else str(value) for name, value in env.items()}
    pairs: dict[str, str | None] = {}
    for item in env:
        name, sep, value = str(item).partition("=")
        pairs[name] = value if sep else None
    return pairs


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume of a service, short or long syntax."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append((str(volume.get("source", "")), str(volume["target"])))
        else:
            source, _, rest = str(volume).partition(":")
            found.append((source, rest.split(":")[0]))
    return found


def published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of each published port, defaults interpolated."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((str(port.get("host_ip", "")), str(port.get("published", "")), str(port["target"])))
            continue
        spec = interpolate(str(port)).split("/")[0]
        pieces = spec.rsplit(":", 2)
        if len(pieces) == 3:
            found.append((pieces[0], pieces[1], pieces[2]))
        elif len(pieces) == 2:
            found.append(("", pieces[0], pieces[1]))
        else:
            found.append(("", "", pieces[0]))
    return found


def seconds(duration: str) -> float:
    """A compose duration (``60s``, ``1m30s``, ``500ms``) in seconds."""
    parts = _DURATION.findall(duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(number + unit for number, unit in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def image_reference(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
        return repository, tag, digest or None
    return name, None, digest or None


def grafana_expand(value: str, env: dict[str, str]) -> str:
    """Grafana's interpolation of a provisioning value: ``$NAME`` and ``${NAME}``, no ``:-`` defaults.

    As in Grafana's pkg/services/provisioning/values and pkg/setting/expanders.go: every ``${...}`` is an
    environment variable whose name is everything between the braces, then os.ExpandEnv; ``$$`` is ``$``.
    """

    def expand(part: str) -> str:
        part = re.sub(r"\$\{([^}]+)\}", lambda m: env.get(m[1], ""), part)
        return re.sub(r"\$([A-Za-z0-9_]+)", lambda m: env.get(m[1], ""), part)

    return "$".join(expand(part) for part in value.split("$$"))


def compose_spec_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema: dict[str, Any] = json.loads(vendored.read_text(encoding="utf-8"))
    return schema


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(compose_spec_schema())
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_file_conforms_to_the_compose_specification(compose: dict[str, Any]) -> None:
    """compose.yaml validates against the Compose Specification's JSON schema."""
    assert schema_errors(compose) == []


def test_schema_check_rejects_a_misspelt_key(compose: dict[str, Any]) -> None:
    """The schema check is strict: a misspelt service key makes it fail."""
    broken = copy.deepcopy(compose)
    broken["services"]["consumer"]["stop_grace_periode"] = "60s"
    errors = schema_errors(broken)
    assert any("stop_grace_periode" in error for error in errors), errors


def test_check_jsonschema_accepts_compose_file() -> None:
    """`check-jsonschema --builtin-schema vendor.compose-spec` (a YAML 1.2 parser, like compose's) passes."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    """The file follows the Compose Specification: no top-level `version`."""
    assert "version" not in compose


def test_every_service_is_defined(services: dict[str, dict[str, Any]]) -> None:
    """kafka, topics, consumer, producer, prometheus and grafana are all services."""
    assert set(services) >= SERVICES, SERVICES - set(services)


def test_consumer_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    """The consumer has no fixed name, hostname or published port, so `--scale consumer=N` works."""
    consumer = services["consumer"]
    assert "container_name" not in consumer
    assert "hostname" not in consumer
    assert published(consumer) == []
    assert str(METRICS_PORT) in [str(port) for port in consumer.get("expose", [])]


def test_consumer_metrics_port_is_the_code_default(services: dict[str, dict[str, Any]]) -> None:
    """The consumer serves /metrics and /healthz on the code's default port; its health check asks there."""
    consumer = services["consumer"]
    assert environment(consumer).get("DOCMILL_METRICS_PORT", str(METRICS_PORT)) == str(METRICS_PORT)
    check = " ".join(consumer["healthcheck"]["test"])
    assert f"http://127.0.0.1:{METRICS_PORT}/healthz" in check


def test_prometheus_discovers_every_consumer_replica_by_dns(
    services: dict[str, dict[str, Any]], scrape_job: dict[str, Any]
) -> None:
    """The docmill scrape job resolves the consumer service's name (A records) on the metrics port."""
    assert "static_configs" not in scrape_job
    [discovery] = scrape_job["dns_sd_configs"]
    assert discovery["names"] == ["consumer"]
    assert discovery["names"][0] in services
    assert discovery.get("type", "SRV") == "A"
    assert discovery["port"] == METRICS_PORT
    assert scrape_job.get("metrics_path", "/metrics") == "/metrics"


def test_dashboard_and_alerts_select_the_compose_scrape_job(scrape_job: dict[str, Any]) -> None:
    """Every job="..." the dashboard and the alert rules query is the compose config's scrape job."""
    selected = set(re.findall(r'job\s*=\s*\\?"([^"\\]+)', DASHBOARD.read_text() + ALERTS.read_text()))
    assert selected, "expected up{job=...} in the dashboard or alerts"
    assert selected == {scrape_job["job_name"]}


def test_compose_config_loads_the_shipped_alert_rules() -> None:
    """prometheus-compose.yml loads alerts.yml, as prometheus.yml does."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == [ALERTS.name]


def test_promtool_accepts_compose_config(tmp_path: Path) -> None:
    """`promtool check config` passes for prometheus-compose.yml with alerts.yml beside it."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("`promtool` is missing: apt-get install prometheus (CI installs it)")
    config = tmp_path / PROMETHEUS_CONFIG.name
    shutil.copy(PROMETHEUS_CONFIG, config)
    shutil.copy(ALERTS, tmp_path / ALERTS.name)
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules found" in result.stdout + result.stderr  # the rule file was found and checked too


def test_prometheus_mounts_its_config_and_alerts_side_by_side(services: dict[str, dict[str, Any]]) -> None:
    """Prometheus reads prometheus-compose.yml as --config.file, with alerts.yml in the same folder."""
    prometheus = services["prometheus"]
    targets = {(DEPLOY / source).resolve(): PurePosixPath(target) for source, target in mounts(prometheus)}
    config_target = targets[PROMETHEUS_CONFIG.resolve()]
    alerts_target = targets[ALERTS.resolve()]
    flags = [str(arg) for arg in prometheus.get("command", [])]
    assert f"--config.file={config_target}" in flags
    assert alerts_target == config_target.parent / ALERTS.name


def test_grafana_mounts_the_repository_provisioning_and_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    """Grafana's provisioning and dashboard mounts are the repo's folders, where the provider looks."""
    by_source = {(DEPLOY / source).resolve(): target for source, target in mounts(services["grafana"])}
    provisioning = (GRAFANA / "provisioning").resolve()
    dashboards = (GRAFANA / "dashboards").resolve()
    assert by_source.get(provisioning) == "/etc/grafana/provisioning"
    assert (provisioning / "datasources").is_dir()
    assert (provisioning / "dashboards").is_dir()
    provider = yaml.safe_load(DASHBOARD_PROVIDER.read_text())["providers"][0]
    assert by_source.get(dashboards) == provider["options"]["path"]
    assert DASHBOARD.parent.resolve() == dashboards


def test_grafana_datasource_url_reaches_prometheus(services: dict[str, dict[str, Any]]) -> None:
    """The provisioned datasource URL, as Grafana expands it in its service, is the Prometheus service."""
    env = {name: interpolate(value) for name, value in environment(services["grafana"]).items() if value}
    [datasource] = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    [(_, _, port)] = published(services["prometheus"])
    assert grafana_expand(datasource["url"], env) == f"http://prometheus:{port}", (
        f"Grafana has no ${{NAME:-default}} syntax: {datasource['url']!r} is the variable named "
        "everything between the braces, which is unset; use $PROMETHEUS_URL or ${PROMETHEUS_URL}"
    )


def test_grafana_admin_password_comes_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    """Grafana's admin password is an interpolation of GRAFANA_ADMIN_PASSWORD, not a fixed value."""
    value = environment(services["grafana"])["GF_SECURITY_ADMIN_PASSWORD"]
    assert value is not None
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD(:-[^}]*)?\}", value), value


def test_every_docmill_variable_is_a_real_setting(services: dict[str, dict[str, Any]]) -> None:
    """Each DOCMILL_* variable compose sets or interpolates is a field of schemas.settings."""
    used = {
        name for service in services.values() for name in environment(service) if name.startswith("DOCMILL_")
    }
    used |= {
        match["braced"] or match["bare"]
        for match in _INTERPOLATION.finditer(COMPOSE.read_text())
        if (match["braced"] or match["bare"]).startswith("DOCMILL_")
    }
    assert used, "expected DOCMILL_* settings in compose.yaml"
    assert used <= SETTING_VARIABLES, sorted(used - SETTING_VARIABLES)


def test_api_key_is_only_ever_taken_from_the_environment(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """ANTHROPIC_API_KEY appears only as ${ANTHROPIC_API_KEY} (empty default at most), never as a value."""
    assert "ANTHROPIC_API_KEY" in environment(services["consumer"]), "the replicas must receive the key"
    for name, service in services.items():
        value = environment(service).get("ANTHROPIC_API_KEY", "${ANTHROPIC_API_KEY}")
        if value is not None:  # None: passed through by name, also fine
            assert re.fullmatch(r"\$\{ANTHROPIC_API_KEY(:?-)?\}", value), f"{name}: {value!r}"
        assert "env_file" not in service, f"{name}: keep settings in compose.yaml, secrets in the environment"
    for name, secret in (compose.get("secrets") or {}).items():
        assert "content" not in secret, f"secret {name} must come from a file or the environment"
    text = COMPOSE.read_text()
    assert "sk-ant" not in text
    for line in text.splitlines():
        if "ANTHROPIC_API_KEY" in line and ":" in line and not line.lstrip().startswith("#"):
            value = line.split(":", 1)[1].strip()
            assert value in ("", "${ANTHROPIC_API_KEY}", "${ANTHROPIC_API_KEY:-}", "${ANTHROPIC_API_KEY-}"), (
                line
            )


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    """Every image has an explicit tag (a version for pulled ones), never `latest`."""
    for name, service in services.items():
        assert "image" in service, f"{name} has no image"
        _, tag, digest = image_reference(service["image"])
        assert tag or digest, f"{name}: {service['image']} is not pinned"
        assert tag != "latest", f"{name}: {service['image']}"
        if "build" not in service:
            assert digest or re.search(r"\d", tag or ""), f"{name}: {service['image']} has no version"


def test_kafka_image_is_the_local_brokers_version(services: dict[str, dict[str, Any]]) -> None:
    """The broker is the official apache/kafka image at the version the local broker runs."""
    pom = (DEPLOY / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert version
    assert image_reference(services["kafka"]["image"])[:2] == ("apache/kafka", version[1])


def test_consumer_stop_grace_period_exceeds_the_drain_grace(services: dict[str, dict[str, Any]]) -> None:
    """Compose waits longer than the replica's shutdown grace before it kills a stopping replica."""
    consumer = services["consumer"]
    configured = environment(consumer).get("DOCMILL_SHUTDOWN_GRACE_SECONDS")
    drain = float(interpolate(configured)) if configured else SHUTDOWN_GRACE
    assert seconds(str(consumer["stop_grace_period"])) > drain


def test_services_start_in_order(services: dict[str, dict[str, Any]]) -> None:
    """topics waits for a healthy broker; the consumer and producer wait for topics to finish successfully."""
    assert services["kafka"]["healthcheck"]["test"]
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("consumer", "producer"):
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    for name, service in services.items():
        depends = service.get("depends_on", [])
        assert set(depends) <= set(services), f"{name} depends on an unknown service"


def test_one_shot_services_are_not_restarted(services: dict[str, dict[str, Any]]) -> None:
    """topics and producer run once: restart is the string "no" (a bare `no` would be YAML false)."""
    for name in ("topics", "producer"):
        assert services[name].get("restart", "no") == "no"


def test_docmill_services_run_the_intended_commands(services: dict[str, dict[str, Any]]) -> None:
    """topics ensures 6 partitions; the producer publishes samples inside the consumer's allowed roots."""
    topics = [str(arg) for arg in services["topics"]["command"]]
    assert topics[:2] == ["topics", "ensure"]
    assert topics[topics.index("--partitions") + 1] == "6"
    assert [str(arg) for arg in services["consumer"]["command"]] == ["consume"]
    producer = [str(arg) for arg in services["producer"]["command"]]
    assert producer[0] == "produce"
    assert producer[producer.index("--job-id") + 1] == "compose-demo"
    source = PurePosixPath(producer[1])
    roots = environment(services["consumer"])["DOCMILL_ALLOWED_ROOTS"] or ""
    assert any(source.is_relative_to(root) for root in roots.split(":") if root), (source, roots)


def test_producer_publishes_the_samples_the_image_ships(services: dict[str, dict[str, Any]]) -> None:
    """The producer's source is a folder of sample invoices that deploy/Dockerfile copies into the image."""
    dockerfile = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    copies = [
        (words[1], words[-1])
        for words in (line.split() for line in dockerfile.splitlines())
        if len(words) == 3 and words[0] == "COPY" and words[1].startswith("deploy/samples")
    ]
    assert len(copies) == 1, copies
    [(copied, destination)] = copies
    source = PurePosixPath([str(arg) for arg in services["producer"]["command"]][1])
    assert source.is_relative_to(destination), (source, destination)
    # COPY of a folder copies its contents: the image's path below the destination is the repo's below it.
    in_repo = REPO / copied / source.relative_to(destination)
    assert in_repo.is_dir(), f"{source} is not in the image: the Dockerfile copies {copied} to {destination}"
    assert any(in_repo.iterdir())


def test_docmill_services_reach_the_brokers_internal_listener(services: dict[str, dict[str, Any]]) -> None:
    """Every docmill service bootstraps from an address the broker advertises on the compose network."""
    kafka_env = environment(services["kafka"])
    advertised = {
        listener.split("://", 1)[1]
        for listener in interpolate(kafka_env["KAFKA_ADVERTISED_LISTENERS"] or "").split(",")
    }
    # Only addresses whose host is a compose service resolve inside the other containers.
    internal = {address for address in advertised if address.rsplit(":", 1)[0] in services}
    assert "kafka:9092" in internal
    for name in DOCMILL_SERVICES:
        servers = environment(services[name])["DOCMILL_BOOTSTRAP_SERVERS"] or ""
        assert set(servers.split(",")) <= internal, (name, servers, internal)


def test_docmill_services_share_one_image_built_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    """topics, consumer and producer use one image built from the repo root with deploy/Dockerfile."""
    images = {services[name]["image"] for name in DOCMILL_SERVICES}
    assert len(images) == 1
    for name in DOCMILL_SERVICES:
        build = services[name]["build"]
        assert (DEPLOY / build["context"]).resolve() == REPO
        assert (REPO / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_published_ports_bind_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    """Every published port listens on 127.0.0.1 only, Prometheus on 9090 and Grafana on 3000."""
    for name, service in services.items():
        for host_ip, _, _ in published(service):
            assert host_ip == "127.0.0.1", f"{name} publishes on {host_ip or 'every address'}"
    assert ("127.0.0.1", "9090", "9090") in published(services["prometheus"])
    assert ("127.0.0.1", "3000", "3000") in published(services["grafana"])


def test_mounts_exist_and_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """Bind mounts name files of the repo; named volumes are declared; the broker keeps its data in one."""
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source, _ in mounts(service):
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts a missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    log_dirs = environment(services["kafka"])["KAFKA_LOG_DIRS"]
    assert any(target == log_dirs and source in declared for source, target in mounts(services["kafka"]))
