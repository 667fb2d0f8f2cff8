"""publish → consume → replay through a broker that demands TLS and SASL (SCRAM-SHA-512, PLAIN)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.helpers.cli import run_docmill
from tests.helpers.documents import invoice_text

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PLAINTEXT_PORT, SASL_SSL_PORT, SSL_PORT = 39092, 39094, 39095
PASSWORD = "alice-s3cret-never-printed"
JAAS = "org.apache.kafka.common.security"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certificates(folder: Path) -> None:
    """A throwaway CA and a broker certificate for 127.0.0.1, in PEM as Kafka reads it."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=docmill-test-ca",
        cwd=folder,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        "/CN=127.0.0.1",
        cwd=folder,
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "broker.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        cwd=folder,
    )
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8", cwd=folder)
    (folder / "broker.pem").write_text(
        (folder / "broker.pk8").read_text() + (folder / "broker.crt").read_text()
    )


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A second local broker with SASL_SSL and SSL listeners; yields the CA file."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test's certificates")
    folder = tmp_path_factory.mktemp("tls")
    _make_certificates(folder)
    properties = folder / "security.properties"
    properties.write_text(
        f"""
ssl.keystore.type=PEM
ssl.keystore.location={folder / "broker.pem"}
ssl.truststore.type=PEM
ssl.truststore.location={folder / "ca.pem"}
ssl.client.auth=none
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
"""
        + f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={JAAS}.scram.ScramLoginModule required;\n"
        + f"listener.name.sasl_ssl.plain.sasl.jaas.config={JAAS}.plain.PlainLoginModule required "
        + f'user_alice="{PASSWORD}";\n'
    )
    env = {
        **os.environ,
        "KAFKA_PORT": str(PLAINTEXT_PORT),
        "KAFKA_EXTRA_LISTENERS": f"SASL_SSL://127.0.0.1:{SASL_SSL_PORT},SSL://127.0.0.1:{SSL_PORT}",
        "KAFKA_EXTRA_PROPERTIES": str(properties),
        "KAFKA_FORMAT_ARGS": f"--add-scram SCRAM-SHA-512=[name=alice,password={PASSWORD}]",
    }
    script = str(REPO / "deploy" / "kafka" / "kafka.sh")
    subprocess.run([script, "reset"], env=env, check=True, capture_output=True)
    started = subprocess.run([script, "up"], env=env, capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    try:
        yield folder / "ca.pem"
    finally:
        subprocess.run([script, "reset"], env=env, check=False, capture_output=True)


def _docmill(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_docmill(env, *args, timeout=timeout)


def _topics(suffix: str) -> dict[str, str]:
    return {
        "DOCMILL_DOCUMENTS_TOPIC": f"sec.{suffix}.documents",
        "DOCMILL_RESULTS_TOPIC": f"sec.{suffix}.results",
        "DOCMILL_DLQ_TOPIC": f"sec.{suffix}.dlq",
        "DOCMILL_JOBS_TOPIC": f"sec.{suffix}.jobs",
    }


def _sasl(ca: Path, mechanism: str, password: str = PASSWORD) -> dict[str, str]:
    return {
        "DOCMILL_BOOTSTRAP_SERVERS": f"127.0.0.1:{SASL_SSL_PORT}",
        "DOCMILL_SECURITY_PROTOCOL": "SASL_SSL",
        "DOCMILL_SASL_MECHANISM": mechanism,
        "DOCMILL_SASL_USERNAME": "alice",
        "DOCMILL_SASL_PASSWORD": password,
        "DOCMILL_SSL_CAFILE": str(ca),
    }


def test_publish_consume_replay_over_sasl_ssl_and_ssl(secure_broker: Path, tmp_path: Path) -> None:
    """SCRAM-SHA-512 and PLAIN over TLS, and TLS alone with a custom CA, carry the whole pipeline."""
    topics = _topics(os.urandom(4).hex())
    scram = {**_sasl(secure_broker, "SCRAM-SHA-512"), **topics}
    plain = {**_sasl(secure_broker, "PLAIN"), **topics}
    tls = {
        "DOCMILL_BOOTSTRAP_SERVERS": f"127.0.0.1:{SSL_PORT}",
        "DOCMILL_SECURITY_PROTOCOL": "SSL",
        "DOCMILL_SSL_CAFILE": str(secure_broker),
        **topics,
    }
    (tmp_path / "good.txt").write_text(invoice_text("SEC-1"))

    ensured = _docmill(scram, "topics", "ensure", "--partitions", "2")
    assert ensured.returncode == 0, ensured.stderr
    produced = _docmill(
        plain, "produce", str(tmp_path / "good.txt"), str(tmp_path / "later.txt"), "--job-id", "job-sec"
    )
    assert produced.returncode == 1  # later.txt does not exist yet...
    assert "published 1" in produced.stdout
    (tmp_path / "later.txt").write_text(invoice_text("SEC-2"))
    (tmp_path / "later.txt").unlink()  # ...and is published as a reference to a missing file
    produced = _docmill(plain, "produce", "file://" + str(tmp_path / "later.txt"), "--job-id", "job-sec")
    assert produced.returncode == 0, produced.stderr

    consume_env = {
        **scram,
        "DOCMILL_ALLOWED_ROOTS": str(tmp_path),
        "DOCMILL_METRICS_PORT": "0",
        "DOCMILL_BACKEND": "local",
        "DOCMILL_GROUP_ID": "sec-group",
    }
    consumed = _docmill(consume_env, "consume", "--drain")
    assert consumed.returncode == 0, consumed.stderr[-2000:]
    assert PASSWORD not in consumed.stdout + consumed.stderr

    inspected = _docmill(tls, "dlq", "inspect", "--output", "jsonl")
    assert inspected.returncode == 0, inspected.stderr
    letters = [orjson.loads(line) for line in inspected.stdout.splitlines()]
    assert [letter["error_class"] for letter in letters] == ["DocumentNotFound"]

    (tmp_path / "later.txt").write_text(invoice_text("SEC-2"))  # the cause is fixed
    replayed = _docmill(tls, "dlq", "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1" in replayed.stdout
    assert _docmill(consume_env, "consume", "--drain").returncode == 0
    status = _docmill({**scram, "DOCMILL_GROUP_ID": "sec-group"}, "status", "--job", "job-sec")
    assert status.returncode == 0, status.stderr
    assert "2/2" in status.stdout


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_wrong_credentials_are_one_line_errors_not_hangs(secure_broker: Path, mechanism: str) -> None:
    """A wrong password ends quickly with one line naming the cause; the password is never echoed."""
    env = {**_sasl(secure_broker, mechanism, password="wrong-password-123"), **_topics("bad")}
    started = time.monotonic()
    run = _docmill(env, "topics", "ensure", timeout=90)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("docmill topics: error:")
    assert "wrong-password-123" not in run.stderr + run.stdout
    assert time.monotonic() - started < 60


def test_help_never_shows_a_secret(secure_broker: Path) -> None:
    """--help lists the SASL flags without the configured password."""
    run = _docmill(_sasl(secure_broker, "PLAIN"), "consume", "--help")
    assert "--sasl-password" in run.stdout
    assert PASSWORD not in run.stdout
