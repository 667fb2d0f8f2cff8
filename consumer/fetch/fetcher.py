"""Reads the bytes a DocumentRef points at, by URI scheme, refusing anything it should not touch."""

from __future__ import annotations

from consumer.fate.errors import UnsupportedUriScheme
from consumer.fetch.addresses import parse_networks
from consumer.fetch.files import FileReader
from consumer.fetch.remote import RemoteReader
from schemas.settings import FetchSettings


class Fetcher:
    """Fetches document bytes for file://, https:// and (when allowed) http:// URIs."""

    def __init__(self, settings: FetchSettings) -> None:
        self._allow_http = settings.allow_http
        self._files = FileReader(settings.allowed_roots, settings.max_document_bytes)
        self._remote = RemoteReader(
            max_bytes=settings.max_document_bytes,
            timeout_seconds=settings.fetch_timeout_seconds,
            allow_private=settings.allow_private_addresses,
            allowed_networks=parse_networks(settings.allowed_networks),
        )

    async def close(self) -> None:
        await self._remote.close()

    async def fetch(self, uri: str) -> bytes:
        data, _ = await self.fetch_declared(uri)
        return data

    async def fetch_declared(self, uri: str) -> tuple[bytes, str | None]:
        """The bytes, and the type the server declared for them (None for files)."""
        scheme = uri.partition(":")[0].lower() if ":" in uri else ""
        if scheme == "file":
            return await self._files.read(uri), None
        if scheme == "https" or (scheme == "http" and self._allow_http):
            return await self._remote.read(uri)
        if scheme == "http":
            raise UnsupportedUriScheme("http:// references are disabled (set DOCMILL_ALLOW_HTTP)")
        raise UnsupportedUriScheme(f"URI scheme {scheme or '(none)'!r} is not supported")
