"""Through the real broker: a bug while extracting one record neither stalls nor loses anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.extract.base import Extraction
from consumer.extract.local import LocalExtractor
from consumer.fetch.documents import Document
from schemas.extraction import ExtractionSchema
from schemas.settings import KafkaSettings, TopicSettings
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import committed, consumer_config, drain, publish_refs, read_all, read_values

pytestmark = pytest.mark.integration


class BuggyExtractor(LocalExtractor):
    """The local extractor with a planted bug: documents mentioning BUGGY crash it."""

    async def extract(self, document: Document, schema: ExtractionSchema) -> Extraction:
        if "BUGGY" in (document.text or ""):
            raise ZeroDivisionError("a planted bug")
        return await super().extract(document, schema)


async def test_an_unexpected_exception_is_dead_lettered_and_the_partition_keeps_committing(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """The buggy record is dead-lettered as UnexpectedError (retryable, naming where it was raised),
    counted in docmill_unexpected_errors_total, and every partition commits to its end."""
    refs = [
        document_ref(f"d{i}", write_file(tmp_path, f"d{i}.txt", invoice_text(f"N-{i}"))) for i in range(30)
    ]
    refs.insert(3, document_ref("buggy", write_file(tmp_path, "buggy.txt", invoice_text("BUGGY-1"))))
    await publish_refs(kafka, topics.documents_topic, refs)

    service = await drain(consumer_config(kafka, topics, group_id, [tmp_path]), extractor=BuggyExtractor())

    letters = await read_values(kafka, topics.dlq_topic)
    assert [letter["document_id"] for letter in letters] == ["buggy"]
    letter = letters[0]
    assert letter["error_class"] == "UnexpectedError"
    assert letter["retryable"] is True
    assert "ZeroDivisionError: a planted bug" in letter["error_message"]
    assert "test_fates.py" in letter["error_message"]
    results = await read_values(kafka, topics.results_topic)
    assert sorted(result["document_id"] for result in results) == sorted(f"d{i}" for i in range(30))
    # Nothing is held back: each partition's commit reached its end, the buggy record's included.
    ends: dict[int, int] = {}
    for record in await read_all(kafka, topics.documents_topic):
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    assert await committed(kafka, group_id, topics.documents_topic) == ends
    registry = service.metrics.registry
    assert registry.get_sample_value("docmill_unexpected_errors_total") == 1
    assert registry.get_sample_value("docmill_dead_letters_total", {"error_class": "UnexpectedError"}) == 1
