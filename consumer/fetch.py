"""Reads the bytes a DocumentRef points at, refusing anything it should not touch.

``file://`` references are confined to the configured roots after resolving
every symlink; remote references are refused when they resolve to private,
loopback, link-local or metadata addresses (checked on the address actually
connected to, and again on every redirect), and are cut off when too large
or too slow.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import stat
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from consumer.errors import (
    DocumentNotFound,
    DocumentTooLarge,
    FetchFailed,
    FetchUnavailable,
    ForbiddenAddress,
    PathOutsideAllowedRoots,
    UnsupportedUriScheme,
)
from schemas.settings import FetchSettings

MAX_REDIRECTS = 5
# Small files are read inline; a thread hop costs more than the read itself.
_INLINE_READ_BYTES = 256 * 1024


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def _is_forbidden(address: str, allowed: Networks = ()) -> bool:
    """Private, loopback, link-local (metadata), reserved or multicast, and not explicitly allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return False
    return not ip.is_global or ip.is_multicast


class _GuardedResolver(AbstractResolver):
    """Resolves names, then refuses private and metadata targets.

    The connection is made to exactly the addresses returned here, so a DNS
    answer that changes between a check and the connect cannot slip through.
    """

    def __init__(self, allowed: Networks) -> None:
        self._inner = ThreadedResolver()
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if not _is_forbidden(r["host"], self._allowed)]
        if not allowed:
            raise ForbiddenAddress(f"{host} resolves only to private or reserved addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _raise_for_status(url: str, status: int) -> None:
    if status in (404, 410):
        raise DocumentNotFound(f"{url} answered {status}")
    if status >= 500 or status in (408, 429):
        raise FetchUnavailable(f"{url} answered {status}")
    if status >= 400:
        raise FetchFailed(f"{url} answered {status}")


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


class Fetcher:
    """Fetches document bytes for file://, https:// and (when allowed) http:// URIs."""

    def __init__(self, settings: FetchSettings) -> None:
        self._settings = settings
        # Resolved once, as strings ending in a separator: the per-record check is a prefix test.
        self._roots = tuple(os.path.join(os.path.realpath(root), "") for root in settings.allowed_roots)
        self._session: aiohttp.ClientSession | None = None
        self._allowed: Networks = tuple(
            ipaddress.ip_network(network, strict=False) for network in settings.allowed_networks
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch(self, uri: str) -> bytes:
        data, _ = await self.fetch_declared(uri)
        return data

    async def fetch_declared(self, uri: str) -> tuple[bytes, str | None]:
        """The bytes, and the type the server declared for them (None for files)."""
        scheme = urlsplit(uri).scheme.lower()
        if scheme == "file":
            return await self._fetch_file(uri), None
        if scheme == "https" or (scheme == "http" and self._settings.allow_http):
            return await self._fetch_remote(uri)
        if scheme == "http":
            raise UnsupportedUriScheme("http:// references are disabled (set DOCMILL_ALLOW_HTTP)")
        raise UnsupportedUriScheme(f"URI scheme {scheme or '(none)'!r} is not supported")

    # --- file:// ----------------------------------------------------------------

    def _confined_path(self, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedUriScheme(f"file:// URI names a remote host {parts.netloc!r}")
        raw = unquote(parts.path)
        if "\x00" in raw or not raw.startswith("/"):
            raise PathOutsideAllowedRoots("file:// path is not an absolute local path")
        if not self._roots:
            raise PathOutsideAllowedRoots("no allowed roots are configured (DOCMILL_ALLOWED_ROOTS)")
        # resolve() follows every symlink and removes "..", so the check below
        # sees the file that would really be opened.
        try:
            resolved = os.path.realpath(raw, strict=False)
        except (RuntimeError, OSError) as error:
            raise DocumentNotFound(f"{raw} cannot be resolved: {error}") from None
        if not resolved.startswith(self._roots):
            raise PathOutsideAllowedRoots(f"{raw} is outside the allowed roots")
        return resolved

    async def _fetch_file(self, uri: str) -> bytes:
        path = self._confined_path(uri)
        try:
            # O_NOFOLLOW: a symlink swapped in after the check is refused, not followed.
            # O_NONBLOCK: opening a FIFO would otherwise block the event loop until a
            # writer appears; regular files ignore the flag.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise DocumentNotFound(f"{path} does not exist") from None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise PathOutsideAllowedRoots(f"{path} became a symlink") from None
            raise DocumentNotFound(f"{path} cannot be opened: {error.strerror}") from None
        # Checked on the raw descriptor: fdopen() itself raises IsADirectoryError for folders.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise DocumentNotFound(f"{path} is not a regular file")
        limit = self._settings.max_document_bytes
        with os.fdopen(fd, "rb") as handle:
            if info.st_size > limit:
                raise DocumentTooLarge(f"{path} is {info.st_size} bytes; the limit is {limit}")
            # One byte more than the size seen: a file that grew since is noticed below.
            want = info.st_size + 1
            if info.st_size <= _INLINE_READ_BYTES:
                data = handle.read(want)
            else:
                data = await asyncio.to_thread(handle.read, want)
            if len(data) > info.st_size:  # it grew while being read: take the rest, within the limit
                data += handle.read(limit + 1 - len(data))
                if len(data) > limit:
                    raise DocumentTooLarge(f"{path} grew past the limit of {limit} bytes while read")
            return data

    # --- https:// -----------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector: Any = aiohttp.TCPConnector(
                resolver=None if self._settings.allow_private_addresses else _GuardedResolver(self._allowed),
                limit=64,
            )
            timeout = aiohttp.ClientTimeout(
                total=self._settings.fetch_timeout_seconds, sock_connect=10, sock_read=10
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    def _check_literal_host(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if not self._settings.allow_private_addresses and _is_forbidden(host, self._allowed):
            raise ForbiddenAddress(f"{host} is a private or reserved address")

    async def _fetch_remote(self, uri: str) -> tuple[bytes, str | None]:
        url = uri
        limit = self._settings.max_document_bytes
        try:
            for _ in range(MAX_REDIRECTS + 1):
                self._check_literal_host(url)
                async with self._client().get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location:
                            raise FetchFailed(f"redirect without Location from {url}")
                        url = urljoin(url, location)
                        if urlsplit(url).scheme not in ("https", "http"):
                            raise UnsupportedUriScheme(f"redirect to unsupported URI {url}")
                        continue
                    _raise_for_status(url, response.status)
                    return await _read_capped(url, response, limit), response.headers.get("Content-Type")
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
