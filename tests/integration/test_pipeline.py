"""The whole pipeline through the real broker: publish, consume, results, dead letters, commits."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer import Publisher
from schemas.settings import KafkaSettings, TopicSettings
from schemas.topics import Header
from tests.helpers.documents import (
    corrupt_pdf_bytes,
    document_ref,
    docx_bytes,
    encrypted_pdf_bytes,
    image_bytes,
    invoice_text,
    pdf_bytes,
    write_file,
)
from tests.helpers.kafka import committed, consumer_config, drain, publish_raw, read_all, read_values
from tests.helpers.scans import degrade, encoded, render, scanned_pdf

pytestmark = pytest.mark.integration


async def _end_offsets_committed(kafka: KafkaSettings, group: str, topic: str) -> bool:
    records = await read_all(kafka, topic)
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    offsets = await committed(kafka, group, topic)
    return all(offsets.get(p) == end for p, end in ends.items())


async def test_every_document_type_is_extracted_with_claude(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """Text, PDF, PNG, JPEG, GIF and WebP documents each produce a validated result via the API."""
    files = {
        "text": write_file(tmp_path, "a.txt", invoice_text("INV-TXT-1", total="1,234.50")),
        "pdf": write_file(
            tmp_path, "b.pdf", pdf_bytes(invoice_text("INV-PDF-2", vendor="Globex", total="99.95"))
        ),
        "png": write_file(tmp_path, "c.png", image_bytes("PNG")),
        "jpeg": write_file(tmp_path, "d.jpg", image_bytes("JPEG")),
        "gif": write_file(tmp_path, "e.gif", image_bytes("GIF")),
        "webp": write_file(tmp_path, "f.webp", image_bytes("WEBP")),
    }
    async with Publisher(kafka, topic=topics.documents_topic) as publisher:
        for name, path in files.items():
            await publisher.publish(document_ref(name, path))

    await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))

    results = {r["document_id"]: r for r in await read_values(kafka, topics.results_topic)}
    assert set(results) == set(files)
    assert await read_all(kafka, topics.dlq_topic) == []
    assert results["text"]["data"]["invoice_number"] == "INV-TXT-1"
    assert results["text"]["data"]["total_amount"] == 1234.5
    assert results["pdf"]["data"]["vendor_name"] == "Globex"
    assert results["pdf"]["data"]["total_amount"] == 99.95
    for result in results.values():
        assert result["backend"] == "claude"
        assert result["model"] == "claude-haiku-5-5"
        assert result["usage"]["input_tokens"] > 0
        assert result["cost_usd"] > 0
        assert result["source"]["topic"] == topics.documents_topic
    assert await _end_offsets_committed(kafka, group_id, topics.documents_topic)


async def test_local_backend_reads_text_layers_scans_and_photos(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """`local` extracts text and PDF invoices, a photographed receipt and a scanned PDF at zero
    cost (the scans by OCR, with per-field confidence), and dead-letters a picture with no
    words on it as NothingExtracted."""
    scan = render(
        [("Receipt #", "R-4471"), ("Merchant:", "Corner Cafe"), ("Date", "2026-03-31"), ("Total", "$37.50")]
    )
    text = write_file(tmp_path, "a.txt", invoice_text("L-1", total="10.00"))
    pdf = write_file(tmp_path, "b.pdf", pdf_bytes(invoice_text("L-2", total="20.50")))
    photo = write_file(tmp_path, "c.jpg", encoded(degrade(scan, seed=5, noise=0.01), "JPEG", 70))
    scanned = write_file(
        tmp_path, "d.pdf", scanned_pdf([render(invoice_text("S-9", total="99.00").splitlines())])
    )
    blank = write_file(tmp_path, "e.png", image_bytes("PNG"))
    async with Publisher(kafka, topic=topics.documents_topic) as publisher:
        for document_id, path in (("t", text), ("p", pdf), ("photo", photo), ("scan", scanned), ("i", blank)):
            await publisher.publish(document_ref(document_id, path))

    await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="local"))

    results = {r["document_id"]: r for r in await read_values(kafka, topics.results_topic)}
    assert results["t"]["data"]["total_amount"] == 10.0
    assert results["p"]["data"]["invoice_number"] == "L-2"
    assert results["photo"]["data"] == {
        "invoice_number": "R-4471",
        "vendor_name": "Corner Cafe",
        "invoice_date": "2026-03-31",
        "total_amount": 37.5,
        "currency": "USD",
    }
    assert results["scan"]["data"]["invoice_number"] == "S-9"
    assert results["scan"]["data"]["total_amount"] == 99.0
    assert all(r["cost_usd"] == 0 for r in results.values())
    assert results["t"]["confidence"] == results["p"]["confidence"] == 1.0
    for document_id in ("photo", "scan"):
        field_confidence = results[document_id]["field_confidence"]
        assert set(field_confidence) == set(results[document_id]["data"])
        assert 0 < results[document_id]["confidence"] < 1
    letters = await read_values(kafka, topics.dlq_topic)
    assert [(d["document_id"], d["error_class"]) for d in letters] == [("i", "NothingExtracted")]


def _failure_cases(root: Path, outside: Path) -> list[tuple[str, bytes, str]]:
    """(document id, exact record value, expected error class) for every permanent failure."""
    secret = write_file(outside, "secret.txt", invoice_text("SECRET"))
    (root / "link.txt").symlink_to(secret)
    (root / "linked-dir").symlink_to(outside, target_is_directory=True)

    def ref(document_id: str, uri: str, **extra: Any) -> bytes:
        return orjson.dumps({"document_id": document_id, "uri": uri, **extra})

    files = {
        "empty": write_file(root, "empty.txt", b""),
        "docx": write_file(root, "letter.pdf", docx_bytes()),  # a .docx disguised by its name
        "corrupt-pdf": write_file(root, "corrupt.pdf", corrupt_pdf_bytes()),
        "corrupt-png": write_file(root, "corrupt.png", image_bytes("PNG")[:70]),
        "encrypted": write_file(root, "locked.pdf", encrypted_pdf_bytes()),
        "too-many-pages": write_file(root, "long.pdf", pdf_bytes("x", pages=101)),
        "huge-image": write_file(root, "wide.png", image_bytes("PNG", size=(8001, 8))),
    }
    cases = [
        ("not-json", b"this is not json", "InvalidMessage"),
        ("not-utf8", b"\xff\xfe\x00binary", "InvalidMessage"),
        ("not-object", b"[1, 2, 3]", "InvalidMessage"),
        ("missing-field", orjson.dumps({"uri": "file:///x"}), "MessageValidationError"),
        (
            "wrong-type",
            orjson.dumps({"document_id": 7, "uri": "file:///x"}),
            "MessageValidationError",
        ),
        (
            "newer-version",
            ref("newer-version", "file:///x", schema_version=99),
            "UnsupportedSchemaVersion",
        ),
        ("unknown-scheme", ref("unknown-scheme", "gopher://example/x"), "UnsupportedUriScheme"),
        ("outside", ref("outside", secret.as_uri()), "PathOutsideAllowedRoots"),
        (
            "dotdot",
            ref("dotdot", f"file://{root}/../outside/secret.txt"),
            "PathOutsideAllowedRoots",
        ),
        (
            "encoded-dotdot",
            ref("encoded-dotdot", f"file://{root}/%2e%2e/outside/secret.txt"),
            "PathOutsideAllowedRoots",
        ),
        ("symlink", ref("symlink", (root / "link.txt").as_uri()), "PathOutsideAllowedRoots"),
        (
            "symlinked-parent",
            ref("symlinked-parent", f"file://{root}/linked-dir/secret.txt"),
            "PathOutsideAllowedRoots",
        ),
        ("missing", ref("missing", (root / "nope.pdf").as_uri()), "DocumentNotFound"),
        (
            "unknown-schema",
            ref("unknown-schema", (root / "x.txt").as_uri(), schema="purchase_order"),
            "UnknownExtractionSchema",
        ),
    ]
    expected = {
        "empty": "EmptyDocument",
        "docx": "UnsupportedDocumentType",
        "corrupt-pdf": "CorruptDocument",
        "corrupt-png": "CorruptDocument",
        "encrypted": "EncryptedDocument",
        "too-many-pages": "DocumentTooLarge",
        "huge-image": "DocumentTooLarge",
    }
    cases += [(doc_id, ref(doc_id, files[doc_id].as_uri()), expected[doc_id]) for doc_id in files]
    return cases


async def test_every_permanent_failure_lands_in_the_dlq_with_its_class_and_original_bytes(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """Each bad message or document becomes one dead letter, verbatim, and the consumer keeps going."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    cases = _failure_cases(root, outside)
    good = write_file(root, "good.txt", invoice_text("GOOD-1"))
    await publish_raw(
        kafka,
        topics.documents_topic,
        [(doc_id.encode(), value) for doc_id, value, _ in cases]
        + [(b"good", orjson.dumps({"document_id": "good", "uri": good.as_uri()}))],
        headers=[("traceparent", b"00-abc-def-01")],
    )

    await drain(consumer_config(kafka, topics, group_id, [root], backend="claude"))

    letters = {r.key.decode(): r for r in await read_all(kafka, topics.dlq_topic)}
    assert set(letters) == {doc_id for doc_id, _, _ in cases}
    for doc_id, value, error_class in cases:
        record = letters[doc_id]
        letter = orjson.loads(record.value)
        headers = dict(record.headers)
        assert letter["error_class"] == error_class, (doc_id, letter["error_message"])
        assert headers[Header.ERROR_CLASS].decode() == error_class
        assert headers["traceparent"] == b"00-abc-def-01"  # original headers kept
        assert letter["retryable"] is False
        assert letter["source"]["topic"] == topics.documents_topic
        original = letter["original_value"]
        if letter["original_encoding"] == "base64":
            assert base64.b64decode(original) == value
        else:
            assert original.encode() == value
    results = await read_values(kafka, topics.results_topic)
    assert [r["document_id"] for r in results] == ["good"]
    # Nothing outside the root was ever sent to the API.
    assert sim.stats.total_requests == 1
    assert await _end_offsets_committed(kafka, group_id, topics.documents_topic)
