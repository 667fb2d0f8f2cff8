"""Remote references through the Fetcher: address guards, statuses, size and time limits.

Remote fetches only ever reach servers these tests start on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from consumer.fate.errors import (
    DocumentNotFound,
    DocumentTooLarge,
    FetchFailed,
    FetchUnavailable,
    ForbiddenAddress,
    PermanentError,
    UnsupportedUriScheme,
)
from consumer.fetch.fetcher import Fetcher
from consumer.fetch.remote import MAX_REDIRECTS
from schemas.settings import FetchSettings

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
