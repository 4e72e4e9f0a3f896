# -*- test-case-name: tests.test_protocol -*-
"""
Peer and listening addresses, as Twisted objects and as operators write
them (C{127.0.0.1:4433}, C{[::1]:4433}, C{unix:/run/tlsreply.sock}).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress

from tlsreply.connection.peertext import escapeText


def formatAddress(address: IAddress) -> str:
    """
    Render a peer or listening address the way operators write them:
    C{127.0.0.1:4433}, C{[::1]:4433}, C{unix:/run/tlsreply.sock}; a Unix
    peer, which has no name, is C{unix:(unnamed peer)}. A Unix path is any
    bytes its peer chose (or a PROXY header named): bytes that are not
    UTF-8, and characters that are not printable, are escaped (C{\\xff},
    C{\\x0a}).
    """
    if isinstance(address, (IPv4Address, IPv6Address)):
        host, port = address.host, address.port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(address, UNIXAddress):
        name = address.name
        if not name:
            return "unix:(unnamed peer)"
        path = name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else name
        return f"unix:{escapeText(path)}"
    other: Any = address
    if getattr(other, "host", None) is not None and getattr(other, "port", None) is not None:
        text = f"{other.host}"
        return f"[{text}]:{other.port}" if ":" in text else f"{text}:{other.port}"
    return str(address)


def _numericHost(family: int, address: Any) -> str:
    """
    The host of an IPv6 peer with its scope (C{fe80::1%eth0}), as Twisted
    writes it; other hosts as they are.
    """
    if family == socket.AF_INET6 and address[3]:
        return socket.getnameinfo(address, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)[0]
    return str(address[0])


def peerAddress(family: int, address: Any) -> IAddress:
    """
    The Twisted address of a peer, from what C{accept} returned.
    """
    if family == socket.AF_INET:
        return IPv4Address("TCP", address[0], address[1])
    if family == socket.AF_INET6:
        return IPv6Address("TCP", _numericHost(family, address), address[1])
    return UNIXAddress(address or None)


def formatPeer(family: int, address: Any) -> str:
    """
    What L{formatAddress} gives for a peer, straight from what C{accept}
    returned (without making the address object).
    """
    if family == socket.AF_INET:
        return f"{address[0]}:{address[1]}"
    if family == socket.AF_INET6:
        return f"[{_numericHost(family, address)}]:{address[1]}"
    return formatAddress(UNIXAddress(address or None))


_BARE_IPV6_INTERFACE = re.compile(
    r"(?<=interface=)((?:[0-9A-Fa-f]*:)+[0-9A-Fa-f.]*)(?=$|:[A-Za-z]+=)"
)


def escapeIPv6Interface(description: str) -> str:
    """
    Accept C{tcp:4433:interface=::} as people write it: Twisted's syntax
    wants the address's colons escaped (C{interface=\\:\\:}).
    """

    def escape(match: re.Match[str]) -> str:
        address = match.group(1)
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            return address
        return address.replace(":", "\\:")

    return _BARE_IPV6_INTERFACE.sub(escape, description)
