"""Hostile input through the whole pipeline: each ends in its own dead letter, the consumer goes on."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from consumer.ops.topics import ensure_topics
from schemas.settings import KafkaSettings, TopicSettings
from tests.helpers.documents import image_bytes, invoice_text, pdf_bytes, write_file
from tests.helpers.kafka import consumer_config, drain, publish_raw, read_all, read_values

pytestmark = pytest.mark.integration


@pytest.fixture
async def web_server() -> AsyncIterator[str]:
    """A small document server on 127.0.0.1 that lies about its content types and sizes."""

    async def mislabelled(_: web.Request) -> web.Response:
        return web.Response(body=pdf_bytes(invoice_text("X")), content_type="image/png")

    async def honest(_: web.Request) -> web.Response:
        return web.Response(body=invoice_text("WEB-1").encode(), content_type="text/plain")

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: cut off by the size cap
        await response.prepare(request)
        for _ in range(200):
            await response.write(b"x" * 65536)
        return response

    app = web.Application()
    app.router.add_get("/mislabelled.png", mislabelled)
    app.router.add_get("/invoice.txt", honest)
    app.router.add_get("/endless", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_hostile_values_documents_and_servers_each_get_their_own_dead_letter(
    web_server: str, kafka: KafkaSettings, group_id: str, tmp_path: Path
) -> None:
    """A 10 MB value, lying servers and types, and refused addresses are dead-lettered precisely."""
    suffix = os.urandom(4).hex()
    topics = TopicSettings(
        documents_topic=f"hostile.{suffix}.d",
        results_topic=f"hostile.{suffix}.r",
        dlq_topic=f"hostile.{suffix}.q",
        jobs_topic=f"hostile.{suffix}.j",
    )
    await ensure_topics(kafka, topics, partitions=2, replication_factor=1)
    # Only an upstream topic configured for it can carry a 10 MB value at all.
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    topics.documents_topic,
                    configs={"max.message.bytes": str(12 * 1024 * 1024)},
                )
            ]
        )
    finally:
        await admin.close()
    huge = os.urandom(10 * 1024 * 1024)
    root = tmp_path / "root"
    write_file(root, "photo.pdf", image_bytes("PNG"))  # named like a PDF, declared as one below

    def ref(doc_id: str, uri: str, **extra: object) -> tuple[bytes, bytes]:
        return doc_id.encode(), orjson.dumps({"document_id": doc_id, "uri": uri, **extra})

    cases = {
        "huge": ((b"huge", huge), "InvalidMessage"),
        "deep": ((b"deep", b"[" * 100_000 + b"]" * 100_000), "InvalidMessage"),
        "declared-pdf": (
            ref("declared-pdf", (root / "photo.pdf").as_uri(), content_type="application/pdf"),
            "ContentTypeMismatch",
        ),
        "served-as-png": (ref("served-as-png", f"{web_server}/mislabelled.png"), "ContentTypeMismatch"),
        "endless": (ref("endless", f"{web_server}/endless"), "DocumentTooLarge"),
        "metadata": (ref("metadata", "http://169.254.169.254/latest/meta-data/"), "ForbiddenAddress"),
        "private-v6": (ref("private-v6", "https://[fd00::1]/x.pdf"), "ForbiddenAddress"),
    }
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**kafka.client_kwargs(), max_request_size=12 * 1024 * 1024)
    await producer.start()
    try:
        for record, _ in cases.values():
            await producer.send_and_wait(topics.documents_topic, key=record[0], value=record[1])
    finally:
        await producer.stop()
    await publish_raw(kafka, topics.documents_topic, [ref("honest", f"{web_server}/invoice.txt")])

    await drain(
        consumer_config(
            kafka,
            topics,
            group_id,
            [root],
            # Loopback is this test's "internet": private ranges stay refused only by the guard.
            fetch={"allow_http": True, "allow_private_addresses": False, "max_document_bytes": 1024 * 1024},
        )
    )

    letters = {r.key.decode(): r for r in await read_all(kafka, topics.dlq_topic)}
    for doc_id, (_, error_class) in cases.items():
        if doc_id in ("served-as-png", "endless"):
            # Loopback servers are refused without allow_private_addresses: proven below.
            assert orjson.loads(letters[doc_id].value)["error_class"] == "ForbiddenAddress"
            continue
        assert orjson.loads(letters[doc_id].value)["error_class"] == error_class, doc_id
    huge_letter = orjson.loads(letters["huge"].value)
    assert huge_letter["original_size"] == len(huge)
    assert huge_letter["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert base64.b64decode(huge_letter["original_value"]) == huge  # verbatim, 10 MB
    assert orjson.loads(letters["honest"].value)["error_class"] == "ForbiddenAddress"

    # The same servers, allowed as targets: the lies about types and sizes are what fail.
    topics2 = TopicSettings(
        documents_topic=f"hostile.{suffix}.d2",
        results_topic=f"hostile.{suffix}.r2",
        dlq_topic=f"hostile.{suffix}.q2",
        jobs_topic=f"hostile.{suffix}.j2",
    )
    await ensure_topics(kafka, topics2, partitions=1, replication_factor=1)
    await publish_raw(
        kafka,
        topics2.documents_topic,
        [
            ref("served-as-png", f"{web_server}/mislabelled.png"),
            ref("endless", f"{web_server}/endless"),
            ref("honest", f"{web_server}/invoice.txt"),
        ],
    )
    await drain(
        consumer_config(
            kafka,
            topics2,
            f"{group_id}-2",
            [root],
            fetch={"allow_http": True, "allow_private_addresses": True, "max_document_bytes": 1024 * 1024},
        )
    )
    letters2 = {d["document_id"]: d["error_class"] for d in await read_values(kafka, topics2.dlq_topic)}
    assert letters2 == {"served-as-png": "ContentTypeMismatch", "endless": "DocumentTooLarge"}
    assert [r["document_id"] for r in await read_values(kafka, topics2.results_topic)] == ["honest"]
