"""Running the real `docmill` command in tests, and replicas as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim import AnthropicSimulator

DOCMILL = str(Path(sys.executable).parent / "docmill")


def topic_env(kafka: KafkaSettings, topics: TopicSettings) -> dict[str, str]:
    """The settings that point a command at the test broker and a test's topics."""
    return {
        "DOCMILL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "DOCMILL_DOCUMENTS_TOPIC": topics.documents_topic,
        "DOCMILL_RESULTS_TOPIC": topics.results_topic,
        "DOCMILL_DLQ_TOPIC": topics.dlq_topic,
        "DOCMILL_JOBS_TOPIC": topics.jobs_topic,
    }


def run_docmill(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``docmill ARGS`` with these settings on top of the environment; never raises on exit codes."""
    return subprocess.run(
        [DOCMILL, *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# A recognisable key: tests grep every log line and message for it.
API_KEY = "sk-ant-api03-NEVER-LOG-ME-0123456789abcdef"


def start_consumer(
    kafka: KafkaSettings,
    topics: TopicSettings,
    group_id: str,
    root: Path,
    sim: AnthropicSimulator,
    log: Path,
    *extra: str,
) -> subprocess.Popen[bytes]:
    """`docmill consume` as its own process against the simulator, logging to ``log``."""
    env = {
        **os.environ,
        **topic_env(kafka, topics),
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": sim.base_url,
        "DOCMILL_GROUP_ID": group_id,
        "DOCMILL_ALLOWED_ROOTS": str(root),
        "DOCMILL_METRICS_PORT": "0",
        "DOCMILL_METRICS_HOST": "127.0.0.1",
        "DOCMILL_SESSION_TIMEOUT_SECONDS": "6",
        "DOCMILL_COMMIT_INTERVAL_SECONDS": "0.2",
    }
    with log.open("ab") as sink:
        return subprocess.Popen([DOCMILL, "consume", *extra], env=env, stdout=sink, stderr=sink)
