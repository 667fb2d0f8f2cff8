"""`make up REPLICAS=3`: three replicas and a Prometheus on this machine, all of them working."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim import AnthropicSimulator
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import publish_refs, read_all
from tests.helpers.paths import DASHBOARD

pytestmark = pytest.mark.integration

CLUSTER = Path(__file__).resolve().parents[2] / "deploy" / "local" / "cluster.sh"


def _free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1."""
    for base in range(21000, 29000, 17):
        try:
            sockets = []
            for port in range(base, base + count):
                probe = socket.socket()
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise RuntimeError("no free ports")


async def _query(http: aiohttp.ClientSession, base: str, expr: str) -> list[Any]:
    async with http.get(f"{base}/api/v1/query", params={"query": expr}) as response:
        body = await response.json()
    result: list[Any] = body["data"]["result"]
    return result


def _dashboard_expr(title: str) -> str:
    panel = next(p for p in json.loads(DASHBOARD.read_text())["panels"] if p["title"] == title)
    return str(panel["targets"][0]["expr"]).replace("$replica", ".*").replace("$model", ".*")


async def test_three_local_replicas_share_the_work_and_are_all_scraped(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """Every replica is scraped and processes part of a workload; per-replica queries have 3 series."""
    base_port, prometheus_port = _free_ports(3), _free_ports(1) + 3
    with AnthropicSimulator(latency=0.3) as sim:
        env = {
            **os.environ,
            "REPLICAS": "3",
            "METRICS_BASE_PORT": str(base_port),
            "PROMETHEUS_PORT": str(prometheus_port),
            "SCRAPE_INTERVAL": "1s",
            "KAFKA_PORT": kafka.bootstrap_servers.rsplit(":", 1)[1],
            "LOCAL_STATE_DIR": str(tmp_path / "state"),
            "DOCMILL_DOCUMENTS_TOPIC": topics.documents_topic,
            "DOCMILL_RESULTS_TOPIC": topics.results_topic,
            "DOCMILL_DLQ_TOPIC": topics.dlq_topic,
            "DOCMILL_JOBS_TOPIC": topics.jobs_topic,
            "DOCMILL_GROUP_ID": group_id,
            "DOCMILL_ALLOWED_ROOTS": str(tmp_path),
            "DOCMILL_MAX_IN_FLIGHT": "4",
            "DOCMILL_SESSION_TIMEOUT_SECONDS": "6",
            "ANTHROPIC_API_KEY": "sk-ant-test-0123456789",
            "ANTHROPIC_BASE_URL": sim.base_url,
        }
        up = subprocess.run(
            [str(CLUSTER), "up"], env=env, capture_output=True, text=True, timeout=180, check=False
        )
        try:
            assert up.returncode == 0, up.stdout + up.stderr
            for port in range(base_port, base_port + 3):
                assert f"http://127.0.0.1:{port}/metrics" in up.stdout
            assert f"http://127.0.0.1:{prometheus_port}" in up.stdout
            # All three join before the work arrives, so the group spreads it over them.
            prometheus = f"http://127.0.0.1:{prometheus_port}"
            async with aiohttp.ClientSession() as http:
                # Settled when each replica reports the lag of exactly one of the 3 partitions.
                settled = 'count by (instance) (docmill_consumer_lag{job="docmill"}) == 1'
                async with asyncio.timeout(90):
                    while len(await _query(http, prometheus, settled)) < 3:
                        await asyncio.sleep(0.5)
                refs = [
                    document_ref(f"d{i}", write_file(tmp_path, f"d{i}.txt", invoice_text(f"N-{i}")))
                    for i in range(90)
                ]
                await publish_refs(kafka, topics.documents_topic, refs)
                async with asyncio.timeout(120):
                    while len(await read_all(kafka, topics.results_topic)) < 90:
                        await asyncio.sleep(0.5)
                # Prometheus has scraped every replica since its last document.
                scraped_all = 'sum(docmill_documents_total{job="docmill"}) >= 90'
                async with asyncio.timeout(60):
                    while not await _query(http, prometheus, scraped_all):
                        await asyncio.sleep(0.5)

                up_series = await _query(http, prometheus, 'up{job="docmill"} == 1')
                worked = await _query(http, prometheus, "sum by (instance) (docmill_documents_total) > 0")
                throughput = await _query(http, prometheus, _dashboard_expr("Documents/s per replica"))
                lag = await _query(http, prometheus, _dashboard_expr("Consumer lag per replica"))
        finally:
            down = subprocess.run(
                [str(CLUSTER), "down"], env=env, capture_output=True, text=True, timeout=120, check=False
            )
    assert len(up_series) == 3
    assert len(worked) == 3, worked  # each replica processed part of the workload
    assert len(throughput) == 3
    assert len(lag) == 3
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("stopped consumer-") == 3
    assert "stopped prometheus" in down.stdout
    assert not list((tmp_path / "state").glob("*.pid"))
    # The broker was already running, so `down` leaves it alone.
    probe = socket.create_connection(("127.0.0.1", int(env["KAFKA_PORT"])), timeout=2)
    probe.close()
    assert sim.stats.total_requests >= 90
