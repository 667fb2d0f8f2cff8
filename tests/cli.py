"""Running the real `docmill` command in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from schemas.settings import KafkaSettings, TopicSettings

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
