# -*- test-case-name: tests.test_protocol -*-
"""
How far a TCP connection has got in delivering what was written to it.

After the reply and close_notify, tlsreply gives the client
C{--close-timeout} seconds to close. A large reply to a slow reader can
still be on its way then; cutting it off would truncate the reply without
any error. So before giving up, tlsreply asks the kernel whether bytes are
still queued and whether the peer has acknowledged more of them since the
last look: a client that is still reading keeps its connection, one that
has stopped (a zero receive window) does not.

Linux only (C{TIOCOUTQ}, C{TCP_INFO}); elsewhere, and for sockets that are
not TCP, both answers are C{None} and the timeout simply applies.
"""

from __future__ import annotations

import socket
import struct

try:
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # not Linux
    _OUTQ = None

#: Offset of C{tcpi_bytes_acked} (a C{__u64}) in Linux's C{struct tcp_info}
#: (since Linux 4.1).
_BYTES_ACKED_OFFSET = 120


def unsentBytes(sock: socket.socket) -> int | None:
    """
    Bytes written to C{sock} that the peer has not acknowledged yet, or
    C{None} if the kernel does not say.
    """
    if _OUTQ is None:
        return None
    try:
        raw = fcntl.ioctl(sock.fileno(), _OUTQ, struct.pack("i", 0))
    except (OSError, ValueError):
        return None
    return int(struct.unpack("i", raw)[0])


def bytesAcknowledged(sock: socket.socket) -> int | None:
    """
    How many bytes the peer has acknowledged over the connection's life, or
    C{None} if the kernel does not say.
    """
    tcpInfo = getattr(socket, "TCP_INFO", None)
    if tcpInfo is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, tcpInfo, 256)
    except (OSError, ValueError):
        return None
    if len(info) < _BYTES_ACKED_OFFSET + 8:
        return None
    return int(struct.unpack_from("Q", info, _BYTES_ACKED_OFFSET)[0])
