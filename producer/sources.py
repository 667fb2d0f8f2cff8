"""Turns what a user names (files, folders, globs, URIs, manifests) into DocumentRefs.

Everything is a generator, so a folder of a million files or a huge manifest
is published in constant memory. A source that cannot be used yields a
``SourceError`` (one line naming it) instead of stopping the run.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from producer.identity import document_id_for
from schemas.messages import DocumentRef
from schemas.validation import validation_problems

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SourceError:
    """A source that yields no document, and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True)
class RefDefaults:
    """What every reference of one run carries unless its row says otherwise."""

    job_id: str
    submitted_at: datetime
    extraction_schema: str = "invoice"


def _ref(uri: str, defaults: RefDefaults, **fields: Any) -> DocumentRef | SourceError:
    try:
        return DocumentRef(
            document_id=fields.pop("document_id", None) or document_id_for(uri),
            uri=uri,
            schema=fields.pop("schema", None) or defaults.extraction_schema,
            job_id=defaults.job_id,
            submitted_at=defaults.submitted_at,
            **fields,
        )
    except ValidationError as error:
        first = validation_problems(error, limit=1)[0]
        return SourceError(uri, f"invalid {first.where}: {first.message}")


def _walk(folder: Path) -> Iterator[Path]:
    """Files under a folder, recursively, in a stable order, skipping hidden ones."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _expand_path(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from _walk(path)
    else:
        yield path


def refs_from_sources(sources: Iterable[str], defaults: RefDefaults) -> Iterator[DocumentRef | SourceError]:
    """One reference per document named by a file, folder, glob or URI."""
    for raw in sources:
        source = raw.strip()
        if not source:
            continue
        if _URI.match(source):
            yield _ref(source, defaults)
            continue
        path = Path(source).expanduser()
        if path.exists():
            paths: Iterable[Path] = _expand_path(path)
        elif _GLOB_CHARS.search(source):
            matches = sorted(glob.iglob(str(path), recursive=True))
            if not matches:
                yield SourceError(source, "no files match this pattern")
                continue
            paths = (p for match in matches for p in _expand_path(Path(match)))
        else:
            yield SourceError(source, "no such file or directory")
            continue
        for file_path in paths:
            if file_path.is_file():
                yield _ref(file_path.resolve().as_uri(), defaults)


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row or a reason the row is unreadable) for a JSONL or CSV manifest."""
    # utf-8-sig: spreadsheets save "CSV UTF-8" with a byte-order mark, which would
    # otherwise become part of the first column's name (and break the first JSON line).
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.read(1)
        handle.seek(0)
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or first == "{":
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as error:
                    yield number, f"not valid JSON ({error.msg})"
                    continue
                yield number, row if isinstance(row, dict) else "not a JSON object"
        else:
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, {k: v for k, v in row.items() if k and v not in (None, "")}


def _attributes(row: dict[str, Any]) -> dict[str, str] | str:
    """Attributes from a JSON object (JSONL) or a JSON string / ``attr.*`` columns (CSV)."""
    attributes = row.get("attributes", {})
    if isinstance(attributes, str):
        try:
            attributes = orjson.loads(attributes)
        except orjson.JSONDecodeError:
            return "attributes is not a JSON object"
    if not isinstance(attributes, dict):
        return "attributes is not an object"
    merged = {str(k): str(v) for k, v in attributes.items()}
    merged.update({k[5:]: str(v) for k, v in row.items() if k.startswith("attr.")})
    return merged


def refs_from_manifest(manifest: Path, defaults: RefDefaults) -> Iterator[DocumentRef | SourceError]:
    """One reference per manifest row (uri, optional document_id, schema, content_type, attributes)."""
    for number, row in _manifest_rows(manifest):
        where = f"{manifest}:{number}"
        if isinstance(row, str):
            yield SourceError(where, row)
            continue
        uri = row.get("uri")
        if not isinstance(uri, str) or not uri:
            yield SourceError(where, "row has no uri")
            continue
        if not _URI.match(uri):
            # A bare path in a manifest is relative to the manifest's folder.
            uri = (manifest.parent / uri).resolve().as_uri()
        attributes = _attributes(row)
        if isinstance(attributes, str):
            yield SourceError(where, attributes)
            continue
        ref = _ref(
            uri,
            defaults,
            document_id=row.get("document_id"),
            schema=row.get("schema"),
            content_type=row.get("content_type"),
            attributes=attributes,
        )
        yield SourceError(where, ref.reason) if isinstance(ref, SourceError) else ref
