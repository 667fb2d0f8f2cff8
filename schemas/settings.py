"""Every setting docmill reads, in one typed place.

Each setting is an environment variable ``DOCMILL_<NAME>`` and a command-line
flag ``--<name>`` (generated from these classes by ``consumer.commands.options``); a flag
wins over the environment. Secrets are ``SecretStr`` so they never print.
The SDK's own ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` are left to the
SDK, untouched.
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas import limits, topics


def _cores() -> int:
    """The cores this process may use: its CPU set, or fewer under a container's CPU quota
    (cgroup v2 ``cpu.max``, what a Kubernetes CPU limit sets), not the host's count."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 here, or no limit
    return cores


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCMILL_", extra="ignore", frozen=True)


class KafkaSettings(_Settings):
    """How to reach the Kafka cluster, including managed clusters with SASL/SSL."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism for SASL_* protocols."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates.")
    ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key for mutual TLS.")
    client_id: str = Field("docmill", description="Kafka client id prefix.")

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by every aiokafka client docmill creates."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
            if self.ssl_certfile:
                context.load_cert_chain(
                    str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
                )
            kwargs["ssl_context"] = context
        if self.security_protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return kwargs


class TopicSettings(_Settings):
    """The names of docmill's topics."""

    documents_topic: str = Field(topics.DOCUMENTS_TOPIC, description="Topic of document references.")
    results_topic: str = Field(topics.RESULTS_TOPIC, description="Topic extraction results go to.")
    dlq_topic: str = Field(topics.DLQ_TOPIC, description="Dead-letter topic.")
    jobs_topic: str = Field(topics.JOBS_TOPIC, description="Compacted topic of batch jobs and their offsets.")


def _default_consumer_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ConsumerSettings(_Settings):
    """How one consumer replica runs."""

    group_id: str = Field("docmill-extractors", description="Kafka consumer group id.")
    consumer_id: str = Field(
        default_factory=_default_consumer_id,
        description="This replica's name in logs and dead letters.",
    )
    max_in_flight: int = Field(32, ge=1, le=10_000, description="Records processed at once per replica.")
    commit_interval_seconds: float = Field(1.0, gt=0, description="How often finished offsets are committed.")
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM or revocation, how long in-flight records may finish."
    )
    session_timeout_seconds: float = Field(
        30.0,
        ge=6,
        le=300,
        description="How long the group waits for a silent replica before reassigning.",
    )
    max_attempts: int = Field(
        6, ge=1, description="Attempts per record before a transient failure is dead-lettered."
    )
    retry_base_seconds: float = Field(1.0, gt=0, description="First backoff delay; doubles per attempt.")
    retry_max_seconds: float = Field(60.0, gt=0, description="Cap on one backoff delay.")
    retry_total_seconds: float = Field(900.0, gt=0, description="Cap on the time one record spends retrying.")
    metrics_host: str = Field(
        "0.0.0.0",  # noqa: S104 - Prometheus scrapes replicas from other hosts
        description="Address the /metrics and /healthz server binds.",
    )
    metrics_port: int = Field(
        9400, ge=0, le=65535, description="Port of /metrics and /healthz (0 = pick a free one)."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="Log format: json, console, or auto (console on a terminal, else json)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")


class FetchSettings(_Settings):
    """Where documents may be read from, and how much of them."""

    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Colon-separated folders that file:// references may read.",
    )
    max_document_bytes: int = Field(
        limits.MAX_DOCUMENT_BYTES,
        ge=1,
        description="Largest document fetched (the API's request limit is 32 MB).",
    )
    fetch_timeout_seconds: float = Field(30.0, gt=0, description="Time limit for one remote fetch.")
    allow_http: bool = Field(False, description="Allow plain http:// references (https:// always allowed).")
    allow_private_addresses: bool = Field(
        False, description="Allow fetching from private, loopback and link-local addresses."
    )

    allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated private networks fetches may reach anyway (e.g. 10.20.0.0/16).",
    )

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.split(":") if part]
        return value

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for network in value:
                ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value


class ExtractionSettings(_Settings):
    """Which extractor runs and how it calls Claude."""

    backend: Literal["claude", "local"] | None = Field(
        None, description="claude or local (default: claude when ANTHROPIC_API_KEY is set)."
    )
    model: str = Field("claude-haiku-5-5", description="Claude model id (see `docmill models`).")
    max_output_tokens: int = Field(2048, ge=1, description="max_tokens of each extraction call.")
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = Field(
        None,
        description="output_config.effort for every call, instead of the model's cheapest thinking setting.",
    )
    refusal_fallback_model: str | None = Field(
        None, description="Model that gets one more attempt when the model refuses a document."
    )
    request_timeout_seconds: float = Field(120.0, gt=0, description="Time limit of one API call.")
    spend_limit_probe_seconds: float = Field(
        60.0, gt=0, description="While the spend cap is reached, how often one call probes for it."
    )
    breaker_cooldown_seconds: float = Field(
        5.0, gt=0, description="Circuit breaker: first pause before probing an API that fails."
    )
    rpm: int = Field(0, ge=0, description="Organisation's API requests/minute (0 = learn from the API).")
    itpm: int = Field(0, ge=0, description="Organisation's input tokens/minute (0 = learn from the API).")
    otpm: int = Field(0, ge=0, description="Organisation's output tokens/minute (0 = learn from the API).")
    ocr_workers: int = Field(
        default_factory=_cores,
        ge=1,
        le=256,
        description="local backend: OCR worker processes (default: cores).",
    )
    ocr_timeout_seconds: float = Field(
        60.0, gt=0, description="local backend: time limit to read one document (else OcrTimeout)."
    )
    ocr_max_pages: int = Field(
        20, ge=1, le=1000, description="local backend: pages read per document at most."
    )
    ocr_dpi: int = Field(
        200, ge=72, le=600, description="local backend: resolution scanned PDF pages are read at."
    )
    ocr_tessdata: Path | None = Field(
        None, description="local backend: Tesseract's data directory (default: where tesseract-ocr put it)."
    )

    def resolved_backend(self) -> Literal["claude", "local"]:
        if self.backend:
            return self.backend
        return "claude" if os.environ.get("ANTHROPIC_API_KEY") else "local"


class ProducerSettings(_Settings):
    """How documents are published."""

    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = Field(
        "zstd", description="Compression of produced batches."
    )
    linger_ms: int = Field(20, ge=0, description="How long the producer waits to fill a batch.")


# Every settings class, i.e. every DOCMILL_* variable docmill reads: docs and deploy
# manifests are checked against this, so a new class belongs here too.
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    KafkaSettings,
    TopicSettings,
    ConsumerSettings,
    FetchSettings,
    ExtractionSettings,
    ProducerSettings,
)


def environment_variable(field_name: str) -> str:
    """The environment variable of a setting."""
    return f"DOCMILL_{field_name.upper()}"


def environment_variables() -> set[str]:
    """Every DOCMILL_* environment variable docmill reads."""
    return {environment_variable(name) for cls in SETTINGS_CLASSES for name in cls.model_fields}
