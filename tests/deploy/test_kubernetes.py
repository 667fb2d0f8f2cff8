"""The Kubernetes manifests of deploy/k8s: rendered, validated offline, checked against the code.

The base and the example overlay are rendered with `kubectl kustomize` (or a standalone
`kustomize build`); built-in kinds are validated against the Kubernetes OpenAPI schemas shipped
by kubernetes-validate, in strict mode; the CRD kinds (KEDA, Prometheus Operator) are checked
field by field against the Deployment, the Service, the ConfigMap and the settings of
schemas/settings.py they must agree with.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from schemas.settings import (
    SETTINGS_CLASSES,
    ConsumerSettings,
    ExtractionSettings,
    KafkaSettings,
    TopicSettings,
    environment_variable,
    environment_variables,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
RENDERS = {"base": K8S / "base", "example": K8S / "overlays" / "example"}

CRD_KINDS = {
    "ScaledObject": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
}
# Oldest Kubernetes release still commonly run by managed offerings, and the newest one
# kubernetes-validate ships schemas for (both pinned, so the test does not move by itself).
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
SECRET_ENV = {"ANTHROPIC_API_KEY", "DOCMILL_SASL_USERNAME", "DOCMILL_SASL_PASSWORD"}
# KEDA's kafka trigger spells the SASL mechanism its own way.
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
UID = 10001


# --- rendering ---------------------------------------------------------------------------


def _kustomize_command(path: Path) -> list[str]:
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize", str(path)]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build", str(path)]
    pytest.fail(
        "neither kubectl nor kustomize is on PATH: the manifests in deploy/k8s are rendered with "
        "`kubectl kustomize` (kubectl >= 1.27) or `kustomize build`; install one of them"
    )


class Manifests:
    """One rendered kustomization: its resources and lookups across them."""

    def __init__(self, name: str, resources: list[dict[str, Any]]) -> None:
        self.name = name
        self.resources = resources

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [resource for resource in self.resources if resource["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.all(kind)
        assert len(found) == 1, f"{self.name}: expected one {kind}, found {len(found)}"
        return found[0]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [resource for resource in self.all(kind) if resource["metadata"]["name"] == name]
        assert found, f"{self.name}: no {kind} named {name!r}"
        return found[0]

    @property
    def config(self) -> dict[str, str]:
        return dict(self.one("ConfigMap")["data"])

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def job(self) -> dict[str, Any]:
        return self.one("Job")

    @property
    def consumer(self) -> dict[str, Any]:
        containers = self.deployment["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        return dict(containers[0])

    @property
    def trigger(self) -> dict[str, Any]:
        triggers = [t for t in self.one("ScaledObject")["spec"]["triggers"] if t["type"] == "kafka"]
        assert len(triggers) == 1, f"{self.name}: expected one kafka trigger"
        return dict(triggers[0])

    def setting(self, env_name: str, cls: type[Any], field: str) -> Any:
        """A setting as the pods see it: the ConfigMap's value, else the code's default."""
        value = self.config.get(env_name)
        return value if value is not None else cls.model_fields[field].default


@cache
def _render(name: str) -> Manifests:
    path = RENDERS[name]
    result = subprocess.run(
        _kustomize_command(path), capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"rendering {path} failed:\n{result.stderr}")
    resources = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert resources, f"{path} rendered nothing"
    return Manifests(name, resources)


@pytest.fixture(params=list(RENDERS))
def manifests(request: pytest.FixtureRequest) -> Manifests:
    return _render(request.param)


@pytest.fixture
def base() -> Manifests:
    return _render("base")


@pytest.fixture
def example() -> Manifests:
    return _render("example")


# --- helpers -----------------------------------------------------------------------------


def _setting_env_names() -> set[str]:
    return environment_variables()


def _secret_setting_env_names() -> set[str]:
    return {
        environment_variable(field)
        for cls in SETTINGS_CLASSES
        for field, info in cls.model_fields.items()
        if "SecretStr" in str(info.annotation) or info.annotation is SecretStr
    }


def _pod_templates(manifests: Manifests) -> list[dict[str, Any]]:
    return [manifests.deployment["spec"]["template"], manifests.job["spec"]["template"]]


def _containers(manifests: Manifests) -> list[dict[str, Any]]:
    return [c for template in _pod_templates(manifests) for c in template["spec"]["containers"]]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _partitions(job: dict[str, Any]) -> int:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    argv = [*container.get("command", []), *container.get("args", [])]
    for index, arg in enumerate(argv):
        if arg == "--partitions":
            return int(argv[index + 1])
        if arg.startswith("--partitions="):
            return int(arg.split("=", 1)[1])
    pytest.fail(f"the topics Job passes no --partitions: {argv}")


def _quantity(value: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    text = str(value)
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _named_port(container: dict[str, Any], port: str | int) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert numbers, f"container {container['name']} has no port named {port!r}"
    return int(numbers[0])


# --- rendering and schema ----------------------------------------------------------------


def test_every_resource_is_rendered_once(manifests: Manifests) -> None:
    """Base and overlay render exactly one of each resource docmill needs."""
    for kind in (
        "ConfigMap",
        "ServiceAccount",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceMonitor",
        "Job",
        "ScaledObject",
        "TriggerAuthentication",
    ):
        manifests.one(kind)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_builtin_resources_match_the_kubernetes_schema(manifests: Manifests, version: str) -> None:
    """Every built-in resource validates, strictly (no unknown field), against the Kubernetes schema."""
    try:
        from kubernetes_validate import utils as kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is needed: pip install kubernetes-validate")
    errors = []
    for resource in manifests.resources:
        if resource["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            location = "/".join(str(part) for part in error.path)
            errors.append(f"{resource['kind']}/{resource['metadata']['name']} at {location}: {error.message}")
    assert not errors, "\n".join(errors)


def test_custom_resources_use_the_served_api_versions(manifests: Manifests) -> None:
    """KEDA and Prometheus Operator resources use the API versions those operators serve."""
    for kind, api_version in CRD_KINDS.items():
        assert manifests.one(kind)["apiVersion"] == api_version


# --- KEDA ------------------------------------------------------------------------------


def test_scaled_object_scales_the_consumer_deployment(manifests: Manifests) -> None:
    """The ScaledObject's target is the consumer Deployment."""
    target = manifests.one("ScaledObject")["spec"]["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    assert target["name"] == manifests.deployment["metadata"]["name"]


def test_kafka_trigger_watches_the_consumers_cluster_group_and_topic(manifests: Manifests) -> None:
    """The lag KEDA reads is the consumers' own: same brokers, consumer group and documents topic."""
    metadata = manifests.trigger["metadata"]
    config = manifests.config
    assert metadata["bootstrapServers"] == config["DOCMILL_BOOTSTRAP_SERVERS"]
    assert metadata["consumerGroup"] == config["DOCMILL_GROUP_ID"]
    assert metadata["topic"] == config["DOCMILL_DOCUMENTS_TOPIC"]


def test_base_uses_the_code_defaults_for_group_and_topics(base: Manifests) -> None:
    """The base's group id and topic names are the code's defaults."""
    config = base.config
    assert (
        config["DOCMILL_GROUP_ID"]
        == ConsumerSettings.model_fields["group_id"].default
        == "docmill-extractors"
    )
    assert base.trigger["metadata"]["consumerGroup"] == "docmill-extractors"
    for field, info in TopicSettings.model_fields.items():
        assert config[environment_variable(field)] == info.default


def test_max_replicas_equal_the_partitions_the_topics_job_creates(manifests: Manifests) -> None:
    """maxReplicaCount equals the documents topic's partitions; KEDA never runs idle extra replicas."""
    spec = manifests.one("ScaledObject")["spec"]
    partitions = _partitions(manifests.job)
    assert spec["maxReplicaCount"] == partitions
    # At least one replica, so deploy/prometheus/alerts.yml's DocmillNoReplicaUp stays quiet.
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert manifests.trigger["metadata"].get("allowIdleConsumers", "false") == "false"
    assert int(manifests.trigger["metadata"]["activationLagThreshold"]) >= 0


def test_records_in_flight_alone_never_add_a_replica(manifests: Manifests) -> None:
    """The lag threshold exceeds what all replicas hold in flight (lag until committed)."""
    max_in_flight = int(manifests.setting("DOCMILL_MAX_IN_FLIGHT", ConsumerSettings, "max_in_flight"))
    max_replicas = manifests.one("ScaledObject")["spec"]["maxReplicaCount"]
    assert int(manifests.trigger["metadata"]["lagThreshold"]) > max_in_flight * max_replicas


def test_trigger_offset_reset_policy_is_the_consumers(manifests: Manifests) -> None:
    """KEDA counts a group without commits the way the consumers start reading (auto_offset_reset)."""
    from consumer.replica.wiring import kafka_consumer

    source = inspect.getsource(kafka_consumer)
    match = re.search(r"auto_offset_reset=\"(\w+)\"", source)
    assert match, "consumer/replica/wiring.py no longer sets auto_offset_reset literally"
    assert manifests.trigger["metadata"]["offsetResetPolicy"] == match.group(1)


def test_trigger_authenticates_with_the_pods_sasl_credentials(manifests: Manifests) -> None:
    """The trigger's authenticationRef names the TriggerAuthentication, reading the pods' SASL keys."""
    authentication = manifests.one("TriggerAuthentication")
    assert manifests.trigger["authenticationRef"]["name"] == authentication["metadata"]["name"]
    parameters = {
        ref["parameter"]: (ref["name"], ref["key"]) for ref in authentication["spec"]["secretTargetRef"]
    }
    env = {e["name"]: e for e in manifests.consumer["env"]}
    for parameter, variable in (("username", "DOCMILL_SASL_USERNAME"), ("password", "DOCMILL_SASL_PASSWORD")):
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        assert parameters[parameter] == (ref["name"], ref["key"])


def test_trigger_sasl_and_tls_follow_the_kafka_settings(manifests: Manifests) -> None:
    """The trigger uses SASL and TLS exactly when DOCMILL_SECURITY_PROTOCOL does, with the same mechanism."""
    metadata = manifests.trigger["metadata"]
    protocol = manifests.setting("DOCMILL_SECURITY_PROTOCOL", KafkaSettings, "security_protocol")
    mechanism = manifests.setting("DOCMILL_SASL_MECHANISM", KafkaSettings, "sasl_mechanism") or "PLAIN"
    expected_sasl = KEDA_SASL[mechanism] if protocol.startswith("SASL_") else "none"
    expected_tls = "enable" if protocol in ("SSL", "SASL_SSL") else "disable"
    assert metadata.get("sasl", "none") == expected_sasl
    assert metadata.get("tls", "disable") == expected_tls
    # KEDA refuses sasl/tls set both in the trigger and in the TriggerAuthentication.
    parameters = {
        ref["parameter"] for ref in manifests.one("TriggerAuthentication")["spec"]["secretTargetRef"]
    }
    assert not parameters & {"sasl", "tls"}


# --- Prometheus ------------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(manifests: Manifests) -> None:
    """The ServiceMonitor selects the metrics Service, by a port name the Service has, as job="docmill"."""
    monitor = manifests.one("ServiceMonitor")["spec"]
    service = manifests.one("Service")
    labels = service["metadata"]["labels"]
    assert _matches(monitor["selector"]["matchLabels"], labels)
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert monitor["endpoints"]
    for endpoint in monitor["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint.get("path", "/metrics") == "/metrics"
    # deploy/prometheus/alerts.yml and the Grafana dashboard select job="docmill".
    assert labels[monitor["jobLabel"]] == "docmill"


def test_metrics_service_selects_every_consumer_pod_and_nothing_else(manifests: Manifests) -> None:
    """The metrics Service selects the Deployment's pods, ready or not, and not the topics Job's pod."""
    service = manifests.one("Service")
    selector = service["spec"]["selector"]
    assert _matches(selector, manifests.deployment["spec"]["template"]["metadata"]["labels"])
    assert not _matches(selector, manifests.job["spec"]["template"]["metadata"]["labels"])
    assert service["spec"]["publishNotReadyAddresses"] is True
    (port,) = service["spec"]["ports"]
    default_port = ConsumerSettings.model_fields["metrics_port"].default
    assert port["name"] == "metrics"
    assert port["port"] == default_port
    assert _named_port(manifests.consumer, port["targetPort"]) == default_port
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(default_port)


def test_deployment_and_disruption_budget_select_the_consumer_pods(manifests: Manifests) -> None:
    """The Deployment's and the PodDisruptionBudget's selectors match the consumer pods only."""
    pod_labels = manifests.deployment["spec"]["template"]["metadata"]["labels"]
    job_labels = manifests.job["spec"]["template"]["metadata"]["labels"]
    budget = manifests.one("PodDisruptionBudget")["spec"]
    for selector in (
        manifests.deployment["spec"]["selector"]["matchLabels"],
        budget["selector"]["matchLabels"],
    ):
        assert _matches(selector, pod_labels)
        assert not _matches(selector, job_labels)
    assert pod_labels["app.kubernetes.io/name"] == "docmill"
    assert pod_labels["app.kubernetes.io/component"] == "consumer"
    # Never blocks a node drain, even with a single replica.
    assert "maxUnavailable" in budget
    assert "minAvailable" not in budget


# --- the consumer pods ---------------------------------------------------------------------


def test_probes_use_the_health_endpoints_on_the_metrics_port(manifests: Manifests) -> None:
    """Liveness asks /healthz and readiness /readyz, on the code's (and the ConfigMap's) metrics port."""
    consumer = manifests.consumer
    default_port = ConsumerSettings.model_fields["metrics_port"].default
    assert int(manifests.setting("DOCMILL_METRICS_PORT", ConsumerSettings, "metrics_port")) == default_port
    assert [(p["name"], p["containerPort"]) for p in consumer["ports"]] == [("metrics", default_port)]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = consumer[probe]["httpGet"]
        assert get["path"] == path
        assert _named_port(consumer, get["port"]) == default_port


def test_termination_grace_outlasts_the_shutdown_grace(manifests: Manifests) -> None:
    """terminationGracePeriodSeconds exceeds DOCMILL_SHUTDOWN_GRACE_SECONDS: SIGKILL never cuts a drain."""
    grace = float(
        manifests.setting("DOCMILL_SHUTDOWN_GRACE_SECONDS", ConsumerSettings, "shutdown_grace_seconds")
    )
    pod_grace = manifests.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pod_grace > grace
    # Room for the final commit, flushing results and leaving the group.
    assert pod_grace - grace >= 15


def test_every_docmill_variable_is_a_real_setting(manifests: Manifests) -> None:
    """Every DOCMILL_* name in the ConfigMap and the containers' env is a field of schemas/settings.py."""
    known = _setting_env_names()
    names = set(manifests.config)
    for container in _containers(manifests):
        names |= {e["name"] for e in container.get("env", [])}
    unknown = {name for name in names if name.startswith("DOCMILL_")} - known
    assert not unknown, f"not settings of schemas/settings.py: {sorted(unknown)}"


def test_configmap_values_are_accepted_by_the_settings(
    manifests: Manifests, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings classes load the ConfigMap's values without a validation error."""
    for name in list(os.environ):
        if name.startswith("DOCMILL_"):
            monkeypatch.delenv(name)
    for name, value in manifests.config.items():
        monkeypatch.setenv(name, value)
    loaded = {cls.__name__: cls() for cls in SETTINGS_CLASSES}
    consumer, extraction = loaded["ConsumerSettings"], loaded["ExtractionSettings"]
    assert isinstance(consumer, ConsumerSettings)
    assert isinstance(extraction, ExtractionSettings)
    assert consumer.group_id == manifests.config["DOCMILL_GROUP_ID"]
    assert consumer.log_format == "json"
    assert extraction.backend == "claude"


def test_configured_model_is_current(manifests: Manifests) -> None:
    """The configured model is a current one in the model table (a replica refuses an unknown or
    retired model and warns about a legacy one)."""
    from schemas.models import startup_problem

    assert startup_problem(manifests.setting("DOCMILL_MODEL", ExtractionSettings, "model")) == (None, None)


def test_secrets_are_only_referenced_never_shipped(manifests: Manifests) -> None:
    """No Secret with data is rendered; the API key and SASL credentials come from secretKeyRef only."""
    for secret in manifests.all("Secret"):
        assert not secret.get("data")
        assert not secret.get("stringData")
    secret_settings = _secret_setting_env_names()
    assert "DOCMILL_SASL_PASSWORD" in secret_settings
    assert not (set(manifests.config) & (secret_settings | SECRET_ENV))
    env = {e["name"]: e for e in manifests.consumer["env"]}
    for name in SECRET_ENV | secret_settings:
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"]["name"]
    # Missing the API key must fail visibly, not fall back to the local backend.
    assert env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"].get("optional", False) is False
    for container in _containers(manifests):
        for item in container.get("env", []):
            assert "value" not in item or item["name"] not in SECRET_ENV | secret_settings


def test_pods_run_non_root_on_a_read_only_root_filesystem(manifests: Manifests) -> None:
    """Pods run as UID 10001: read-only root, no privileges, RuntimeDefault seccomp, /tmp writable."""
    for template in _pod_templates(manifests):
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == UID
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["runAsUser"] == UID
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert not context["capabilities"].get("add")
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert mounts["/tmp"] in empty_dirs


def test_containers_have_resource_requests_within_limits(manifests: Manifests) -> None:
    """Every container requests CPU and memory and is limited to no less than it requests."""
    for container in _containers(manifests):
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = _quantity(resources["requests"][resource])
            limit = _quantity(resources["limits"][resource])
            assert 0 < request <= limit, f"{container['name']} {resource}: {request} > {limit}"


def test_deployment_leaves_the_replica_count_to_keda(manifests: Manifests) -> None:
    """The Deployment sets no replica count (KEDA owns it) and rolls without surging past the partitions."""
    spec = manifests.deployment["spec"]
    assert "replicas" not in spec
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_topics_job_ensures_the_topics_with_bounded_retries(manifests: Manifests) -> None:
    """The topics Job runs `docmill topics ensure` with the consumers' image and settings, bounded retries."""
    job = manifests.job
    assert 0 < job["spec"]["backoffLimit"] <= 10
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    assert container["args"][:2] == ["topics", "ensure"]
    assert container.get("command", ["docmill"]) == ["docmill"]
    assert container["image"] == manifests.consumer["image"]
    assert container["envFrom"] == manifests.consumer["envFrom"]


def test_images_are_pinned_to_a_release(manifests: Manifests) -> None:
    """Every container runs the docmill image at an explicit tag or digest, never `latest`."""
    for container in _containers(manifests):
        image = container["image"]
        assert re.search(r"(^|/)docmill(:[\w.-]+|@sha256:[0-9a-f]{64})$", image), image
        assert not image.endswith(":latest")


# --- the example overlay ------------------------------------------------------------------


def test_example_overlay_deploys_into_its_namespace(example: Manifests) -> None:
    """The example's resources land in its namespace, which enforces the restricted pod policy."""
    namespace = example.one("Namespace")
    name = namespace["metadata"]["name"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for resource in example.resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == name, resource["metadata"]["name"]


def test_example_overlay_uses_a_registry_image_and_managed_kafka(example: Manifests, base: Manifests) -> None:
    """The example overrides the image and uses SASL_SSL, keeping the base's scaling bounds."""
    assert example.consumer["image"] != base.consumer["image"]
    assert example.consumer["image"].startswith("registry.example.com/docmill:")
    config = example.config
    assert config["DOCMILL_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["DOCMILL_SASL_MECHANISM"] in KEDA_SASL
    assert config["DOCMILL_BOOTSTRAP_SERVERS"] != base.config["DOCMILL_BOOTSTRAP_SERVERS"]
    assert example.trigger["metadata"]["tls"] == "enable"
    assert _partitions(example.job) == _partitions(base.job)
    assert (
        example.one("ScaledObject")["spec"]["maxReplicaCount"]
        == base.one("ScaledObject")["spec"]["maxReplicaCount"]
    )
