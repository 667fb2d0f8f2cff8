"""Unit tests of consumer.fetch.Fetcher: file:// confinement and guarded http(s):// fetching.

Remote fetches only ever reach servers these tests start on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from consumer.errors import (
    DocumentNotFound,
    DocumentTooLarge,
    FetchFailed,
    FetchUnavailable,
    ForbiddenAddress,
    PathOutsideAllowedRoots,
    PermanentError,
    UnsupportedUriScheme,
)
from consumer.fetch import MAX_REDIRECTS, Fetcher
from schemas.settings import FetchSettings

# --- file:// -------------------------------------------------------------------


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


# --- remote: address guard ----------------------------------------------------------


@dataclass
class ConnectionCounter:
    """A raw TCP listener on 127.0.0.1 that counts connections and answers nothing."""

    port: int
    accepted: int = 0
    seen: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def settle(self) -> int:
        """Connects once itself and waits for that connection, so earlier ones were counted too."""
        target = self.accepted + 1
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        async with self.seen:
            await self.seen.wait_for(lambda: self.accepted >= target)
        writer.close()
        await writer.wait_closed()
        return self.accepted - 1  # not counting the probe itself


@pytest.fixture
async def counter() -> AsyncIterator[ConnectionCounter]:
    state = ConnectionCounter(port=0)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with state.seen:
            state.accepted += 1
            state.seen.notify_all()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    yield state
    server.close()
    await server.wait_closed()


@pytest.fixture
async def guarded() -> AsyncIterator[Fetcher]:
    """A fetcher with http allowed but private addresses forbidden (the production default)."""
    fetcher = Fetcher(FetchSettings(allow_http=True, allow_private_addresses=False))
    yield fetcher
    await fetcher.close()


@pytest.mark.parametrize(
    "template",
    [
        "https://127.0.0.1:{port}/x",
        "http://127.0.0.1:{port}/x",
        "http://[::ffff:127.0.0.1]:{port}/x",
        "http://localhost:{port}/x",
        "http://0.0.0.0:{port}/x",
    ],
    ids=["https-literal", "http-literal", "v4-mapped-v6", "localhost-name", "any"],
)
async def test_loopback_targets_are_forbidden_without_connecting(
    guarded: Fetcher, counter: ConnectionCounter, template: str
) -> None:
    """Loopback targets, by literal, mapped, decimal or name, are ForbiddenAddress and never connected."""
    with pytest.raises(ForbiddenAddress):
        await guarded.fetch(template.format(port=counter.port))
    assert await counter.settle() == 0


async def test_decimal_ip_host_is_refused_permanently_without_connecting(
    guarded: Fetcher, counter: ConnectionCounter
) -> None:
    """A decimal-integer host (2130706433 = 127.0.0.1) fails permanently and never connects."""
    with pytest.raises(PermanentError) as caught:
        await guarded.fetch(f"http://2130706433:{counter.port}/x")
    assert isinstance(caught.value, ForbiddenAddress | FetchFailed)
    assert await counter.settle() == 0


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1:1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/",
        "https://10.0.0.1/a.pdf",
        "https://192.168.1.1/a.pdf",
        "https://[::1]/a.pdf",
        "https://[fe80::1%25eth0]/a.pdf",
    ],
)
async def test_private_and_metadata_literals_are_forbidden(guarded: Fetcher, uri: str) -> None:
    """Private, link-local, metadata and loopback literals are refused by the literal check."""
    with pytest.raises(ForbiddenAddress):
        await asyncio.wait_for(guarded.fetch(uri), timeout=10)


# --- remote: against a local server -------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class LocalServer:
    base: str
    routes: dict[str, Handler]


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    routes: dict[str, Handler] = {}

    async def dispatch(request: web.Request) -> web.StreamResponse:
        handler = routes.get(request.path)
        if handler is None:
            raise web.HTTPNotFound()
        return await handler(request)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield LocalServer(base=f"http://{host}:{port}", routes=routes)
    await runner.cleanup()


def _remote(max_bytes: int = 32 * 1024 * 1024, timeout: float = 30.0) -> Fetcher:
    return Fetcher(
        FetchSettings(
            allow_http=True,
            allow_private_addresses=True,
            max_document_bytes=max_bytes,
            fetch_timeout_seconds=timeout,
        )
    )


@pytest.fixture
async def remote() -> AsyncIterator[Fetcher]:
    fetcher = _remote()
    yield fetcher
    await fetcher.close()


async def test_remote_200_returns_body(remote: Fetcher, server: LocalServer) -> None:
    """A 200 answer's body is returned byte for byte."""
    payload = os.urandom(200_000)

    async def ok(_: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/pdf")

    server.routes["/doc.pdf"] = ok
    assert await remote.fetch(f"{server.base}/doc.pdf") == payload


@pytest.mark.parametrize("status", [404, 410])
async def test_remote_404_is_not_found(remote: Fetcher, server: LocalServer, status: int) -> None:
    """404 and 410 are DocumentNotFound (permanent)."""

    async def gone(_: web.Request) -> web.Response:
        return web.Response(status=status)

    server.routes["/gone"] = gone
    with pytest.raises(DocumentNotFound, match=str(status)):
        await remote.fetch(f"{server.base}/gone")


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_remote_server_errors_are_unavailable(
    remote: Fetcher, server: LocalServer, status: int
) -> None:
    """5xx, 429 and 408 are FetchUnavailable, which is retryable."""

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=status)

    server.routes["/broken"] = broken
    with pytest.raises(FetchUnavailable, match=str(status)) as caught:
        await remote.fetch(f"{server.base}/broken")
    assert caught.value.retryable


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_remote_client_errors_fail_permanently(
    remote: Fetcher, server: LocalServer, status: int
) -> None:
    """Other 4xx answers are FetchFailed, which is not retryable."""

    async def refused(_: web.Request) -> web.Response:
        return web.Response(status=status)

    server.routes["/refused"] = refused
    with pytest.raises(FetchFailed) as caught:
        await remote.fetch(f"{server.base}/refused")
    assert not caught.value.retryable


async def test_remote_declared_length_over_limit_is_too_large(server: LocalServer) -> None:
    """A Content-Length over the limit is refused as DocumentTooLarge."""

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    server.routes["/big"] = big
    fetcher = _remote(max_bytes=1000)
    try:
        with pytest.raises(DocumentTooLarge, match="5000"):
            await fetcher.fetch(f"{server.base}/big")
    finally:
        await fetcher.close()


async def test_remote_chunked_body_over_limit_is_too_large(server: LocalServer) -> None:
    """A chunked body with no Content-Length is cut off once it passes the limit."""
    sent = {"bytes": 0}

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(64):
                await response.write(b"y" * 4096)
                sent["bytes"] += 4096
            await response.write_eof()
        except (ConnectionResetError, OSError):
            pass
        return response

    server.routes["/stream"] = stream
    fetcher = _remote(max_bytes=10_000)
    try:
        with pytest.raises(DocumentTooLarge, match="more than 10000"):
            await fetcher.fetch(f"{server.base}/stream")
    finally:
        await fetcher.close()


async def test_remote_chunked_body_within_limit_is_returned(remote: Fetcher, server: LocalServer) -> None:
    """A chunked body under the limit is reassembled completely."""

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for index in range(10):
            await response.write(bytes([65 + index]) * 1000)
        await response.write_eof()
        return response

    server.routes["/stream"] = stream
    body = await remote.fetch(f"{server.base}/stream")
    assert body == b"".join(bytes([65 + i]) * 1000 for i in range(10))


def _redirect_chain(server: LocalServer, hops: int) -> str:
    """Registers /r0 -> /r1 -> ... -> /r{hops} (which answers 200) and returns the first URL."""

    def make(index: int) -> Handler:
        async def hop(_: web.Request) -> web.Response:
            if index == hops:
                return web.Response(body=b"arrived")
            return web.Response(status=302, headers={"Location": f"/r{index + 1}"})

        return hop

    for index in range(hops + 1):
        server.routes[f"/r{index}"] = make(index)
    return f"{server.base}/r0"


async def test_redirects_up_to_the_limit_are_followed(remote: Fetcher, server: LocalServer) -> None:
    """A chain of exactly MAX_REDIRECTS redirects (relative Locations) reaches the document."""
    assert await remote.fetch(_redirect_chain(server, MAX_REDIRECTS)) == b"arrived"


async def test_redirect_chain_longer_than_limit_fails(remote: Fetcher, server: LocalServer) -> None:
    """A chain of 6 redirects is FetchFailed, not followed forever."""
    with pytest.raises(FetchFailed, match="redirects"):
        await remote.fetch(_redirect_chain(server, MAX_REDIRECTS + 1))


async def test_redirect_loop_fails(remote: Fetcher, server: LocalServer) -> None:
    """A redirect to itself ends as FetchFailed."""

    async def loop(_: web.Request) -> web.Response:
        return web.Response(status=301, headers={"Location": "/loop"})

    server.routes["/loop"] = loop
    with pytest.raises(FetchFailed):
        await remote.fetch(f"{server.base}/loop")


async def test_redirect_to_file_uri_is_refused(remote: Fetcher, server: LocalServer, tmp_path: Path) -> None:
    """A redirect to file:// cannot turn a remote reference into a local read."""
    (tmp_path / "local.txt").write_bytes(b"local")

    async def sneaky(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": (tmp_path / "local.txt").as_uri()})

    server.routes["/sneaky"] = sneaky
    with pytest.raises(UnsupportedUriScheme):
        await remote.fetch(f"{server.base}/sneaky")


async def test_redirect_without_location_fails(remote: Fetcher, server: LocalServer) -> None:
    """A redirect status without a Location header is FetchFailed."""

    async def bare(_: web.Request) -> web.Response:
        return web.Response(status=302)

    server.routes["/bare"] = bare
    with pytest.raises(FetchFailed, match="Location"):
        await remote.fetch(f"{server.base}/bare")


async def test_remote_timeout_is_unavailable(server: LocalServer) -> None:
    """A server that never answers within fetch_timeout_seconds is FetchUnavailable (retryable)."""
    release = asyncio.Event()

    async def stall(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=b"late")

    server.routes["/stall"] = stall
    fetcher = _remote(timeout=0.3)
    try:
        with pytest.raises(FetchUnavailable, match="timed out"):
            await fetcher.fetch(f"{server.base}/stall")
    finally:
        release.set()
        await fetcher.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connection_refused_is_unavailable(remote: Fetcher) -> None:
    """A port nobody listens on is FetchUnavailable (retryable), not an OSError."""
    with pytest.raises(FetchUnavailable):
        await remote.fetch(f"http://127.0.0.1:{_closed_port()}/x")
