"""The shipped dashboard and alert rules, evaluated by a real Prometheus scraping a real replica."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim import AnthropicSimulator
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import consumer_config, publish_raw, publish_refs, read_all, running, wait_until
from tests.helpers.paths import DASHBOARD, DEPLOY

pytestmark = pytest.mark.integration

ALERTS = DEPLOY / "prometheus" / "alerts.yml"
_COMPARISON = re.compile(r"\s(>=|<=|==|!=|>|<)\s+([0-9.eE+*\s]+)$")


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard, with the variables set to 'all'."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [
        v["definition"].replace("label_values(", "").split(",")[0]
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    return [e.replace("$replica", ".*").replace("$model", ".*") for e in exprs]


def alert_queries() -> list[tuple[str, str]]:
    """(alert, expression) with its threshold turned into a 0/1 result, so it returns data when quiet."""
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return [(rule["alert"], _COMPARISON.sub(r" \1 bool \2", rule["expr"].strip())) for rule in rules]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real Prometheus on 127.0.0.1 with the shipped rules; the test writes its scrape targets."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the `prometheus` binary is missing: apt-get install prometheus (CI installs it)")
    port = _free_port()
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text())
    targets = tmp_path / "targets.json"
    targets.write_text("[]")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "alerts.yml")],
        "scrape_configs": [
            {"job_name": "docmill", "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        yield f"http://127.0.0.1:{port}", targets
    finally:
        process.terminate()
        process.wait(30)
        log.close()


async def _query(http: aiohttp.ClientSession, base: str, expr: str) -> list[Any]:
    async with http.get(f"{base}/api/v1/query", params={"query": expr}) as response:
        body = await response.json()
    assert body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


def test_alert_rules_pass_promtool() -> None:
    """promtool accepts the shipped alert rules."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("`promtool` is missing: apt-get install prometheus (CI installs it)")
    run = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_dashboard_has_datasource_replica_and_model_variables() -> None:
    """Every panel reads the datasource variable; replica and model are selectable."""
    dashboard = json.loads(DASHBOARD.read_text())
    names = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert names["datasource"]["type"] == "datasource"
    assert {"replica", "model"} <= set(names)
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


async def test_every_dashboard_and_alert_query_returns_data(
    prometheus: tuple[str, Path],
    sim: AnthropicSimulator,
    kafka: KafkaSettings,
    topics: TopicSettings,
    group_id: str,
    tmp_path: Path,
) -> None:
    """A replica processes a workload (with a 429 and a dead letter); every query has a series."""
    base, targets = prometheus
    refs = [
        document_ref(f"d{i}", write_file(tmp_path, f"d{i}.txt", invoice_text(f"N-{i}"))) for i in range(40)
    ]
    sim.latency = 0.2
    sim.inject(429, count=1, retry_after=0.2)
    config = consumer_config(
        kafka, topics, group_id, [tmp_path], backend="claude", consumer={"max_in_flight": 4}
    )
    async with running(config) as service, aiohttp.ClientSession() as http:

        async def serving() -> bool:
            return service.health.port is not None

        await wait_until(serving, 30, "the metrics server")
        targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{service.health.port}"]}]))
        await publish_refs(kafka, topics.documents_topic, refs)
        await publish_raw(kafka, topics.documents_topic, [(b"bad", b"not json")])

        async def all_done() -> bool:
            outcomes = len(await read_all(kafka, topics.results_topic))
            return outcomes + len(await read_all(kafka, topics.dlq_topic)) >= 41

        await wait_until(all_done, 120, "the workload to finish")

        # Enough samples after the work for rates and the 10-minute subquery.
        async def scraped_enough() -> bool:
            result = await _query(http, base, 'count_over_time(up{job="docmill"}[5m])')
            return bool(result) and float(result[0]["value"][1]) >= 8

        await wait_until(scraped_enough, 60, "eight scrapes")
        empty = [expr for expr in dashboard_queries() if not await _query(http, base, expr)]
        empty += [f"{name}: {expr}" for name, expr in alert_queries() if not await _query(http, base, expr)]
    assert empty == [], "queries without data:\n" + "\n".join(empty)
