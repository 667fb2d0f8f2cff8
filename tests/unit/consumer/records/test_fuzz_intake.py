"""Property tests: whatever bytes or JSON arrive, decode-and-fetch ends in a document or classified error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.fate.errors import PermanentError, ProcessingError
from consumer.fetch.documents import Document, check_declared_type, inspect_document
from consumer.fetch.fetcher import Fetcher
from consumer.records.intake import decode_document_ref
from schemas.settings import FetchSettings
from tests.helpers.documents import image_bytes, invoice_text, pdf_bytes

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
hostile_paths = st.sampled_from(
    [
        "/etc/passwd",
        "/../../etc/shadow",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/proc/self/environ",
        "//host/share",
        "/dev/zero",
        "/tmp/../etc/hosts",
        "relative/path",
        "",
        "/\x00nul",
        "/%00nul",
    ]
)
uris = st.one_of(
    st.text(max_size=60),
    st.builds(lambda p: f"file://{p}", hostile_paths),
    st.builds(lambda p: f"file://localhost{p}", hostile_paths),
    st.sampled_from(
        [
            "https://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:1/x",
            "https://[::1]/x",
            "ftp://example.com/x",
            "gopher://x",
            "s3://bucket/key",
            "https://0x7f.1/x",
        ]
    ),
)
references = st.fixed_dictionaries(
    {"document_id": st.text(max_size=20) | st.integers(), "uri": uris},
    optional={
        "schema_version": st.integers(-3, 5) | st.text(max_size=3),
        "schema": st.text(max_size=12),
        "content_type": st.text(max_size=20) | st.none(),
        "attributes": json_values,
        "extra": json_values,
    },
)


def _through_intake(value: bytes, root: Path) -> Document | ProcessingError:
    """The consumer's path from a record value to a document, without the extraction."""

    async def run() -> Document | ProcessingError:
        fetcher = Fetcher(FetchSettings(allowed_roots=[root], allow_http=True, fetch_timeout_seconds=2))
        try:
            ref = decode_document_ref(value)
            data, served_as = await fetcher.fetch_declared(ref.uri)
            document = inspect_document(data)
            check_declared_type(document, ref.content_type)
            check_declared_type(document, served_as)
            return document
        except ProcessingError as error:
            return error
        finally:
            await fetcher.close()

    return asyncio.run(run())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.binary(max_size=2048))
def test_arbitrary_bytes_end_in_a_classified_error(value: bytes, tmp_path: Path) -> None:
    """Random record values never raise anything but a classified error."""
    outcome = _through_intake(value, tmp_path)
    assert isinstance(outcome, ProcessingError)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_arbitrary_json_ends_in_a_classified_error(value: object, tmp_path: Path) -> None:
    """Any JSON value that is not a valid reference is a permanent, classified error."""
    outcome = _through_intake(json.dumps(value).encode(), tmp_path)
    assert isinstance(outcome, PermanentError | Document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reference=references)
def test_hostile_references_read_nothing_outside_the_root(
    reference: dict[str, object], tmp_path: Path
) -> None:
    """References aimed at system files, metadata services or odd schemes are refused, never read."""
    outcome = _through_intake(json.dumps(reference).encode(), tmp_path / "root")
    assert isinstance(outcome, ProcessingError)
    assert not isinstance(outcome, Document)


@settings(max_examples=200, deadline=None)
@given(
    base=st.sampled_from(["text", "pdf", "png", "jpeg"]),
    cut=st.floats(0, 1),
    noise=st.binary(max_size=64),
)
def test_damaged_documents_are_identified_or_refused(base: str, cut: float, noise: bytes) -> None:
    """Truncated or corrupted documents are either still whole enough to read or a classified error."""
    original = {
        "text": invoice_text("F-1").encode(),
        "pdf": pdf_bytes(invoice_text("F-2")),
        "png": image_bytes("PNG"),
        "jpeg": image_bytes("JPEG"),
    }[base]
    damaged = original[: int(len(original) * cut)] + noise
    try:
        document = inspect_document(damaged)
    except ProcessingError:
        return
    assert document.media_type in {
        "text/plain",
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
    }
