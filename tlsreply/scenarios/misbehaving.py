# -*- test-case-name: tests.test_hostilescenarios -*-
"""
A server that misbehaves at the protocol level on purpose, for testing TLS
clients: the servers of the hostile scenarios
(L{tlsreply.scenarios.hostile}).

Each scenario names one L{Misbehaviour}. Its connections run on the
memory-BIO path (L{tlsreply.transport.tlsmemory}) whatever the listening address,
because every misbehaviour needs a layer that tlsreply's own socket path
does not have::

    TCP -> HostileConnection -> HostileTLSProtocol -> HostileReplyProtocol

  - L{HostileConnection}, below TLS, holds the TCP connection: it can stop
    after the ClientHello (never answering it, or closing), count the
    client's ClientHellos, end TCP without close_notify (a FIN, or a reset)
    and send a record OpenSSL would not;
  - L{HostileTLSProtocol} is Twisted's TLS without its joining of small
    writes, so that every write is a record of its own;
  - L{HostileReplyProtocol}, above TLS, decides what follows the handshake.

Every connection's log line and record say what the server did, first
(C{"truncated: ..."}, C{"reset: ..."}, C{"stalled: ..."}), then how the
connection ended. Nothing is held for ever: a stall ends at
L{HostileSettings.stallLimit}, a stop aborts every connection as usual.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from OpenSSL import SSL
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from tlsreply import values
from tlsreply.clienthello.offered import ClientHello
from tlsreply.connection.ending import Ending
from tlsreply.connection.records import describeHandshake
from tlsreply.connection.tcpinfo import bytesAcknowledged
from tlsreply.errors import ConfigurationError, openSSLReasons
from tlsreply.logs.access import ConnectionLog
from tlsreply.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    ReplyFactory,
    ReplyProtocol,
    endingFromFailure,
)
from tlsreply.scenarios._tlsrecords import (
    APPLICATION_DATA,
    ClientHellos,
    RecordReader,
    encryptedAlert,
)
from tlsreply.transport.tlsmemory import (
    ClientHelloFirst,
    ReplyTLSProtocol,
    TLSReplyServerFactory,
)

if TYPE_CHECKING:
    from tlsreply.connection.registry import ServerConnections

#: What a hostile scenario's server does; each is the name of its scenario.
Misbehaviour = Literal[
    "truncated-reply",
    "reset-after-reply",
    "stall-handshake",
    "stall-after-handshake",
    "slow-reply",
    "one-byte-records",
    "hello-retry-request",
    "renegotiation-request",
    "alert-instead-of-reply",
    "close-during-handshake",
]
MISBEHAVIOURS: Final[tuple[str, ...]] = get_args(Misbehaviour)

#: Seconds a stalled connection is held before the server closes it.
DEFAULT_STALL_LIMIT: Final = 60.0

#: Seconds between the reply's bytes in C{slow-reply}.
DEFAULT_BYTE_DELAY: Final = 0.2

#: How long a reset waits, at most, for the reply to be acknowledged.
_DELIVERY_LIMIT: Final = 2.0


@dataclass(frozen=True)
class HostileSettings:
    """
    How long the hostile servers misbehave.

    @ivar stallLimit: seconds a stalled connection (C{stall-handshake},
        C{stall-after-handshake}, an unanswered C{renegotiation-request})
        is held before the server closes it; the client's own timeout is
        what the scenario tests, and this bounds what the server holds.
    @ivar byteDelay: seconds between the reply's bytes in C{slow-reply}.
    """

    stallLimit: float = DEFAULT_STALL_LIMIT
    byteDelay: float = DEFAULT_BYTE_DELAY

    def __post_init__(self) -> None:
        for name in ("stallLimit", "byteDelay"):
            try:  # A stall needs a limit above 0; infinity and NaN are no limit.
                values.seconds(getattr(self, name), f"HostileSettings.{name}", name == "stallLimit")
            except ConfigurationError as e:
                raise ValueError(str(e)) from None


class SecretLog:
    """
    The server application traffic secret of each TLS 1.3 connection made
    from the contexts it is installed on, from OpenSSL's key log (for
    C{alert-instead-of-reply}, see L{tlsreply.scenarios._tlsrecords}).
    """

    _LABEL: Final = b"SERVER_TRAFFIC_SECRET_0 "

    def __init__(self) -> None:
        self._secrets: weakref.WeakKeyDictionary[SSL.Connection, bytes] = (
            weakref.WeakKeyDictionary()
        )

    def install(self, context: SSL.Context) -> None:
        context.set_keylog_callback(self._logged)

    def _logged(self, connection: SSL.Connection, line: bytes) -> None:
        if line.startswith(self._LABEL):
            self._secrets[connection] = bytes.fromhex(line.split()[2].decode())

    def serverSecret(self, connection: SSL.Connection) -> bytes | None:
        return self._secrets.get(connection)


#: The secrets of every connection made from a context it is installed on
#: (by C{alert-instead-of-reply}'s builder), kept while the connection is.
SERVER_SECRETS: Final = SecretLog()


class HostileConnection(ClientHelloFirst):
    """
    One connection of a hostile server, below TLS.

    @ivar did: what the server did that it should not have, for the log
        line and record; C{None} until it has.
    @ivar holding: the server stopped at the ClientHello (TLS never
        started): the connection is reported from here.
    @ivar clientHellos: the ClientHellos the client sent, where counted
        (C{hello-retry-request}).
    """

    factory: HostileServerFactory
    did: str | None = None
    holding = False
    clientHellos: ClientHellos | None = None
    _written = 0
    _sentRecords: RecordReader | None = None
    _applicationRecords = 0
    _timer: IDelayedCall | None = None
    _truncated = False

    @property
    def misbehaviour(self) -> Misbehaviour:
        return self.factory.replyFactory.misbehaviour

    @property
    def settings(self) -> HostileSettings:
        return self.factory.replyFactory.settings

    @property
    def connections(self) -> ServerConnections:
        return self.factory.connections

    def _start(self, hello: ClientHello | None) -> None:
        misbehaviour = self.misbehaviour
        if hello is not None and misbehaviour in ("stall-handshake", "close-during-handshake"):
            self.clientHello = hello
            self.holding = True
            self._parser = None
            if misbehaviour == "close-during-handshake":
                self.did = "closed: TCP closed right after the ClientHello, unanswered"
                self.transport.loseConnection()  # type: ignore[union-attr]
            else:
                self.did = "stalled: the ClientHello read and never answered"
                self.stall()
            return
        if misbehaviour == "hello-retry-request" and self._parser is not None:
            self.clientHellos = ClientHellos()
            self.clientHellos.feed(self._parser.received)
        super()._start(hello)

    def dataReceived(self, data: bytes) -> None:
        if self.holding:
            return
        if self.clientHellos is not None and self._started:
            self.clientHellos.feed(data)
        super().dataReceived(data)

    def write(self, data: bytes) -> None:
        self._written += len(data)
        if self._sentRecords is not None:
            for record in self._sentRecords.feed(data):
                self._applicationRecords += record.type == APPLICATION_DATA
        super().write(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancelTimer()
        if not self.holding:
            super().connectionLost(reason)
            return
        try:
            self.factory.replyFactory.report(
                self.peerText(),
                (self.abortReason or endingFromFailure(reason, self.overTCP)).after(str(self.did)),
                None,
                self.clientHello,
                self.abortReason is not None,
            )
        finally:
            self.connections.closed(self)

    def abort(self, why: Ending) -> None:
        if self.holding:
            self.abortReason = why
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        super().abort(why)

    # What the protocols above ask of TCP.

    def stall(self) -> None:
        """
        Send nothing more; close TCP (without close_notify) at the stall
        limit, unless the client gives up first, as it should.
        """
        self.connections.exempt(self)
        limit = self.settings.stallLimit
        self._timer = self.factory.replyFactory.clock.callLater(limit, self._stallLimit, limit)

    def _stallLimit(self, limit: float) -> None:
        self._timer = None
        self.did = f"{self.did}; closed by the server at the {limit:g}s stall limit"
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def truncate(self) -> None:
        """
        End TCP's sending side (a FIN) once what was written is out, with
        no close_notify before it; then read until the client closes.
        """
        self._truncated = True
        self.transport.loseWriteConnection()  # type: ignore[union-attr]

    def loseConnection(self) -> None:
        """
        Close TCP; after L{truncate}, in the next turn: Twisted's TCP
        connection, its sending side closed, calls C{connectionLost} at
        once, inside the TLS layer's reading (an alert the client sent
        about the truncation), which that layer does not expect.
        """
        if self._truncated:
            self.factory.replyFactory.clock.callLater(0, super().loseConnection)
            return
        super().loseConnection()

    def resetWhenDelivered(self) -> None:
        """
        Reset the connection (SO_LINGER 0 and close: a RST) once the client
        has acknowledged every byte written, so that the reply reaches it
        before the reset; after L{_DELIVERY_LIMIT} seconds at most, where
        the kernel does not say.
        """
        clock = self.factory.replyFactory.clock
        deadline = clock.seconds() + _DELIVERY_LIMIT

        def check() -> None:
            transport: Any = self.transport
            if transport is None or not transport.connected:
                return
            handle = self.tcpSocket()
            acknowledged = bytesAcknowledged(handle) if handle is not None else None
            delivered = acknowledged is not None and acknowledged >= self._written
            if delivered or clock.seconds() >= deadline:
                transport.abortConnection()
            else:
                clock.callLater(0.001, check)

        clock.callLater(0, check)

    def countApplicationRecords(self) -> None:
        """
        From now, count the TLS 1.3 records written under the application
        keys (the handshake has completed; OpenSSL has not yet handed over
        its NewSessionTickets).
        """
        self._sentRecords = RecordReader()

    def sendRaw(self, record: bytes) -> None:
        """
        Write bytes OpenSSL did not make (an alert record), then end TCP.
        """
        self._sentRecords = None
        super().write(record)
        self.transport.loseConnection()  # type: ignore[union-attr]

    @property
    def applicationRecords(self) -> int:
        return self._applicationRecords


class HostileTLSProtocol(ReplyTLSProtocol):
    """
    Twisted's TLS for a hostile connection: every write its own record
    (Twisted's C{BufferingTLSTransport} joins the writes of one reactor
    turn into one), and the reply protocol told of every TLS record read
    (to follow a renegotiation).
    """

    connection: HostileConnection
    wrappedProtocol: HostileReplyProtocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # BufferingTLSTransport's instance attribute; the class's own
        # write (TLSMemoryBIOProtocol's) sends at once.
        del self.write

    def writeSequence(self, sequence: Any) -> None:
        self.write(b"".join(sequence))

    def _flushSendBIO(self) -> None:
        # A client that ends a renegotiation with close_notify has the
        # connection lost while Twisted's TLS still finishes its shutdown,
        # which then flushes a connection it has already let go.
        if self._tlsConnection is not None:
            super()._flushSendBIO()

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        protocol = self.wrappedProtocol
        if protocol is not None and not self._lostTLSConnection:
            protocol.tlsRead()

    def flushPending(self) -> None:
        """
        Send what OpenSSL has queued outside a write (the NewSessionTickets
        it makes as the handshake completes).
        """
        handle = self.getHandle()
        try:
            pending = handle.bio_read(65536)
        except SSL.WantReadError:
            return
        self.transport.write(pending)  # type: ignore[union-attr]


class HostileReplyProtocol(ReplyProtocol):
    """
    What a hostile server does once the handshake is done, by its
    factory's L{Misbehaviour}.
    """

    factory: HostileReplyFactory
    transport: Any
    did: str | None = None
    _timer: IDelayedCall | None = None
    _renegotiating = False

    @property
    def connection(self) -> HostileConnection:
        connection: HostileConnection = self.transport.connection
        return connection

    def connectionMade(self) -> None:
        if self.factory.misbehaviour == "hello-retry-request":
            super().connectionMade()

    def handshakeCompleted(self) -> None:
        misbehaviour = self.factory.misbehaviour
        if misbehaviour in ("hello-retry-request", "truncated-reply", "reset-after-reply",
                            "one-byte-records", "alert-instead-of-reply"):
            # The close timeout starts: each of these ends by itself.
            super().handshakeCompleted()
        else:
            self._describeHandshake()
            self.connection.connections.exempt(self.connection)
        getattr(self, "_" + misbehaviour.replace("-", "_"))()

    def _describeHandshake(self) -> None:
        connection = self.connection
        tls = self.transport.getHandle()
        self.handshake = describeHandshake(
            tls,
            self.factory.clock.seconds() - connection.acceptedAt,
            connection.earlyDataOffered,
            connection.servedCertificate(tls),
        )

    def _hello_retry_request(self) -> None:
        """
        The reply, as queued by L{connectionMade}: the misbehaviour was the
        group (see the scenario), and the record says how many ClientHellos
        it took.
        """

    def _truncated_reply(self) -> None:
        self.did = "truncated: the reply, then TCP FIN without close_notify"
        self.transport.write(self.factory.reply)
        self.connection.truncate()

    def _reset_after_reply(self) -> None:
        self.did = "reset: the reply, then a TCP reset"
        self.transport.write(self.factory.reply)
        self.connection.resetWhenDelivered()

    def _stall_after_handshake(self) -> None:
        # Said by the connection, which adds the stall limit if it is hit.
        self.connection.did = "stalled: the handshake done, then nothing"
        self.connection.stall()

    def _one_byte_records(self) -> None:
        reply = self.factory.reply
        self.did = f"one-byte records: the reply in {len(reply)} records"
        for index in range(len(reply)):
            self.transport.write(reply[index : index + 1])
        self.transport.loseConnection()

    def _slow_reply(self) -> None:
        delay = self.factory.settings.byteDelay
        self.did = f"slow: the reply one byte a record, {delay:g}s apart"
        self._sendByte(0)

    def _sendByte(self, index: int) -> None:
        self._timer = None
        reply = self.factory.reply
        self.transport.write(reply[index : index + 1])
        if index + 1 < len(reply):
            self._timer = self.factory.clock.callLater(
                self.factory.settings.byteDelay, self._sendByte, index + 1
            )
            return
        self.transport.loseConnection()
        # Now the client has the close timeout to close, as after any reply.
        self.connection.handshakeCompleted()

    def _renegotiation_request(self) -> None:
        """
        A HelloRequest, then the reply; close_notify once the client has
        renegotiated, or at the stall limit if it neither renegotiates nor
        closes. A client that refuses (a no_renegotiation alert) is answered
        as OpenSSL answers it: with a fatal handshake_failure alert.
        """
        tls = self.transport.getHandle()
        self.did = "renegotiation: a HelloRequest, then the reply"
        try:
            tls.renegotiate()
            tls.do_handshake()
        except SSL.WantReadError:
            pass
        except SSL.Error as e:
            # Not with the scenario's policy; said, never raised into TLS.
            self.did = f"renegotiation: OpenSSL would not ask ({openSSLReasons(e)}), so the reply"
            self.transport.write(self.factory.reply)
            self.transport.loseConnection()
            return
        self.transport.flushPending()
        self._renegotiating = True
        self.transport.write(self.factory.reply)
        limit = self.factory.settings.stallLimit
        self._timer = self.factory.clock.callLater(limit, self._unanswered, limit)

    def _unanswered(self, limit: float) -> None:
        self._timer = None
        self._renegotiating = False
        self.did = f"{self.did}; no renegotiation within the {limit:g}s stall limit"
        self.transport.loseConnection()

    def tlsRead(self) -> None:
        """
        TLS records arrived (L{HostileTLSProtocol}): a renegotiation may
        have completed.
        """
        if not self._renegotiating:
            return
        tls = self.transport.getHandle()
        if tls is None or tls.renegotiate_pending():
            return
        self._renegotiating = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.did = f"{self.did}; the client renegotiated ({tls.total_renegotiations()})"
        self.transport.loseConnection()
        self.connection.handshakeCompleted()

    def _alert_instead_of_reply(self) -> None:
        connection = self.connection
        tls = self.transport.getHandle()
        secret = self.factory.secrets.serverSecret(tls)
        connection.countApplicationRecords()
        self.transport.flushPending()
        cipher = tls.get_cipher_name()
        if secret is None or tls.get_protocol_version_name() != "TLSv1.3":
            # Not reached with the scenario's policy (TLS 1.3 only).
            self.did = "alert: no TLS 1.3 secret, so close_notify instead"
            self.transport.loseConnection()
            return
        sequence = connection.applicationRecords
        self.did = "alert: a fatal internal_error alert instead of the reply"
        connection.sendRaw(encryptedAlert(cipher, secret, sequence))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        connection = self.connection
        did = self.did or connection.did
        hellos = connection.clientHellos
        if hellos is not None:
            did = (
                f"hello retry: {hellos.count} ClientHellos, the second after a "
                "HelloRetryRequest" if hellos.count > 1
                else f"hello retry: none, {hellos.count} ClientHello (the client "
                "sent a key share for the server's group)"
            )
        if did is None:
            super().connectionLost(reason)
            return
        abortReason = connection.abortReason
        ending = abortReason or endingFromFailure(reason, connection.overTCP)
        self.factory.report(
            connection.peerText(),
            ending.after(did),
            self.handshake,
            connection.clientHello,
            abortReason is not None,
            self.received,
        )


class HostileServerFactory(TLSReplyServerFactory):
    """
    The server side of a hostile scenario, over any endpoint; never served
    on tlsreply's own socket path (L{TLSReplyServerFactory.socketTLS}).
    """

    # mypy takes the base's class for the exact type: a subclass is meant.
    protocol = HostileConnection  # type: ignore[assignment]
    socketTLS = False
    replyFactory: HostileReplyFactory

    def __init__(self, contextFactory: Any, replyFactory: Any, connections: Any) -> None:
        super().__init__(contextFactory, replyFactory, connections)
        self.wrappedFactory.protocol = HostileTLSProtocol


class HostileReplyFactory(ReplyFactory):
    """
    Makes the L{HostileReplyProtocol}s of one hostile scenario.

    @ivar misbehaviour: what the server does.
    @ivar settings: for how long.
    @ivar secrets: where C{alert-instead-of-reply} finds each connection's
        keys (installed on its contexts by the scenario).
    """

    serverFactoryType = HostileServerFactory

    def __init__(
        self,
        misbehaviour: Misbehaviour,
        reply: bytes,
        clock: IReactorTime | None = None,
        handshakeTimeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        closeTimeout: float = DEFAULT_CLOSE_TIMEOUT,
        accessLog: ConnectionLog | None = None,
        settings: HostileSettings | None = None,
        secrets: SecretLog | None = None,
    ) -> None:
        if misbehaviour not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {misbehaviour!r}")
        super().__init__(reply, clock, handshakeTimeout, closeTimeout, accessLog)
        self.misbehaviour = misbehaviour
        self.settings = settings or HostileSettings()
        self.secrets = secrets or SERVER_SECRETS

    def buildProtocol(self, addr: IAddress | None) -> HostileReplyProtocol:
        protocol = HostileReplyProtocol()
        protocol.factory = self
        return protocol
