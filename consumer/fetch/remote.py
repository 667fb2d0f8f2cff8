"""Reads https:// (and, when allowed, http://) documents with size, time and address guards.

Every hop of a redirect chain is checked again; bodies are cut off as soon
as they pass the size limit, whatever Content-Length claimed; connect, read
and total timeouts stop servers that trickle.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from consumer.fate.errors import (
    DocumentTooLarge,
    FetchFailed,
    FetchUnavailable,
    ForbiddenAddress,
    UnsupportedUriScheme,
)
from consumer.fate.table import fetch_status_error
from consumer.fetch.addresses import GuardedResolver, Networks, is_forbidden

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def _read_capped(url: str, response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, cut off as soon as it passes the limit (whatever Content-Length claimed)."""
    if (response.content_length or 0) > limit:
        raise DocumentTooLarge(f"{url} declares {response.content_length} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(65536):
        body += chunk
        if len(body) > limit:
            raise DocumentTooLarge(f"{url} sent more than {limit} bytes")
    return bytes(body)


class RemoteReader:
    """Fetches remote documents through one pooled HTTP session, created on first use."""

    def __init__(
        self, *, max_bytes: int, timeout_seconds: float, allow_private: bool, allowed_networks: Networks
    ) -> None:
        self._max_bytes = max_bytes
        self._timeout_seconds = timeout_seconds
        self._allow_private = allow_private
        self._allowed = allowed_networks
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def read(self, uri: str) -> tuple[bytes, str | None]:
        """The body and the Content-Type the server declared for it."""
        url = uri
        try:
            for _ in range(MAX_REDIRECTS + 1):
                self._check_literal_host(url)
                async with self._client().get(url, allow_redirects=False) as response:
                    if response.status in _REDIRECTS:
                        url = self._next_hop(url, response.headers.get("Location"))
                        continue
                    failure = fetch_status_error(url, response.status)
                    if failure is not None:
                        raise failure
                    return await _read_capped(url, response, self._max_bytes), response.headers.get(
                        "Content-Type"
                    )
            raise FetchFailed(f"more than {MAX_REDIRECTS} redirects from {uri}")
        except TimeoutError:
            raise FetchUnavailable(f"{url} timed out") from None
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, ForbiddenAddress):
                raise error.os_error from None
            raise FetchUnavailable(f"{url} cannot be reached: {error}") from None
        except aiohttp.InvalidURL as error:
            # A malformed URL (e.g. a non-canonical IPv4 host) fails the same way every time.
            raise FetchFailed(f"{url} is not a valid URL: {error}") from None
        except aiohttp.ClientError as error:
            # A hostile server's bytes can end up in the error's text: keep only its start.
            raise FetchUnavailable(f"{url} failed: {str(error)[:200]}") from None

    @staticmethod
    def _next_hop(url: str, location: str | None) -> str:
        if not location:
            raise FetchFailed(f"redirect without Location from {url}")
        target = urljoin(url, location)
        if urlsplit(target).scheme not in ("https", "http"):
            raise UnsupportedUriScheme(f"redirect to unsupported URI {target}")
        return target

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector: Any = aiohttp.TCPConnector(
                resolver=None if self._allow_private else GuardedResolver(self._allowed), limit=64
            )
            timeout = aiohttp.ClientTimeout(total=self._timeout_seconds, sock_connect=10, sock_read=10)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    def _check_literal_host(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if not self._allow_private and is_forbidden(host, self._allowed):
            raise ForbiddenAddress(f"{host} is a private or reserved address")
