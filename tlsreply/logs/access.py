# -*- test-case-name: tests.test_accesslog -*-
"""
The connection log: one line per connection, cheaply.

A line through C{twisted.logger} under twistd's text observer costs about a
tenth of a millisecond (a dictionary per event, the format string parsed
and a time zone computed for every line, a flush per line): as much as a
tenth of a TLS handshake. L{AccessLog} writes the same line, in the same
layout as twistd's own log lines, through a buffer: the time stamp is
formatted once a second, and the buffer is written out at least once a
second and when the server stops.
"""

from __future__ import annotations

import os
import select
import stat
import time
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from tlsreply.logs._jsonlines import jsonString, timestamp
from tlsreply.tls.safefiles import openToAppend

if TYPE_CHECKING:
    from tlsreply.connection.records import HandshakeInfo

#: The line for a connection that was served; the fields are those of
#: L{repliedFields} and C{peer}, C{closed}.
REPLIED_FORMAT: Final = (
    "replied to {peer}: {tlsVersion} {cipher} group={group} "
    "resumed={resumed} sni={serverName} alpn={alpnProtocol} cert={certificate} "
    "handshake={handshakeMilliseconds:.1f}ms"
    "{earlyDataNote}{clientCertificateNote}; {closed}"
)

#: The line for a connection whose handshake did not complete.
FAILED_FORMAT: Final = "handshake failed with {peer}: {reason}"

#: The system of each line, as twistd writes it for the namespace
#: C{tlsreply.access} at level info.
ACCESS_SYSTEM: Final = "tlsreply.access"

_log = Logger()


def repliedFields(handshake: HandshakeInfo) -> dict[str, Any]:
    """
    The fields of a served connection's log event: what the handshake
    negotiated, and the notes its line shows.
    """
    return {
        "tlsVersion": handshake.tlsVersion,
        "cipher": handshake.cipher,
        "group": handshake.group,
        "resumed": handshake.resumed,
        "serverName": handshake.serverName,
        "alpnProtocol": handshake.alpnProtocol,
        "duration": handshake.duration,
        "earlyDataOffered": handshake.earlyDataOffered,
        "clientCertificate": handshake.clientCertificate,
        "clientVerification": handshake.clientVerification,
        "certificate": handshake.certificate,
        "handshakeMilliseconds": handshake.duration * 1000,
        "earlyDataNote": (
            " early-data-offered=refused" if handshake.earlyDataOffered else ""
        ),
        "clientCertificateNote": (
            f" client-cert={handshake.clientCertificate!r} "
            f"verify={handshake.clientVerification}"
            if handshake.clientCertificate
            else ""
        ),
    }


def connectionLine(peer: str, closed: str, handshake: HandshakeInfo | None) -> str:
    """
    The message of a connection's log line (without time stamp): the text
    that L{REPLIED_FORMAT} or L{FAILED_FORMAT} give, written out directly
    (three times faster than formatting them, on every connection).
    """
    if handshake is None:
        return f"handshake failed with {peer}: {closed}"
    h = handshake
    early = " early-data-offered=refused" if h.earlyDataOffered else ""
    certificate = (
        f" client-cert={h.clientCertificate!r} verify={h.clientVerification}"
        if h.clientCertificate
        else ""
    )
    return (
        f"replied to {peer}: {h.tlsVersion} {h.cipher} group={h.group} "
        f"resumed={h.resumed} sni={h.serverName} alpn={h.alpnProtocol} "
        f"cert={h.certificate} handshake={h.duration * 1000:.1f}ms{early}{certificate}; "
        f"{closed}"
    )


def connectionFields(
    peer: str, closed: str, handshake: HandshakeInfo | None
) -> dict[str, Any]:
    """
    The fields of a connection's structured log event (what it is logged
    with when C{--access-log log}), and of its JSON line.
    """
    if handshake is None:
        return {"peer": peer, "reason": closed, "outcome": "handshake-failed"}
    return {"peer": peer, "outcome": "replied", "closed": closed, **repliedFields(handshake)}


def jsonConnectionLine(
    when: float, namespace: str, peer: str, closed: str, handshake: HandshakeInfo | None
) -> str:
    """
    A connection's line for C{--log-format json}: the line the JSON
    observer writes for its structured event (L{connectionFields}), written
    out directly: a general encoder costs fifteen times the text line.
    """
    message = connectionLine(peer, closed, handshake)
    head = (
        f'{{"time":"{timestamp(when)}","level":"info","namespace":{jsonString(namespace)},'
        f'"message":{jsonString(message)},"peer":{jsonString(peer)},'
    )
    if handshake is None:
        return f'{head}"reason":{jsonString(closed)},"outcome":"handshake-failed"}}\n'
    # The keys and values of repliedFields (the equality is tested),
    # without building it: this is the line for every connection.
    S = jsonString
    h = handshake
    early = " early-data-offered=refused" if h.earlyDataOffered else ""
    client = (
        f" client-cert={h.clientCertificate!r} verify={h.clientVerification}"
        if h.clientCertificate
        else ""
    )
    return (
        f'{head}"outcome":"replied","closed":{jsonString(closed)},'
        f'"tlsVersion":{"null" if h.tlsVersion is None else S(h.tlsVersion)},"cipher":{"null" if h.cipher is None else S(h.cipher)},'
        f'"group":{"null" if h.group is None else S(h.group)},"resumed":{_BOOLEANS[h.resumed]},'
        f'"serverName":{"null" if h.serverName is None else S(h.serverName)},'
        f'"alpnProtocol":{"null" if h.alpnProtocol is None else S(h.alpnProtocol)},"duration":{h.duration!r},'
        f'"earlyDataOffered":{_BOOLEANS[h.earlyDataOffered]},'
        f'"clientCertificate":{"null" if h.clientCertificate is None else S(h.clientCertificate)},'
        f'"clientVerification":{"null" if h.clientVerification is None else S(h.clientVerification)},'
        f'"certificate":{"null" if h.certificate is None else S(h.certificate)},'
        f'"handshakeMilliseconds":{h.duration * 1000!r},'
        f'"earlyDataNote":{S(early)},"clientCertificateNote":{S(client)}}}\n'
    )


_BOOLEANS = {True: "true", False: "false", None: "null"}


class ConnectionLog(Protocol):
    """
    Where the one line per connection goes (see L{ReplyFactory.accessLog}).
    """

    def connectionEnded(
        self, peer: str, closed: str, handshake: HandshakeInfo | None
    ) -> None:
        """
        Log one connection: served, or why its handshake failed.
        """

    def flush(self) -> None:
        """
        Write out whatever is buffered.
        """


class NoAccessLog:
    """
    No line per connection at all (C{--access-log off}).
    """

    def connectionEnded(
        self, peer: str, closed: str, handshake: HandshakeInfo | None
    ) -> None:
        pass

    def flush(self) -> None:
        pass


#: The most one write to a pipe keeps whole among other processes' writes
#: (POSIX's PIPE_BUF; 4096 bytes on Linux).
ATOMIC_WRITE: Final = select.PIPE_BUF


def writtenWhole(stream: IO[bytes]) -> bool:
    """
    Does one write of any size to C{stream} land whole, never interleaved
    with other processes' writes? So for a regular file opened to append
    (and for what is not a file at all, such as a test's buffer); not for
    a pipe, a terminal or a socket (journald's standard output), which
    C{--workers} share.
    """
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return True
    return stat.S_ISREG(mode)


def atomicChunks(lines: Sequence[str], limit: int = ATOMIC_WRITE) -> Iterator[bytes]:
    """
    C{lines}, encoded, joined into pieces of whole lines of at most
    C{limit} bytes each (a longer line is a piece of its own).
    """
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode("utf-8", "backslashreplace")
        if chunk and size + len(data) > limit:
            yield b"".join(chunk)
            chunk = []
            size = 0
        chunk.append(data)
        size += len(data)
    if chunk:
        yield b"".join(chunk)


class AccessLog:
    """
    Writes one line per connection to a stream, through a buffer.

    Lines look like twistd's (C{2026-11-27T15:16:44+0000
    [tlsreply.access#info] replied to ...}), so that they sit well among the
    server's other log lines when both go to standard output; with
    C{json}, they are the JSON lines of L{tlsreply.logs._jsonlines}.

    To a pipe, a terminal or a socket, which several workers may share,
    the buffer is written in pieces of whole lines small enough to land
    whole (C{ATOMIC_WRITE}), so that no worker's line is cut by another's;
    to a file, in one write.

    @ivar flushInterval: the longest a line waits in the buffer, seconds.
    """

    #: Write the buffer out once it holds this many characters.
    bufferLimit = 65536

    def __init__(
        self,
        stream: IO[bytes],
        clock: IReactorTime,
        flushInterval: float = 1.0,
        path: str | None = None,
        system: str = ACCESS_SYSTEM,
        json: bool = False,
    ) -> None:
        """
        @param stream: where lines go (standard output, a file); written
            once per flush, then flushed.
        @param clock: for time stamps and the flush timer.
        @param path: the file C{stream} was opened from, if any, for
            L{reopen}.
        @param system: what the lines name as their source (a worker's
            lines say which worker).
        @param json: write JSON lines (C{--log-format json}).
        """
        self.flushInterval = flushInterval
        self.path = path
        self.json = json
        self._namespace = system
        self._system = f"[{system}#info]"
        self._stream = stream
        self._whole = writtenWhole(stream)
        self._clock = clock
        self._lines: list[str] = []
        self._size = 0
        self._timer: IDelayedCall | None = None
        self._second = -1
        self._stamp = ""
        self._failed = False

    def connectionEnded(
        self, peer: str, closed: str, handshake: HandshakeInfo | None
    ) -> None:
        """
        Log one connection: served, or why its handshake failed.
        """
        now = self._clock.seconds()
        if self.json:
            line = jsonConnectionLine(now, self._namespace, peer, closed, handshake)
        else:
            second = int(now)
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(second))
            line = f"{self._stamp} {self._system} {connectionLine(peer, closed, handshake)}\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.bufferLimit:
            self.flush()
        elif self._timer is None:
            self._timer = self._clock.callLater(self.flushInterval, self.flush)

    def flush(self) -> None:
        """
        Write out every buffered line now.
        """
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines = self._lines
        self._lines = []
        self._size = 0
        try:
            if self._whole:
                self._stream.write("".join(lines).encode("utf-8", "backslashreplace"))
            else:
                for chunk in atomicChunks(lines):
                    self._stream.write(chunk)
            self._stream.flush()
        except (OSError, ValueError) as e:
            if not self._failed:
                self._failed = True
                _log.error(
                    "cannot write the connection log: {error}; its lines are lost",
                    error=str(e),
                )

    @classmethod
    def toFile(
        cls, path: str, clock: IReactorTime, system: str = ACCESS_SYSTEM, json: bool = False
    ) -> AccessLog:
        """
        An access log appending to the file at C{path}, never through a
        symbolic link (L{tlsreply.tls.safefiles.openToAppend}).

        @raise OSError: if it cannot be opened, or is a symbolic link.
        """
        return cls(openToAppend(path), clock, path=path, system=system, json=json)

    def reopen(self) -> None:
        """
        Write out the buffer and open the file again (after it was rotated
        away, as logrotate does before sending SIGHUP). Logs, and keeps the
        old file, if it cannot.
        """
        self.flush()
        if self.path is None:
            return
        try:
            stream = openToAppend(self.path)
        except OSError as e:
            _log.error(
                "cannot reopen the connection log {path}: {error}; still "
                "writing to the old file",
                path=self.path,
                error=e.strerror or str(e),
            )
            return
        self._stream.close()
        self._stream = stream
        self._whole = writtenWhole(stream)
        self._failed = False
