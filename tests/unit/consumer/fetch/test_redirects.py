"""Remote fetches: every hop is checked, and lying or trickling servers are cut off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from consumer.fate.errors import DocumentTooLarge, FetchUnavailable, ForbiddenAddress
from consumer.fetch.fetcher import Fetcher
from schemas.settings import FetchSettings


@pytest.fixture
async def redirector() -> AsyncIterator[str]:
    """A server on 127.0.0.1 that serves a document or redirects to where it is told."""

    async def document(_: web.Request) -> web.Response:
        return web.Response(text="Invoice Number: R-1\n")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/doc.txt", document)
    app.router.add_get("/go", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def _fetcher() -> Fetcher:
    # Only this loopback address is allowed, as a private document server would be.
    return Fetcher(FetchSettings(allow_http=True, allowed_networks=["127.0.0.1/32"], fetch_timeout_seconds=5))


async def test_an_allowed_network_is_reachable(redirector: str) -> None:
    """An explicitly allowed private network is fetched from, by address and by name."""
    fetcher = _fetcher()
    try:
        assert await fetcher.fetch(f"{redirector}/doc.txt") == b"Invoice Number: R-1\n"
        port = redirector.rsplit(":", 1)[1]
        assert await fetcher.fetch(f"http://localhost:{port}/doc.txt") == b"Invoice Number: R-1\n"
    finally:
        await fetcher.close()


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x",
        "http://[fd00::1]/x",
        "http://127.0.0.2/x",
    ],
)
async def test_a_redirect_into_a_private_network_is_refused(redirector: str, target: str) -> None:
    """The redirect's target is checked like the first hop: metadata and private addresses fail."""
    fetcher = _fetcher()
    try:
        with pytest.raises(ForbiddenAddress):
            await fetcher.fetch(f"{redirector}/go?to={target}")
    finally:
        await fetcher.close()


def test_a_bad_network_setting_is_refused() -> None:
    """A malformed network in DOCMILL_ALLOWED_NETWORKS is a settings error, not a silent allow."""
    with pytest.raises(ValueError, match="not-a-network"):
        FetchSettings(allowed_networks="10.0.0.0/8,not-a-network")


async def _raw_server(handler: Any) -> tuple[asyncio.base_events.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def test_a_trickling_server_is_cut_off_by_the_total_timeout() -> None:
    """A server that sends a byte now and then (each read within its timeout) is still cut off."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(100):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.1)
        writer.close()

    server, base = await _raw_server(trickle)
    fetcher = Fetcher(
        FetchSettings(allow_http=True, allowed_networks=["127.0.0.1/32"], fetch_timeout_seconds=1)
    )
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(FetchUnavailable, match="timed out"):
            await fetcher.fetch(f"{base}/slow.pdf")
    finally:
        await fetcher.close()
        server.close()
    assert asyncio.get_running_loop().time() - started < 3


async def test_a_server_that_lies_about_its_length_cannot_push_more_than_the_limit() -> None:
    """No Content-Length and an endless body, or a small one and more bytes: never more than the cap."""

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        declared = b"Content-Length: 50\r\n" if b"/small" in request else b""
        writer.write(b"HTTP/1.1 200 OK\r\n" + declared + b"Connection: close\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(64):
                writer.write(b"y" * 65536)
                await writer.drain()
        writer.close()

    server, base = await _raw_server(flood)
    fetcher = Fetcher(
        FetchSettings(allow_http=True, allowed_networks=["127.0.0.1/32"], max_document_bytes=256 * 1024)
    )
    try:
        with pytest.raises(DocumentTooLarge):
            await fetcher.fetch(f"{base}/endless")
        # More bytes than declared after "Connection: close": refused, and the flood is not quoted.
        with pytest.raises(FetchUnavailable) as caught:
            await fetcher.fetch(f"{base}/small")
        assert len(str(caught.value)) < 400
    finally:
        await fetcher.close()
        server.close()
