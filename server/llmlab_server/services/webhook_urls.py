"""Webhook URL screening against server-side request forgery.

A URL whose host resolves to a loopback, private, link-local, multicast, reserved or
unspecified address is refused when the webhook is created *and* at every delivery (the name
may have been re-pointed since: DNS rebinding), and the request is sent to the very address
that was checked (`Target.address`), so a second resolution cannot swap it.
``WEBHOOK_ALLOW_PRIVATE`` (True, or a comma-separated list of CIDRs) lifts the screen.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llmlab._env import parse_bool

__all__ = ["Target", "UnsafeURL", "check_url"]


class UnsafeURL(ValueError):
    """The URL is malformed, does not resolve, or resolves to an internal address."""


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed_networks(setting: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | bool:
    if setting is True or setting is False or setting is None:
        return bool(setting)
    if isinstance(setting, str):
        if not setting.strip():
            return False
        switch = parse_bool(setting)  # the spellings every on/off setting takes
        if switch is not None:
            return switch
        setting = [s for s in setting.split(",") if s.strip()]
    return [ipaddress.ip_network(str(s).strip(), strict=False) for s in setting]


def _internal(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: screen it too. (6to4,
        # 2002::/16, counts as global to Python 3.11 whatever IPv4 address it embeds.)
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and _internal(embedded):
            return True
        if ip.ipv4_mapped is not None:
            return False  # the mapped address is all there is to it
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


@dataclass(frozen=True, slots=True)
class Target:
    """A screened URL: where to connect (``address``) and what to say (host, path)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def check_url(url: str, allow_private: Any = False) -> Target:
    """Screen ``url``; raise `UnsafeURL` unless every address it resolves to is allowed."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # "http://[::1/": an unclosed IPv6 bracket (once a 500)
        raise UnsafeURL("the URL is malformed") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise UnsafeURL("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise UnsafeURL("the URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("the URL's port is invalid") from None
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeURL(f"the host {hostname!r} does not resolve") from None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    if not addresses:
        raise UnsafeURL(f"the host {hostname!r} does not resolve")
    allowed = _allowed_networks(allow_private)
    for ip in addresses:
        if not _internal(ip) or allowed is True:
            continue
        if isinstance(allowed, list) and any(ip in net for net in allowed):
            continue
        raise UnsafeURL(f"the host {hostname!r} resolves to the internal address {ip}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, hostname, port, path, str(addresses[0]))

