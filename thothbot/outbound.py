"""Where the bot may send: the guard against server settings that point it at internal services.

Anyone with Manage Server on a server the bot is in writes its destinations and ``ops_webhook``,
so those addresses are refused when they lead anywhere but the public internet: loopback,
private, link-local, CGNAT, multicast, unspecified and reserved ranges, IPv4 addresses dressed
as IPv6, and the cloud metadata services. Names are checked when the settings are saved and
again at every send: the connection goes to an address the guard resolved and checked itself
(its resolver is the connector's), so a name that changes its answer between the two (DNS
rebinding) gets nowhere. TLS and the Host header keep the name.

The operator can open ranges and names with ``THOTH_OUTBOUND_ALLOW`` (a receiver on the same
host, a test's loopback server). Discord webhooks must sit under the Discord API host the bot
is configured with.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from thothbot.config import DEFAULT_DISCORD_API_URL, Config
from thothbot.core.errors import SettingsInvalid
from thothbot.core.settings import GuildSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT = 5.0  # seconds: a save waits this long at most for a name
METADATA = {
    ipaddress.ip_address("169.254.169.254"): "a cloud metadata address",
    ipaddress.ip_address("fd00:ec2::254"): "a cloud metadata address",
}
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Discord answers webhooks under these names as well as discord.com.
DISCORD_ALIASES = ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com")
_WEBHOOK_PATH = re.compile(r"(?:/api(?:/v\d+)?)?/webhooks/\d{1,20}/[A-Za-z0-9_-]{1,200}")


Lookup = Callable[[str, int], Awaitable[list[str]]]


class OutboundRefused(OSError):
    """A destination leads somewhere the bot must not call (an OSError, as aiohttp expects
    from a resolver)."""


def address_problem(address: Address) -> str | None:
    """Why the bot must not connect to this address, or None for a public one."""
    if address in METADATA:
        return METADATA[address]
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            inner = address_problem(mapped)
            return f"an IPv4-mapped form of {inner}" if inner else None
        if address in NAT64:
            inner = address_problem(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
            return f"a NAT64 form of {inner}" if inner else None
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in CGNAT, "a CGNAT address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "an address that is not on the public internet"),
    )
    return next((why for bad, why in checks if bad), None)


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # An IPv6 link-local answer may carry a scope ("fe80::1%eth0"); the address is what counts.
    return list(dict.fromkeys(str(info[4][0]).partition("%")[0] for info in infos))


@dataclass(frozen=True, slots=True)
class Guard:
    """The outbound policy: what may be called, checked at save and at send."""

    allow_networks: tuple[Network, ...] = ()
    allow_hosts: frozenset[str] = frozenset()
    discord_api_url: str = DEFAULT_DISCORD_API_URL
    # The name service, replaceable in tests (a name that answers differently each time).
    lookup: Lookup = field(default=_getaddrinfo, compare=False)

    @classmethod
    def from_config(cls, config: Config) -> Guard:
        return cls.allowing(config.outbound_allow, config.discord_api_url)

    @classmethod
    def allowing(
        cls, allow: Iterable[str], discord_api_url: str = DEFAULT_DISCORD_API_URL
    ) -> Guard:
        """From entries as ``THOTH_OUTBOUND_ALLOW`` lists them: CIDR ranges, addresses and host
        names (``Config`` has checked their form)."""
        networks: list[Network] = []
        hosts: set[str] = set()
        for entry in allow:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts), discord_api_url)

    # The checks

    def allowed(self, host: str, address: Address) -> bool:
        return host.lower().rstrip(".") in self.allow_hosts or any(
            address in network for network in self.allow_networks
        )

    def problem(self, host: str, address: Address) -> str | None:
        """Why ``host`` must not be reached at ``address``, or None."""
        if self.allowed(host, address):
            return None
        why = address_problem(address)
        if why is None:
            return None
        shown = str(address) if host == str(address) else f"{host} ({address})"
        return f"{shown} is {why}; the operator can allow it with THOTH_OUTBOUND_ALLOW"

    def discord_webhook_problem(self, url: str) -> str | None:
        """Why ``url`` is not a Discord webhook URL under the configured Discord API host."""
        parts, api = urlsplit(url), urlsplit(self.discord_api_url)
        host = (parts.hostname or "").lower()
        api_host = (api.hostname or "").lower()
        hosts = DISCORD_ALIASES if api_host in DISCORD_ALIASES else (api_host,)
        same_place = (
            parts.scheme == api.scheme
            and host in hosts
            and (parts.port == api.port or (api_host in DISCORD_ALIASES and parts.port is None))
        )
        if not same_place or not _WEBHOOK_PATH.fullmatch(parts.path) or parts.fragment:
            return (
                f"must be a Discord webhook URL ({api.scheme}://{api.netloc}/api/webhooks/ID/TOKEN,"
                " as Discord's Copy Webhook URL gives)"
            )
        return None

    async def resolve(self, host: str, port: int) -> list[ResolveResult]:
        """Every address of ``host``, each checked; raises ``OutboundRefused`` if any is bad."""
        try:
            literal: Address | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            found = [_result(host, str(literal), port)]
        else:
            found = [_result(host, address, port) for address in await self.lookup(host, port)]
        if not found:
            raise OutboundRefused(f"{host} has no address")
        for result in found:
            why = self.problem(host, ipaddress.ip_address(result["host"]))
            if why is not None:
                # Every address, not only the first: the connector may try any of them.
                raise OutboundRefused(why)
        return found

    async def url_problem(self, url: str) -> str | None:
        """Why a destination URL must not be called (resolving its name now), or None."""
        host = urlsplit(url).hostname
        if host is None:
            return "has no host"
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                await self.resolve(host, urlsplit(url).port or 443)
        except OutboundRefused as refused:
            return str(refused)
        except (OSError, TimeoutError):
            return f"names the host {host}, which could not be found"
        return None

    async def check_settings(self, settings: GuildSettings) -> None:
        """Refuse settings whose ``ops_webhook`` or destinations the bot must not call, naming
        each place (raises ``SettingsInvalid``)."""
        places: list[tuple[str, str, bool]] = []
        if settings.ops_webhook is not None:
            places.append(("ops_webhook", settings.ops_webhook, True))
        for n, destination in enumerate(settings.destinations):
            discord = destination.kind == "discord_webhook"
            places.append((f"destinations[{n}].url", destination.url, discord))
        problems: list[tuple[str, str]] = []
        for path, url, discord in places:
            why = self.discord_webhook_problem(url) if discord else None
            if why is None:
                why = await self.url_problem(url)
            if why is not None:
                problems.append((path, f"{why}."))
        if problems:
            raise SettingsInvalid(problems)

    # Sending

    def literal_problem(self, url: str) -> str | None:
        """Why a URL naming an address directly must not be called (aiohttp connects to such
        addresses without asking the resolver, so they are checked here, before each send)."""
        host = urlsplit(url).hostname or ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        return self.problem(host, address)

    def session(self, timeout: float) -> aiohttp.ClientSession:
        """An HTTP session that connects only where this guard allows, following no redirect
        on its own (the caller passes ``allow_redirects=False``) and ignoring proxy settings."""
        connector = aiohttp.TCPConnector(resolver=_GuardedResolver(self), use_dns_cache=False)
        return aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False
        )


class _GuardedResolver(AbstractResolver):
    """The connector's resolver: what it returns is what was checked, and where it connects."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return await self.guard.resolve(host, port)

    async def close(self) -> None:
        return None


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(
        hostname=host, host=address, port=port, family=family, proto=0, flags=socket.AI_NUMERICHOST
    )
