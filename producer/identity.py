"""Stable document ids and job ids."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime


def document_id_for(uri: str) -> str:
    """A document id derived from its canonical URI.

    The same reference always gets the same id, so re-publishing a document
    does not create a new identity and its result replaces the old one on the
    compacted results topic. The URI (not the bytes) is hashed so that the
    producer never has to read, or download, a document to name it.
    """
    return "doc-" + hashlib.sha256(uri.encode()).hexdigest()[:32]


def new_job_id() -> str:
    """A sortable, unique job id: UTC time of creation plus randomness."""
    return f"job-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
