"""Addresses the collector never sends to on a user's say-so: link-local, unspecified and multicast
(169.254.169.254 is a cloud's metadata service). Continuous export (exporters/settings.py) and
alerting (webhooks, SMTP, availability probes) both check a target here, literally when it is
configured and once more, resolved, when it is used.
"""

from __future__ import annotations

import ipaddress
import socket


def forbidden_address(host: str) -> str | None:
    """Why `host` (a literal address, in any form a resolver accepts) may not be sent to, or None."""
    address = _literal_address(host.strip("[]"))
    return _forbidden(address, host) if address is not None else None


def forbidden_resolved(host: str, port: int | None) -> str | None:
    """As forbidden_address, for every address `host` resolves to now (None if it resolves to none)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # the sink's own connection attempt will say so
    for info in infos:
        reason = _forbidden(ipaddress.ip_address(str(info[4][0]).split("%")[0]), host)
        if reason:
            return reason
    return None


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    try:  # the forms inet_aton takes and resolvers honour: 2852039166, 0xa9fea9fe, 169.254.43518
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        return (f"{host} is a link-local, unspecified or multicast address ({address}), where a cloud's metadata "
                "service answers: nothing is sent there")
    return None
