# -*- test-case-name: tests.test_proxyheader,tests.test_proxywire,tests.test_haproxy -*-
"""
The PROXY protocol header of C{haproxy:} ports, read as the untrusted
input it is.

A C{haproxy:} port takes the client's address from the header that a load
balancer sends first (the PROXY protocol, v1 text or v2 binary, HAProxy's
C{doc/proxy-protocol.txt}). Whoever reaches the port can send one: a
stranger, a misconfigured proxy. Twisted's parser
(C{twisted.protocols.haproxy}) takes the header on trust: an address that
is no address (C{not-an-ip!!}, one with a line feed in it), a port of
99999 or C{-5}, a port that is not a number (a traceback, "Unhandled
Error"); and it closes a connection whose first read is shorter than the
header's signature, which TCP may deliver in pieces.

Here, the header is checked as the spec says before anything is believed:
a v1 line has exactly six fields separated by single spaces, each address
an IP literal of the family the line names, each port a decimal number
from 0 to 65535 without leading zeros, within 107 bytes; a v2 header has
the version, command, family and protocol the spec allows, and as many
address bytes as its family needs. A header that is not one is refused:
the connection is aborted, and its one log line says what was wrong (with
the bytes quoted, escaped: L{tlsreply.connection.peertext}). The header is read
however TCP cuts it; the handshake timeout bounds how long it may take.
C{PROXY UNKNOWN} and v2's LOCAL command (HAProxy's health checks with
C{send-proxy-v2}), and v2's unspecified family, are served with the
connection's own addresses, as the spec says.

Twisted's parsers are kept where they are right: the buffering of a v1
line up to its CRLF, the layout of a v2 header, their constants and
C{ProxyInfo}, and the wrapper's C{getPeer} and C{getHost}. This module is
the one door to Twisted's private C{twisted.protocols.haproxy} modules.
"""

from __future__ import annotations

import re
import socket
from typing import Protocol, runtime_checkable

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._info import ProxyInfo
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser
from twisted.protocols.haproxy._wrapper import (
    HAProxyProtocolWrapper,
    HAProxyWrappingFactory,
)
from zope.interface import implementer

from tlsreply.connection.addresses import formatAddress
from tlsreply.connection.ending import PROXY_HEADER, Ending
from tlsreply.connection.peertext import escapeBytes

_log = Logger(namespace="tlsreply")

#: The longest v1 line, its CRLF included (the spec's worst case,
#: C{PROXY UNKNOWN} with two full IPv6 addresses).
V1_LIMIT = 107

#: The v1 header's first bytes.
V1_SIGNATURE = V1Parser.PROXYSTR

#: The v2 header's first twelve bytes.
V2_SIGNATURE = V2Parser.PREFIX

_PORT = re.compile(rb"0|[1-9][0-9]{0,4}")
_IPV4 = re.compile(rb"[0-9.]{7,15}")
_IPV6 = re.compile(rb"[0-9A-Fa-f:.]{2,45}")

#: The bytes of addresses each v2 address family needs (INET, INET6, UNIX).
_V2_ADDRESS_LENGTHS = {1: 12, 2: 36, 3: 216}


class ProxyHeaderError(InvalidProxyHeader):
    """
    A PROXY header refused. The message says why, for the connection's log
    line; the peer's bytes in it are escaped.
    """


def _bad(version: int, problem: str) -> ProxyHeaderError:
    return ProxyHeaderError(f"bad PROXY header (v{version}): {problem}")


def _quoted(field: bytes) -> str:
    return f"'{escapeBytes(field)}'"


def _address(field: bytes, version: int, which: str) -> str:
    """
    An IP literal of the given version from a v1 field, canonical.

    @raise ProxyHeaderError: if the field is not one.
    """
    pattern, family = (_IPV4, socket.AF_INET) if version == 4 else (_IPV6, socket.AF_INET6)
    if pattern.fullmatch(field) is not None:
        # The C library's parser: strict (no leading zeros, no scope), and
        # a tenth of the time of ipaddress's.
        try:
            packed = socket.inet_pton(family, field.decode("ascii"))
        except OSError:
            pass
        else:
            return socket.inet_ntop(family, packed)
    raise _bad(1, f"{which} address {_quoted(field)} is not an IPv{version} address")


def _port(field: bytes, which: str) -> int:
    """
    A port from a v1 field.

    @raise ProxyHeaderError: if the field is not a decimal number from 0
        to 65535 without leading zeros.
    """
    if _PORT.fullmatch(field) is None or int(field) > 65535:
        raise _bad(
            1,
            f"{which} port {_quoted(field)} is not a number from 0 to 65535 "
            "(decimal, without leading zeros)",
        )
    return int(field)


class V1HeaderParser(V1Parser):
    """
    Twisted's v1 parser (which gathers the line up to its CRLF), with the
    line checked field by field before it is believed.
    """

    def feed(self, data: bytes) -> tuple[ProxyInfo, bytes] | tuple[None, None]:
        """
        Take the next bytes of a connection.

        @return: the header and the bytes after it, once it is complete;
            else C{(None, None)}.
        @raise ProxyHeaderError: for a line that is not a valid header.
        """
        try:
            result = super().feed(data)
        except ProxyHeaderError:
            raise
        except InvalidProxyHeader:
            raise _bad(1, f"no CRLF within {V1_LIMIT} bytes") from None
        if result[0] is None and b"\n" in self.buffer:
            # The spec: a line feed alone never ends the line. Nor can it
            # be in one: say so now rather than at the handshake timeout.
            raise _bad(1, f"a line feed without a carriage return in {_quoted(self.buffer)}")
        return result

    @classmethod
    def parse(cls, line: bytes) -> ProxyInfo:
        """
        Read a v1 line (without its CRLF).

        @raise ProxyHeaderError: if it is not exactly as the spec says.
        """
        if len(line) > V1_LIMIT - 2:
            raise _bad(1, f"no CRLF within {V1_LIMIT} bytes")
        fields = line.split(b" ")
        if fields[0] != cls.PROXYSTR:
            raise _bad(1, f"the line starts {_quoted(fields[0])}, not 'PROXY'")
        protocol = fields[1] if len(fields) > 1 else b""
        if protocol == cls.UNKNOWN_PROTO:
            # The spec: whatever follows, up to the CRLF, is ignored; the
            # connection's own addresses apply.
            return ProxyInfo(line, None, None)
        if protocol not in (cls.TCP4_PROTO, cls.TCP6_PROTO):
            raise _bad(1, f"protocol {_quoted(protocol)} is not TCP4, TCP6 or UNKNOWN")
        if len(fields) != 6:
            raise _bad(
                1,
                f"{len(fields)} fields, where a {protocol.decode()} line has 6 "
                "separated by single spaces",
            )
        version = 4 if protocol == cls.TCP4_PROTO else 6
        source = _address(fields[2], version, "source")
        destination = _address(fields[3], version, "destination")
        sourcePort = _port(fields[4], "source")
        destinationPort = _port(fields[5], "destination")
        kind = IPv4Address if version == 4 else IPv6Address
        return ProxyInfo(
            line, kind("TCP", source, sourcePort), kind("TCP", destination, destinationPort)
        )


def _canonical(address: IAddress | None) -> IAddress | None:
    """
    An IPv6 address with its host in canonical (compressed) form, as
    C{accept} would give it; any other address as it is.
    """
    if isinstance(address, IPv6Address):
        host = socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, address.host))
        return IPv6Address(address.type, host, address.port)
    return address


class V2HeaderParser(V2Parser):
    """
    Twisted's v2 parser, waiting for the 16 bytes of the fixed header
    however they arrive, with every field checked (and named when wrong)
    before Twisted's parser reads the addresses.
    """

    def feed(self, data: bytes) -> tuple[ProxyInfo, bytes] | tuple[None, None]:
        """
        Take the next bytes of a connection.

        @return: the header and the bytes after it, once it is complete;
            else C{(None, None)}.
        @raise ProxyHeaderError: for a header that is not a valid one.
        """
        self.buffer += data
        if len(self.buffer) < 16:
            return (None, None)
        return super().feed(b"")

    @classmethod
    def parse(cls, line: bytes) -> ProxyInfo:
        """
        Read a whole v2 header.

        @raise ProxyHeaderError: if it is not one the spec allows.
        """
        if len(line) < 16 or line[:12] != cls.PREFIX:
            raise _bad(2, "no v2 signature")
        version, command = line[12] >> 4, line[12] & 0x0F
        if version != 2:
            raise _bad(2, f"version {version}, not 2")
        if command == 0:
            # LOCAL: the proxy's own connection (a health check); its
            # addresses are the connection's, whatever the block says.
            return ProxyInfo(line, None, None)
        if command != 1:
            raise _bad(2, f"command {command}, neither LOCAL (0) nor PROXY (1)")
        family, protocol = line[13] >> 4, line[13] & 0x0F
        if family > 3:
            raise _bad(2, f"address family {family}, not one of 0 to 3")
        if protocol > 2:
            raise _bad(2, f"transport protocol {protocol}, not one of 0 to 2")
        if family == 0 or protocol == 0:
            # Unspecified: the spec lets the receiver use the connection's
            # own addresses.
            return ProxyInfo(line, None, None)
        given, needed = len(line) - 16, _V2_ADDRESS_LENGTHS[family]
        if given < needed:
            raise _bad(2, f"{given} bytes of addresses, where its family needs {needed}")
        info = super().parse(line)
        return ProxyInfo(line, _canonical(info.source), _canonical(info.destination))


def headerParser(start: bytes) -> V1HeaderParser | V2HeaderParser | None:
    """
    The parser for a connection that starts with C{start}: v2's or v1's by
    their signatures, once enough has arrived to tell; C{None} while
    C{start} is still the beginning of either.

    @raise ProxyHeaderError: if C{start} begins neither.
    """
    for signature, parser in ((V2_SIGNATURE, V2HeaderParser), (V1_SIGNATURE, V1HeaderParser)):
        length = min(len(start), len(signature))
        if start[:length] == signature[:length]:
            return parser() if length == len(signature) else None
    raise ProxyHeaderError(f"no PROXY header: the connection starts {_quoted(start[:16])}")


@runtime_checkable
class Abortable(Protocol):
    """
    A protocol that ends its connection with a reason its log line gives
    (L{tlsreply.transport.tlsmemory.ClientHelloFirst}).
    """

    def abort(self, why: Ending) -> None: ...


class ProxyHeaderProtocol(HAProxyProtocolWrapper):
    """
    Reads a connection's PROXY header (L{V1HeaderParser},
    L{V2HeaderParser}), however it is cut, then hands the protocol it wraps
    every byte after it; C{getPeer} and C{getHost} give the addresses the
    header named (Twisted's), or the connection's own.

    A header refused aborts the connection through the wrapped protocol,
    whose log line then says why (L{Abortable}); any other protocol's
    connection is logged here and aborted.
    """

    _pending = b""
    _refused = False

    def dataReceived(self, data: bytes) -> None:
        if self._proxyInfo is not None:
            self.wrappedProtocol.dataReceived(data)
            return
        if self._refused:
            return
        try:
            parser = self._parser
            if parser is None:
                data = self._pending + data
                parser = headerParser(data)
                if parser is None:
                    self._pending = data
                    return
                self._pending = b""
                self._parser = parser
            info, remaining = parser.feed(data)
        except ProxyHeaderError as e:
            self._refuse(str(e))
            return
        if info is None:
            return
        self._proxyInfo = info
        self._parser = None
        if remaining:
            self.wrappedProtocol.dataReceived(remaining)

    def _refuse(self, why: str) -> None:
        self._refused = True
        self._parser = None
        self._pending = b""
        wrapped = self.wrappedProtocol
        if isinstance(wrapped, Abortable):
            wrapped.abort(Ending(PROXY_HEADER, why))
            return
        _log.info(
            "closed the connection from {peer}: {why}",
            peer=formatAddress(self.getPeer()),
            why=why,
        )
        self.transport.abortConnection()  # type: ignore[union-attr]


class ProxyHeaderFactory(HAProxyWrappingFactory):
    """
    Wraps a factory's protocols in L{ProxyHeaderProtocol}.
    """

    protocol = ProxyHeaderProtocol  # type: ignore[assignment]  # a subclass
    noisy = False


@implementer(IStreamServerEndpoint)
class ProxyHeaderEndpoint:
    """
    An endpoint whose connections start with a PROXY header
    (C{haproxy:...}), read by L{ProxyHeaderProtocol}.
    """

    def __init__(self, wrapped: IStreamServerEndpoint) -> None:
        """
        @param wrapped: the endpoint that listens (C{tcp:4433}).
        """
        self.wrapped = wrapped

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        return self.wrapped.listen(ProxyHeaderFactory(factory))
