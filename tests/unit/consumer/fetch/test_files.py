"""file:// references through the Fetcher: confined to the roots whatever symlinks and '..' say."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumer.fate.errors import (
    DocumentNotFound,
    DocumentTooLarge,
    PathOutsideAllowedRoots,
    UnsupportedUriScheme,
)
from consumer.fetch import files
from consumer.fetch.fetcher import Fetcher
from schemas.settings import FetchSettings

# --- file:// -------------------------------------------------------------------


@pytest.fixture(autouse=True, params=["beneath", "by-descriptor", "by-realpath"])
def opening(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs each way files are confined: openat2 beneath the root (Linux 5.6+, falling
    back to the next way for what it refuses), an O_PATH descriptor (Linux), and resolving the
    path first where the system has neither."""
    if request.param == "beneath" and files._BENEATH is None:
        pytest.skip("this system has no openat2")
    if request.param != "beneath":
        monkeypatch.setattr(files, "_BENEATH", None)
    if request.param == "by-realpath":
        monkeypatch.setattr(files, "_O_PATH", None)
    return str(request.param)


@dataclass
class Tree:
    """A root folder docmill may read, next to files it must not."""

    root: Path
    outside: Path  # a folder beside the root
    secret: Path  # a file outside the root


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "invoice.txt").write_bytes(b"Invoice Number: INV-1\n")
    (root / "sub" / "nested.txt").write_bytes(b"nested")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_bytes(b"top secret")
    return Tree(root=root, outside=outside, secret=secret)


@pytest.fixture
async def file_fetcher(tree: Tree) -> AsyncIterator[Fetcher]:
    fetcher = Fetcher(FetchSettings(allowed_roots=[tree.root]))
    yield fetcher
    await fetcher.close()


async def test_reads_file_inside_root(file_fetcher: Fetcher, tree: Tree) -> None:
    """A file:// URI inside an allowed root returns the file's exact bytes."""
    assert await file_fetcher.fetch((tree.root / "invoice.txt").as_uri()) == b"Invoice Number: INV-1\n"
    assert await file_fetcher.fetch((tree.root / "sub" / "nested.txt").as_uri()) == b"nested"


async def test_reads_file_with_localhost_host(file_fetcher: Fetcher, tree: Tree) -> None:
    """file://localhost/... is the local machine and is allowed."""
    uri = f"file://localhost{tree.root / 'invoice.txt'}"
    assert await file_fetcher.fetch(uri) == b"Invoice Number: INV-1\n"


async def test_reads_percent_encoded_file_name(file_fetcher: Fetcher, tree: Tree) -> None:
    """Percent-encoded names (spaces, non-ASCII) are decoded before opening."""
    (tree.root / "a b é.txt").write_bytes(b"spaced")
    assert await file_fetcher.fetch((tree.root / "a b é.txt").as_uri()) == b"spaced"


async def test_root_given_through_a_symlink_still_allows_its_files(tree: Tree, tmp_path: Path) -> None:
    """A root configured as a symlink to a folder allows that folder's files, by either path."""
    link = tmp_path / "root-link"
    link.symlink_to(tree.root, target_is_directory=True)
    fetcher = Fetcher(FetchSettings(allowed_roots=[link]))
    try:
        assert await fetcher.fetch(f"file://{link}/invoice.txt") == b"Invoice Number: INV-1\n"
        assert await fetcher.fetch((tree.root / "invoice.txt").as_uri()) == b"Invoice Number: INV-1\n"
    finally:
        await fetcher.close()


async def test_symlink_inside_root_to_file_inside_root_is_allowed(file_fetcher: Fetcher, tree: Tree) -> None:
    """A symlink whose target is also inside the root is read normally."""
    (tree.root / "alias.txt").symlink_to(tree.root / "sub" / "nested.txt")
    assert await file_fetcher.fetch((tree.root / "alias.txt").as_uri()) == b"nested"


@pytest.mark.parametrize(
    "relative",
    [
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        "%2e%2e/outside/secret.txt",
        "%2E%2E%2Foutside%2Fsecret.txt",
    ],
)
async def test_dotdot_escape_is_refused(file_fetcher: Fetcher, tree: Tree, relative: str) -> None:
    """'..' segments, literal or percent-encoded, cannot climb out of the root."""
    with pytest.raises(PathOutsideAllowedRoots):
        await file_fetcher.fetch(f"file://{tree.root}/{relative}")


async def test_dotdot_to_etc_passwd_is_refused(file_fetcher: Fetcher, tree: Tree) -> None:
    """The classic file:///root/../../../etc/passwd is refused before anything is opened."""
    depth = "../" * len(tree.root.parts)
    with pytest.raises(PathOutsideAllowedRoots):
        await file_fetcher.fetch(f"file://{tree.root}/{depth}etc/passwd")


async def test_absolute_path_outside_is_refused(file_fetcher: Fetcher, tree: Tree) -> None:
    """An existing file outside every root is refused, not read."""
    with pytest.raises(PathOutsideAllowedRoots):
        await file_fetcher.fetch(tree.secret.as_uri())


async def test_sibling_folder_sharing_a_prefix_is_refused(file_fetcher: Fetcher, tree: Tree) -> None:
    """A folder named like the root plus a suffix (root-evil) is not inside the root."""
    evil = tree.root.parent / (tree.root.name + "-evil")
    evil.mkdir()
    (evil / "x.txt").write_bytes(b"x")
    with pytest.raises(PathOutsideAllowedRoots):
        await file_fetcher.fetch((evil / "x.txt").as_uri())


async def test_symlink_inside_root_to_outside_is_refused(file_fetcher: Fetcher, tree: Tree) -> None:
    """A symlink in the root that points outside it is refused (symlinks are resolved)."""
    (tree.root / "link.txt").symlink_to(tree.secret)
    with pytest.raises(PathOutsideAllowedRoots):
        await file_fetcher.fetch((tree.root / "link.txt").as_uri())


async def test_symlinked_parent_folder_to_outside_is_refused(file_fetcher: Fetcher, tree: Tree) -> None:
    """A folder symlink in the root that points outside it cannot be read through."""
    (tree.root / "escape").symlink_to(tree.outside, target_is_directory=True)
    with pytest.raises(PathOutsideAllowedRoots):
        await file_fetcher.fetch(f"file://{tree.root}/escape/secret.txt")


async def test_symlink_loop_is_a_classified_error(file_fetcher: Fetcher, tree: Tree) -> None:
    """A symlink loop inside the root is a permanent classified error, not a RuntimeError."""
    (tree.root / "loop-a").symlink_to(tree.root / "loop-b")
    (tree.root / "loop-b").symlink_to(tree.root / "loop-a")
    with pytest.raises((PathOutsideAllowedRoots, DocumentNotFound)):
        await file_fetcher.fetch((tree.root / "loop-a").as_uri())


async def test_no_roots_configured_refuses_everything(tree: Tree) -> None:
    """With no allowed roots, every file:// reference is refused."""
    fetcher = Fetcher(FetchSettings(allowed_roots=[]))
    try:
        with pytest.raises(PathOutsideAllowedRoots, match="no allowed roots"):
            await fetcher.fetch((tree.root / "invoice.txt").as_uri())
    finally:
        await fetcher.close()


async def test_relative_file_uri_is_refused(file_fetcher: Fetcher) -> None:
    """A file: URI without an absolute path is refused."""
    with pytest.raises(PathOutsideAllowedRoots):
        await file_fetcher.fetch("file:invoice.txt")


async def test_nul_byte_in_path_is_refused(file_fetcher: Fetcher, tree: Tree) -> None:
    """A percent-encoded NUL cannot truncate the path."""
    with pytest.raises(PathOutsideAllowedRoots):
        await file_fetcher.fetch(f"file://{tree.root}/invoice.txt%00.pdf")


async def test_missing_file_is_not_found(file_fetcher: Fetcher, tree: Tree) -> None:
    """A file that does not exist inside the root is DocumentNotFound."""
    with pytest.raises(DocumentNotFound):
        await file_fetcher.fetch((tree.root / "nope.pdf").as_uri())


async def test_directory_is_not_found(file_fetcher: Fetcher, tree: Tree) -> None:
    """A folder is not a document: DocumentNotFound."""
    with pytest.raises(DocumentNotFound, match="not a regular file"):
        await file_fetcher.fetch((tree.root / "sub").as_uri())


def test_named_pipe_is_refused_without_blocking(tree: Tree) -> None:
    """A FIFO in the root is refused at once; opening it must not block the event loop."""
    fifo = tree.root / "pipe"
    os.mkfifo(fifo)
    fetcher = Fetcher(FetchSettings(allowed_roots=[tree.root]))
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            asyncio.run(fetcher.fetch(fifo.as_uri()))
        except BaseException as error:  # whatever it is, the test thread judges it
            outcome["error"] = error

    # A blocking open() cannot be cancelled from the loop, so the fetch runs in its own thread.
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with fifo.open("wb"):  # a writer releases the blocked reader
            pass
        worker.join()
        pytest.fail("opening a FIFO blocked the event loop")
    assert isinstance(outcome.get("error"), DocumentNotFound), outcome


async def test_file_over_size_limit_is_too_large(tree: Tree) -> None:
    """A file larger than max_document_bytes is DocumentTooLarge; one at the limit is read."""
    (tree.root / "big.bin").write_bytes(b"x" * 1001)
    (tree.root / "fits.bin").write_bytes(b"x" * 1000)
    fetcher = Fetcher(FetchSettings(allowed_roots=[tree.root], max_document_bytes=1000))
    try:
        with pytest.raises(DocumentTooLarge, match="1001"):
            await fetcher.fetch((tree.root / "big.bin").as_uri())
        assert len(await fetcher.fetch((tree.root / "fits.bin").as_uri())) == 1000
    finally:
        await fetcher.close()


async def test_large_file_read_in_thread_is_complete(tree: Tree) -> None:
    """A file above the inline-read size (read in a worker thread) comes back whole."""
    payload = os.urandom(600 * 1024)
    (tree.root / "large.bin").write_bytes(payload)
    fetcher = Fetcher(FetchSettings(allowed_roots=[tree.root]))
    try:
        assert await fetcher.fetch((tree.root / "large.bin").as_uri()) == payload
    finally:
        await fetcher.close()


async def test_file_uri_with_remote_host_is_unsupported(file_fetcher: Fetcher) -> None:
    """file://otherhost/x names another machine: UnsupportedUriScheme."""
    with pytest.raises(UnsupportedUriScheme, match="otherhost"):
        await file_fetcher.fetch("file://otherhost/x")


@pytest.mark.parametrize(
    "uri", ["s3://bucket/key.pdf", "ftp://example.com/a.pdf", "gopher://x/", "/data/a.pdf", "a.pdf"]
)
async def test_unsupported_schemes_are_refused(file_fetcher: Fetcher, uri: str) -> None:
    """s3://, ftp://, other schemes and scheme-less strings are UnsupportedUriScheme."""
    with pytest.raises(UnsupportedUriScheme):
        await file_fetcher.fetch(uri)


async def test_http_is_refused_when_not_allowed(file_fetcher: Fetcher) -> None:
    """Plain http:// is UnsupportedUriScheme unless allow_http is set."""
    with pytest.raises(UnsupportedUriScheme, match="http"):
        await file_fetcher.fetch("http://example.com/a.pdf")
