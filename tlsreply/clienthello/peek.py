# -*- test-case-name: tests.test_clienthello,tests.test_clienthelloproperties,tests.test_hellointerrupted -*-
"""
The socket path's look at a connection's first bytes: L{HelloPeek}.

L{tlsreply.transport.tlssocket} peeks at the bytes a client sent (they stay in the
socket, for OpenSSL to read) until they hold a whole ClientHello, then
creates the OpenSSL connection from the context for the name it asks for.
Between looks it has the kernel wake it only once enough bytes are in
(C{SO_RCVLOWAT}): that is how a connection costs nothing while its hello
trickles in. Waiting must never outlast what OpenSSL would wait for,
though: a record that cannot continue the hello (an alert, application
data, a length no record may have) is answered by OpenSSL the moment it
sees it, and so must it be here. L{HelloPeek.look} therefore says how long
to wait in terms of records: never past the end of the next record header,
or of the record being received.
"""

from __future__ import annotations

from tlsreply.clienthello.offered import ClientHello
from tlsreply.clienthello.parser import (
    SPANS_RECORDS,
    ClientHelloParser,
    NotAClientHello,
    parseScannedClientHello,
    scanClientHello,
)


class HelloPeek:
    """
    What one connection's first bytes say so far, looked at again each
    time more have arrived.

    The common case, a whole hello in one record, is one quick scan
    (L{scanClientHello}); a hello split across records goes to a
    L{ClientHelloParser}, fed only the bytes it has not seen, so that a
    hello trickled in tiny records costs linear time to parse.

    @ivar serverName: the server name asked for, once L{look} says TLS can
        start (C{None} if none, or if the bytes are no ClientHello).
    @ivar earlyDataOffered: whether the hello offered 0-RTT data.
    @ivar clientHello: every field of the hello, when the connection's
        records want them (C{wantHello}).
    """

    __slots__ = ("serverName", "earlyDataOffered", "clientHello", "_wantHello", "_parser", "_fed")

    def __init__(self, wantHello: bool) -> None:
        """
        @param wantHello: parse every field of the hello (for the records),
            not only the two facts the server needs.
        """
        self.serverName: str | None = None
        self.earlyDataOffered = False
        self.clientHello: ClientHello | None = None
        self._wantHello = wantHello
        self._parser: ClientHelloParser | None = None
        self._fed = 0

    def look(self, data: bytes | bytearray, length: int) -> int:
        """
        Look at the first C{length} bytes of C{data}: every byte the client
        has sent so far (at least as many as the last look saw).

        @return: C{0} when TLS must start now: the hello is whole (its
            facts are set), or the bytes are not the start of a
            ClientHello, which OpenSSL must see at once to answer them.
            Otherwise the number of bytes, counted from the first, to wait
            for before looking again: more than C{length}, and no more than
            the bytes up to the next point where OpenSSL, or the hello, could
            tell something new.
        """
        parser = self._parser
        if parser is None:
            status, serverName, earlyData = scanClientHello(data, length)
            if status > 0:
                # The hello lies in the one record whose header is in (or
                # the headers are not): nothing can happen before its end.
                return status
            if status == 0:
                self.serverName = serverName
                self.earlyDataOffered = earlyData
                if self._wantHello:
                    self.clientHello = parseScannedClientHello(data, length)
                return 0
            if status != SPANS_RECORDS:
                return 0
            parser = self._parser = ClientHelloParser()
        try:
            hello = parser.feed(bytes(data[self._fed : length]))
        except NotAClientHello:
            hello = None
        else:
            if hello is None:
                self._fed = length
                return length + parser.moreBytesNeeded
        self._parser = None
        if hello is not None:
            self.serverName = hello.serverName
            self.earlyDataOffered = hello.earlyDataOffered
            if self._wantHello:
                self.clientHello = hello
        return 0


__all__ = ["HelloPeek"]
