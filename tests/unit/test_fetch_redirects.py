"""Remote fetches check every hop: an allowed server cannot redirect into a private network."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from consumer.errors import ForbiddenAddress
from consumer.fetch import Fetcher
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
