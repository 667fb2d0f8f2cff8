"""Which network addresses remote fetches may reach: never private, loopback or metadata ones."""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from consumer.fate.errors import ForbiddenAddress

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_networks(networks: list[str]) -> Networks:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def is_forbidden(address: str, allowed: Networks = ()) -> bool:
    """Private, loopback, link-local (metadata), reserved or multicast, and not explicitly allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return False
    return not ip.is_global or ip.is_multicast


class GuardedResolver(AbstractResolver):
    """Resolves names, then refuses private and metadata targets.

    The connection is made to exactly the addresses returned here, so a DNS
    answer that changes between a check and the connect (rebinding) cannot
    slip through.
    """

    def __init__(self, allowed: Networks) -> None:
        self._inner = ThreadedResolver()
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if not is_forbidden(r["host"], self._allowed)]
        if not allowed:
            raise ForbiddenAddress(f"{host} resolves only to private or reserved addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
