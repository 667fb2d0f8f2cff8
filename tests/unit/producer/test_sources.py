"""Unit tests of producer.sources: files, folders, globs, URIs and manifests into DocumentRefs."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producer.identity import document_id_for
from producer.sources import RefDefaults, SourceError, refs_from_manifest, refs_from_sources
from schemas.messages import DocumentRef

DEFAULTS = RefDefaults(job_id="job-test", submitted_at=datetime(2026, 1, 15, tzinfo=UTC))


def _refs(items: list[DocumentRef | SourceError]) -> list[DocumentRef]:
    assert all(isinstance(item, DocumentRef) for item in items), items
    return [item for item in items if isinstance(item, DocumentRef)]


def _errors(items: list[DocumentRef | SourceError]) -> list[SourceError]:
    return [item for item in items if isinstance(item, SourceError)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """docs/ with files at two depths, hidden files and a hidden folder."""
    root = tmp_path / "docs"
    (root / "b-sub" / "deeper").mkdir(parents=True)
    (root / "a-sub").mkdir()
    (root / ".git").mkdir()
    for name in [
        "z.pdf",
        "a.pdf",
        "m.txt",
        ".DS_Store",
        "b-sub/2.pdf",
        "b-sub/1.pdf",
        "b-sub/deeper/x.png",
        "b-sub/.hidden.pdf",
        "a-sub/only.pdf",
        ".git/config",
    ]:
        (root / name).write_bytes(b"%PDF-1.4")
    return root


# --- refs_from_sources -------------------------------------------------------------


def test_folder_is_walked_recursively_sorted_without_hidden(folder: Path) -> None:
    """A folder yields every non-hidden file below it, in a stable sorted order."""
    refs = _refs(list(refs_from_sources([str(folder)], DEFAULTS)))
    paths = [Path(ref.uri.removeprefix("file://")).relative_to(folder).as_posix() for ref in refs]
    assert paths == [
        "a.pdf",
        "m.txt",
        "z.pdf",
        "a-sub/only.pdf",
        "b-sub/1.pdf",
        "b-sub/2.pdf",
        "b-sub/deeper/x.png",
    ]


def test_refs_carry_run_defaults(folder: Path) -> None:
    """Every reference carries the run's job id, submission time and default schema."""
    defaults = RefDefaults(job_id="job-9", submitted_at=DEFAULTS.submitted_at, extraction_schema="receipt")
    ref = _refs(list(refs_from_sources([str(folder / "a.pdf")], defaults)))[0]
    assert ref.job_id == "job-9"
    assert ref.submitted_at == DEFAULTS.submitted_at
    assert ref.extraction_schema == "receipt"
    assert ref.uri == (folder / "a.pdf").resolve().as_uri()


def test_glob_selects_matching_files(folder: Path) -> None:
    """A recursive glob yields only the matching files, sorted."""
    refs = _refs(list(refs_from_sources([f"{folder}/**/*.pdf"], DEFAULTS)))
    names = [Path(ref.uri).name for ref in refs]
    assert sorted(names) == sorted(["a.pdf", "z.pdf", "only.pdf", "1.pdf", "2.pdf"])
    assert not any(name.startswith(".") for name in names)
    assert [ref.uri for ref in refs] == sorted(ref.uri for ref in refs)


def test_glob_without_matches_is_a_source_error(folder: Path) -> None:
    """A glob that matches nothing yields one SourceError naming the pattern."""
    pattern = f"{folder}/*.docx"
    items = list(refs_from_sources([pattern], DEFAULTS))
    assert len(items) == 1
    assert isinstance(items[0], SourceError)
    assert items[0].source == pattern
    assert "no files match" in str(items[0])


@pytest.mark.parametrize(
    "uri", ["https://files.example.com/inv-7.pdf", "s3://bucket/key.pdf", "file:///data/a.pdf"]
)
def test_uri_is_passed_through(uri: str) -> None:
    """A URI is published as given, with an id derived from it, without touching it."""
    ref = _refs(list(refs_from_sources([uri], DEFAULTS)))[0]
    assert ref.uri == uri
    assert ref.document_id == document_id_for(uri)


def test_missing_path_is_a_source_error_and_others_continue(folder: Path) -> None:
    """A path that does not exist yields a SourceError; later sources are still produced."""
    missing = str(folder / "nope.pdf")
    items = list(refs_from_sources([missing, str(folder / "a.pdf")], DEFAULTS))
    assert isinstance(items[0], SourceError)
    assert items[0].source == missing
    assert "no such file" in items[0].reason
    assert isinstance(items[1], DocumentRef)


def test_blank_sources_are_skipped(folder: Path) -> None:
    """Empty and whitespace-only sources (e.g. blank stdin lines) yield nothing."""
    items = list(refs_from_sources(["", "   ", f"  {folder / 'a.pdf'}  "], DEFAULTS))
    assert len(_refs(items)) == 1


def test_ids_are_stable_across_calls(folder: Path) -> None:
    """Listing the same folder twice gives the same ids in the same order."""
    first = [ref.document_id for ref in _refs(list(refs_from_sources([str(folder)], DEFAULTS)))]
    second = [ref.document_id for ref in _refs(list(refs_from_sources([str(folder)], DEFAULTS)))]
    assert first == second
    assert len(set(first)) == len(first)


def test_same_file_named_differently_gets_the_same_id(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file named directly, relatively, via '..' or through its folder has one id."""
    monkeypatch.chdir(folder / "b-sub")
    direct = _refs(list(refs_from_sources([str(folder / "a.pdf")], DEFAULTS)))[0]
    relative = _refs(list(refs_from_sources(["../a.pdf"], DEFAULTS)))[0]
    dotted = _refs(list(refs_from_sources([str(folder / "a-sub" / ".." / "a.pdf")], DEFAULTS)))[0]
    via_folder = next(
        ref for ref in _refs(list(refs_from_sources([str(folder)], DEFAULTS))) if ref.uri.endswith("/a.pdf")
    )
    assert direct.document_id == relative.document_id == dotted.document_id == via_folder.document_id
    assert direct.uri == relative.uri


def test_is_lazy(tmp_path: Path) -> None:
    """Sources are read one at a time: a generator, so a huge folder needs no memory up front."""
    (tmp_path / "a.pdf").write_bytes(b"x")
    items = refs_from_sources(iter([str(tmp_path / "a.pdf"), str(tmp_path / "missing")]), DEFAULTS)
    assert isinstance(next(items), DocumentRef)
    assert isinstance(next(items), SourceError)


# --- refs_from_manifest ---------------------------------------------------------------


def test_jsonl_manifest_with_attributes(tmp_path: Path) -> None:
    """JSONL rows give uri, document_id, schema, content_type and string attributes."""
    manifest = tmp_path / "batch.jsonl"
    manifest.write_text(
        '{"uri": "https://x.example/a.pdf", "document_id": "inv-1", "schema": "invoice",'
        ' "content_type": "application/pdf", "attributes": {"tenant": "acme", "pages": 3}}\n'
        "\n"
        '{"uri": "s3://bucket/b.pdf"}\n',
        encoding="utf-8",
    )
    refs = _refs(list(refs_from_manifest(manifest, DEFAULTS)))
    assert len(refs) == 2
    first, second = refs
    assert first.uri == "https://x.example/a.pdf"
    assert first.document_id == "inv-1"
    assert first.content_type == "application/pdf"
    assert first.attributes == {"tenant": "acme", "pages": "3"}
    assert first.job_id == "job-test"
    assert second.document_id == document_id_for("s3://bucket/b.pdf")
    assert second.extraction_schema == "invoice"
    assert second.attributes == {}


def test_csv_manifest_with_json_and_attr_columns(tmp_path: Path) -> None:
    """CSV rows take attributes from a JSON object column and from attr.* columns."""
    manifest = tmp_path / "batch.csv"
    manifest.write_text(
        "uri,document_id,attributes,attr.tenant,attr.region\n"
        'https://x.example/a.pdf,inv-1,"{""priority"": ""high"", ""n"": 2}",acme,eu\n'
        "https://x.example/b.pdf,,,globex,\n",
        encoding="utf-8",
    )
    refs = _refs(list(refs_from_manifest(manifest, DEFAULTS)))
    assert [ref.document_id for ref in refs] == ["inv-1", document_id_for("https://x.example/b.pdf")]
    assert refs[0].attributes == {"priority": "high", "n": "2", "tenant": "acme", "region": "eu"}
    assert refs[1].attributes == {"tenant": "globex"}


def test_csv_manifest_saved_with_bom(tmp_path: Path) -> None:
    """A CSV saved by Excel as 'UTF-8 with BOM' still has a uri column."""
    manifest = tmp_path / "excel.csv"
    manifest.write_bytes("uri,attr.tenant\nhttps://x.example/a.pdf,acme\n".encode("utf-8-sig"))
    refs = _refs(list(refs_from_manifest(manifest, DEFAULTS)))
    assert refs[0].uri == "https://x.example/a.pdf"
    assert refs[0].attributes == {"tenant": "acme"}


def test_jsonl_manifest_saved_with_bom(tmp_path: Path) -> None:
    """A JSONL file starting with a byte-order mark is read, its first row included."""
    manifest = tmp_path / "batch.jsonl"
    manifest.write_bytes('{"uri": "https://x.example/a.pdf"}\n'.encode("utf-8-sig"))
    assert _refs(list(refs_from_manifest(manifest, DEFAULTS)))[0].uri == "https://x.example/a.pdf"


def test_manifest_rows_without_uri_name_file_and_line(tmp_path: Path) -> None:
    """A row with no uri is a SourceError naming file:line; the other rows still come out."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"uri": "https://x.example/a.pdf"}\n{"document_id": "x"}\n{"uri": ""}\n'
        '{"uri": "https://x.example/b.pdf"}\n',
        encoding="utf-8",
    )
    items = list(refs_from_manifest(manifest, DEFAULTS))
    errors = _errors(items)
    assert [str(error.source) for error in errors] == [f"{manifest}:2", f"{manifest}:3"]
    assert all("no uri" in error.reason for error in errors)
    assert len(items) == 4


def test_csv_row_without_uri_names_its_line(tmp_path: Path) -> None:
    """In a CSV the line number counts the header: the second data row is line 3."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("uri,document_id\nhttps://x.example/a.pdf,a\n,b\n", encoding="utf-8")
    errors = _errors(list(refs_from_manifest(manifest, DEFAULTS)))
    assert [error.source for error in errors] == [f"{manifest}:3"]


def test_malformed_json_line_names_file_and_line(tmp_path: Path) -> None:
    """A line that is not JSON, or not an object, is a SourceError naming file:line."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"uri": "https://x.example/a.pdf"}\n{"uri": broken\n["a", "b"]\n', encoding="utf-8")
    errors = _errors(list(refs_from_manifest(manifest, DEFAULTS)))
    assert [error.source for error in errors] == [f"{manifest}:2", f"{manifest}:3"]
    assert "not valid JSON" in errors[0].reason
    assert "not a JSON object" in errors[1].reason
    assert str(errors[0]).startswith(f"{manifest}:2: ")


def test_invalid_field_values_name_file_and_line(tmp_path: Path) -> None:
    """A row whose schema name or attributes are invalid is a SourceError naming file:line."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"uri": "https://x.example/a.pdf", "schema": "Not A Name"}\n'
        '{"uri": "https://x.example/b.pdf", "attributes": ["a"]}\n'
        '{"uri": "https://x.example/c.pdf", "attributes": "{not json"}\n',
        encoding="utf-8",
    )
    errors = _errors(list(refs_from_manifest(manifest, DEFAULTS)))
    assert [error.source for error in errors] == [f"{manifest}:{n}" for n in (1, 2, 3)]
    assert "schema" in errors[0].reason
    assert "attributes" in errors[1].reason
    assert "attributes" in errors[2].reason


def test_relative_paths_resolve_against_manifest_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare path in a manifest is relative to the manifest's folder, not the working directory."""
    batch = tmp_path / "batch"
    (batch / "scans").mkdir(parents=True)
    manifest = batch / "m.csv"
    manifest.write_text("uri\nscans/a.pdf\n../elsewhere/b.pdf\n/abs/c.pdf\n", encoding="utf-8")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    refs = _refs(list(refs_from_manifest(manifest, DEFAULTS)))
    assert [ref.uri for ref in refs] == [
        (batch / "scans" / "a.pdf").resolve().as_uri(),
        (tmp_path / "elsewhere" / "b.pdf").resolve().as_uri(),
        "file:///abs/c.pdf",
    ]


def test_manifest_and_direct_naming_give_the_same_id(tmp_path: Path) -> None:
    """A file listed in a manifest gets the same id as when named on the command line."""
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"uri": "a.pdf"}\n', encoding="utf-8")
    from_manifest = _refs(list(refs_from_manifest(manifest, DEFAULTS)))[0]
    direct = _refs(list(refs_from_sources([str(tmp_path / "a.pdf")], DEFAULTS)))[0]
    assert from_manifest.document_id == direct.document_id
    assert from_manifest.uri == direct.uri


def test_unnamed_manifest_with_json_content_is_read_as_jsonl(tmp_path: Path) -> None:
    """A manifest without a .jsonl suffix whose first character is '{' is read as JSONL."""
    manifest = tmp_path / "batch.txt"
    manifest.write_text('{"uri": "https://x.example/a.pdf"}\n', encoding="utf-8")
    assert _refs(list(refs_from_manifest(manifest, DEFAULTS)))[0].uri == "https://x.example/a.pdf"


def test_hidden_files_skipped_but_named_hidden_file_is_used(tmp_path: Path) -> None:
    """Hidden files are skipped when walking, but a hidden file named explicitly is published."""
    (tmp_path / ".secret.pdf").write_bytes(b"x")
    assert list(refs_from_sources([str(tmp_path)], DEFAULTS)) == []
    assert len(_refs(list(refs_from_sources([str(tmp_path / ".secret.pdf")], DEFAULTS)))) == 1


def test_folder_symlinks_are_not_followed(tmp_path: Path) -> None:
    """A symlinked folder inside a walked folder is not descended into (no loops, no escapes)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.pdf").write_bytes(b"x")
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    refs = _refs(list(refs_from_sources([str(docs)], DEFAULTS)))
    assert [Path(ref.uri).name for ref in refs] == ["a.pdf"]
    assert os.path.islink(docs / "loop")
