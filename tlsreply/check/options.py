# -*- test-case-name: tests.test_check -*-
"""
What C{tlsreply check} is asked to do: its command line, parsed.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import idna
from twisted.python import usage

from tlsreply import values
from tlsreply._version import VersionOption
from tlsreply.errors import ConfigurationError
from tlsreply.replies import decodeReplyText
from tlsreply.tls.policy import parseALPN

#: Seconds allowed, by default, for each step of a connection: the TCP
#: connect, the TLS handshake, and the wait for the reply and the close.
DEFAULT_TIMEOUT: Final = 10.0

#: The port of a target given without one.
DEFAULT_PORT: Final = "443"

#: Exit statuses.
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

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
    @ivar address: the parsed IP address if C{host} is one, else C{None};
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
    Parse C{HOST[:PORT]}, where HOST is a name, an IPv4 address, or an IPv6
    address in brackets (C{[::1]:443}); the brackets are what keeps the
    port apart from an IPv6 address's own colons. Without a port, 443.

    @raise CheckUsageError: naming what is wrong with C{text}.
    """
    if text.startswith("["):
        close = text.find("]")
        if close == -1 or text[close + 1 : close + 2] not in ("", ":"):
            raise CheckUsageError(
                f"expected [IPv6]:PORT, got {text!r} (e.g. [::1]:443)"
            )
        host, portText = text[1:close], text[close + 2 :] or DEFAULT_PORT
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = (
                ipaddress.IPv6Address(host)
            )
        except ValueError:
            raise CheckUsageError(
                f"not an IPv6 address in brackets: {host!r}"
            ) from None
    elif _isAddress(text) and ":" in text:
        raise CheckUsageError(f"put an IPv6 address in brackets: [{text}]")
    else:
        host, colon, portText = text.rpartition(":")
        if not colon:
            host, portText = text, DEFAULT_PORT
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
    @ivar caPath: trust only these PEM CAs; C{None} for the system store.
    @ivar serverName: the name sent as SNI and checked against the
        certificate; C{None} for none (the target is an IP address).
    @ivar alpnProtocols: ALPN protocols to offer, none by default (offering
        protocols a server does not speak can make it refuse the handshake).
    @ivar json: print the facts as one JSON object.
    @ivar timeout: seconds for each step of a connection.
    @ivar send: bytes to send after each handshake (a request), or none.
    """

    target: Target
    caPath: Path | None = None
    serverName: str | None = None
    alpnProtocols: tuple[str, ...] = ()
    json: bool = False
    timeout: float = DEFAULT_TIMEOUT
    send: bytes = b""


def _positiveSeconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    try:
        return values.seconds(seconds, "--timeout", positive=True, text=text)
    except ConfigurationError as e:
        raise ValueError(str(e)) from None


class CheckCommand(VersionOption, usage.Options):
    """
    The C{tlsreply check} command line; after parsing, L{options} holds it
    checked and typed.
    """

    synopsis = "HOST[:PORT] [options]"
    longdesc = (
        "Connect to a TLS server, print what the handshake negotiated, then "
        "connect again offering the first connection's session and report "
        "whether the server resumed it. HOST is a name, an IPv4 address or an "
        "[IPv6] address in brackets; PORT is 443 unless given. Exit status: 0 "
        "when the certificate verified, a non-empty reply arrived and the "
        "second connection resumed the session; 1 when any of those is missing "
        "(one line per problem) or the server cannot be reached; 2 for bad "
        "arguments."
    )

    optFlags = [
        ["json", None, "Print the facts as one JSON object."],
        [
            "http",
            None,
            "Send an HTTP/1.1 GET / request for the host name after the "
            "handshake, for servers that wait for a request (any HTTPS server).",
        ],
    ]
    optParameters: list[list[Any]] = [
        [
            "ca",
            None,
            None,
            "Trust only the CA certificates in this PEM file. [default: the "
            "system's trust store]",
        ],
        [
            "servername",
            None,
            None,
            "Send this name as SNI and check the certificate against it. "
            "[default: HOST when it is a name; an IP address is checked as one "
            "and sends no SNI]",
        ],
        [
            "alpn",
            None,
            None,
            "Offer these ALPN protocols, comma-separated, e.g. h2,http/1.1. "
            "[default: none]",
        ],
        [
            "send",
            None,
            None,
            "Send this text after the handshake (backslash escapes as --reply "
            "takes them, e.g. 'PING\\r\\n'), for servers that wait for a request.",
        ],
        [
            "timeout",
            None,
            DEFAULT_TIMEOUT,
            "Seconds allowed for each step: TCP connect, TLS handshake, waiting "
            "for the reply and the close.",
            _positiveSeconds,
        ],
    ]

    options: CheckOptions

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse, taking options before or after the target (Twisted's parser
        stops at the first argument that is not an option).
        """
        if options is None:
            options = sys.argv[1:]
        super().parseOptions(_optionsFirst(list(options), self.longOpt))

    def parseArgs(self, target: str | None = None) -> None:
        if target is None:
            raise usage.UsageError("which server? (HOST[:PORT])")
        self["target"] = target

    def postOptions(self) -> None:
        try:
            self.options = _checkOptions(self)
        except CheckUsageError as e:
            raise usage.UsageError(str(e)) from None


def _optionsFirst(arguments: list[str], longOptions: Sequence[str]) -> list[str]:
    """
    The same arguments, options (with their values) first.
    """
    takesValue = {name[:-1] for name in longOptions if name.endswith("=")}
    options: list[str] = []
    positional: list[str] = []
    index = 0
    while index < len(arguments):
        token = arguments[index]
        if token == "--":
            positional += arguments[index + 1 :]
            break
        if token.startswith("-") and token != "-":
            options.append(token)
            name = token[2:] if token.startswith("--") else ""
            if name in takesValue and index + 1 < len(arguments):
                options.append(arguments[index + 1])
                index += 1
        else:
            positional.append(token)
        index += 1
    return options + positional


def _checkOptions(command: CheckCommand) -> CheckOptions:
    target = parseTarget(command["target"])
    serverName: str | None = command["servername"]
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
    if command["alpn"] is not None:
        try:
            alpn = parseALPN(command["alpn"])
        except ConfigurationError as e:
            raise CheckUsageError(f"--alpn: {e}") from None
    if command["send"] is not None and command["http"]:
        raise CheckUsageError("give --send or --http, not both")
    send = b""
    if command["send"] is not None:
        try:
            send = decodeReplyText(command["send"])
        except ConfigurationError as e:
            raise CheckUsageError(f"--send: {e}") from None
    elif command["http"]:
        host = serverName or target.host
        hostHeader = f"[{host}]" if ":" in host else host
        if target.port != 443:
            hostHeader += f":{target.port}"
        send = (
            f"GET / HTTP/1.1\r\nHost: {hostHeader}\r\nUser-Agent: tlsreply-check\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
    caPath = None if command["ca"] is None else Path(command["ca"])
    return CheckOptions(
        target=target,
        caPath=caPath,
        serverName=serverName,
        alpnProtocols=alpn,
        json=bool(command["json"]),
        timeout=command["timeout"],
        send=send,
    )


def parseArguments(argv: Sequence[str]) -> CheckOptions:
    """
    Parse the arguments after C{tlsreply check}.

    @raise CheckUsageError: for any bad argument, with the message the
        person who typed it needs.
    """
    command = CheckCommand()
    try:
        command.parseOptions(list(argv))
    except usage.UsageError as e:
        message = str(e).removeprefix("Parameter type enforcement failed: ")
        raise CheckUsageError(message) from None
    return command.options


def _isAddress(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
