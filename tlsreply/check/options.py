# -*- test-case-name: tests.test_check -*-
"""
What C{tlsreply check} is asked to do: its command line, parsed.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

import idna

#: Seconds allowed, by default, for each step of a connection: the TCP
#: connect, the TLS handshake, and the wait for the reply and the close.
DEFAULT_TIMEOUT: Final = 10.0

#: Exit statuses.
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

#: The synopsis at the top of C{--help}.
USAGE: Final = (
    "tlsreply check HOST:PORT [--ca FILE] [--servername NAME] [--alpn LIST]\n"
    "                      [--json] [--timeout SECONDS]"
)

class CheckUsageError(Exception):
    """
    The command line cannot be used: a bad argument, or a C{--ca} file that
    cannot be read. The message is one line, for the person who typed it.
    """


@dataclass(frozen=True)
class Target:
    """
    Where to connect, as the user wrote it.

    @ivar host: a host name, or an IP address without brackets.
    @ivar port: the TCP port.
    @ivar address: the parsed IP address if C{host} is one, else L{None};
        an address gets no SNI by default (RFC 6066 allows only names
        there) and is checked against the certificate's IP addresses.
    """

    host: str
    port: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None

    def __str__(self) -> str:
        if isinstance(self.address, ipaddress.IPv6Address):
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parseTarget(text: str) -> Target:
    """
    Parse C{HOST:PORT}, where HOST is a name, an IPv4 address, or an IPv6
    address in brackets (C{[::1]:443}); the brackets are what keeps the
    port apart from an IPv6 address's own colons.

    @raise CheckUsageError: naming what is wrong with C{text}.
    """
    if text.startswith("["):
        close = text.find("]")
        if close == -1 or text[close + 1 : close + 2] != ":":
            raise CheckUsageError(
                f"expected [IPv6]:PORT, got {text!r} (e.g. [::1]:443)"
            )
        host, portText = text[1:close], text[close + 2 :]
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = (
                ipaddress.IPv6Address(host)
            )
        except ValueError:
            raise CheckUsageError(
                f"not an IPv6 address in brackets: {host!r}"
            ) from None
    else:
        host, colon, portText = text.rpartition(":")
        if not colon:
            raise CheckUsageError(f"expected HOST:PORT, got {text!r}")
        if ":" in host:
            raise CheckUsageError(
                f"put an IPv6 address in brackets: [{host}]:{portText}"
            )
        if not host:
            raise CheckUsageError(f"no host in {text!r}")
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            address = None
            encodeHostName(host)
    if not (portText.isascii() and portText.isdigit()) or not 0 < int(portText) < 65536:
        raise CheckUsageError(f"bad port {portText!r}: expected 1 to 65535")
    return Target(host, int(portText), address)


def encodeHostName(name: str) -> bytes:
    """
    The host name as it goes into SNI: ASCII, internationalized names in
    their IDNA (punycode) form.

    @raise CheckUsageError: if C{name} is not a host name.
    """
    try:
        if name.isascii():
            encoded = name.encode("ascii")
            labels = encoded.rstrip(b".").split(b".")
            if not all(
                label and all(c in _NAME_CHARACTERS for c in label)
                for label in labels
            ):
                raise ValueError(name)
            return encoded
        return idna.encode(name, uts46=True)
    except (ValueError, idna.IDNAError):
        raise CheckUsageError(f"not a host name: {name!r}") from None


_NAME_CHARACTERS: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
)


@dataclass(frozen=True)
class CheckOptions:
    """
    What the command line asked for.

    @ivar target: where to connect.
    @ivar caPath: trust only these PEM CAs; L{None} for the system store.
    @ivar serverName: the name sent as SNI and checked against the
        certificate; L{None} for none (the target is an IP address).
    @ivar alpnProtocols: ALPN protocols to offer, none by default (offering
        protocols a server does not speak can make it refuse the handshake).
    @ivar json: print the facts as one JSON object.
    @ivar timeout: seconds for each step of a connection.
    """

    target: Target
    caPath: Path | None = None
    serverName: str | None = None
    alpnProtocols: tuple[str, ...] = ()
    json: bool = False
    timeout: float = DEFAULT_TIMEOUT


class _ArgumentParser(argparse.ArgumentParser):
    """
    An argument parser that raises instead of printing and exiting, so that
    L{runCheck} writes every error as one line to its own output.
    """

    def error(self, message: str) -> NoReturn:
        raise CheckUsageError(message)


def _positiveSeconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}"
        )
    return seconds


def buildArgumentParser() -> argparse.ArgumentParser:
    """
    The C{tlsreply check} command line (its C{--help} is the usage text).
    """
    parser = _ArgumentParser(
        prog="tlsreply check",
        usage=USAGE,
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Connect to a TLS server, print what the handshake negotiated,\n"
            "then connect again offering the first connection's session and\n"
            "report whether the server resumed it."
        ),
        epilog=(
            "HOST is a name, an IPv4 address or an [IPv6] address in brackets.\n"
            "Exit status: 0 when the certificate verified, a non-empty reply\n"
            "arrived and the second connection resumed the session; 1 when\n"
            "any of those is missing (one line per problem) or the server\n"
            "cannot be reached; 2 for bad arguments."
        ),
    )
    parser.add_argument("target", metavar="HOST:PORT", help="the server to check")
    parser.add_argument(
        "--ca",
        metavar="FILE",
        help="trust only the CA certificates in this PEM file "
        "(default: the system's trust store)",
    )
    parser.add_argument(
        "--servername",
        metavar="NAME",
        help="send this name as SNI and check the certificate against it "
        "(default: HOST when it is a name; an IP address is checked as one "
        "and sends no SNI)",
    )
    parser.add_argument(
        "--alpn",
        metavar="LIST",
        help="offer these ALPN protocols, comma-separated, e.g. h2,http/1.1 "
        "(default: none)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the facts as one JSON object"
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positiveSeconds,
        default=DEFAULT_TIMEOUT,
        help="seconds allowed for each step: TCP connect, TLS handshake, "
        "waiting for the reply and the close (default: %(default)g)",
    )
    parser.add_argument("-h", "--help", action="store_true", help="show this help")
    return parser


def parseArguments(argv: Sequence[str]) -> CheckOptions | None:
    """
    Parse the command line.

    @return: the options, or L{None} if C{--help} was asked for.
    @raise CheckUsageError: for any bad argument.
    """
    parser = buildArgumentParser()
    if "-h" in argv or "--help" in argv:
        return None
    namespace = parser.parse_args(list(argv))
    target = parseTarget(namespace.target)
    serverName: str | None = namespace.servername
    if serverName is not None:
        if _isAddress(serverName):
            raise CheckUsageError(
                f"--servername must be a host name, not the address {serverName!r} "
                "(an address target is checked as an address)"
            )
        try:
            encodeHostName(serverName)
        except CheckUsageError as e:
            raise CheckUsageError(f"--servername: {e}") from None
    elif target.address is None:
        serverName = target.host
    if serverName is not None:
        # SNI carries no trailing dot (RFC 6066), and certificates name
        # hosts without one.
        serverName = serverName.rstrip(".") or serverName
    alpn: tuple[str, ...] = ()
    if namespace.alpn is not None:
        alpn = tuple(p.strip() for p in namespace.alpn.split(","))
        if not all(0 < len(p.encode()) < 256 for p in alpn):
            raise CheckUsageError(
                f"--alpn: expected comma-separated protocol names, got {namespace.alpn!r}"
            )
    caPath = None if namespace.ca is None else Path(namespace.ca)
    return CheckOptions(
        target=target,
        caPath=caPath,
        serverName=serverName,
        alpnProtocols=alpn,
        json=namespace.json,
        timeout=namespace.timeout,
    )


def _isAddress(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
