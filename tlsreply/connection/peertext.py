# -*- test-case-name: tests.test_proxyheader,tests.test_proxywire -*-
"""
Text a peer chose, made safe for a log line.

A connection's log line carries what its peer sent: the address a PROXY
header names (a Unix path, any bytes), why its header was refused (with the
bytes quoted), its server name. A line feed there would start a line the
peer wrote (C{[tlsreply#critical] ...}), an escape sequence would reach the
terminal of whoever reads the log. L{escapeText} writes every character
that is not printable as a backslash escape, as Python's C{repr} does
(C{\\x0a}, C{\\x1b}, C{\\u2028}); printable text, the common case, is
returned as it is, at the cost of one C{str.isprintable} call.

Every connection's line goes through L{tlsreply.protocol.ReplyFactory.report},
which escapes its peer and reason with L{escapeText}, on both connection
paths and for every log format. (The server name and ALPN protocol are
made printable ASCII as they are read off the connection,
L{tlsreply.clienthello.offered.printableASCII}; a client certificate's subject is
written with C{repr}.)
"""

from __future__ import annotations


def _escape(character: str) -> str:
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escapeText(text: str) -> str:
    """
    C{text} with every character that is not printable (control
    characters, line and paragraph separators, format characters; not the
    space) written as a backslash escape, so that it stays on one line and
    sends a terminal nothing.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def escapeBytes(data: bytes) -> str:
    """
    Bytes a peer sent, as printable ASCII text: printable ASCII bytes as
    they are, every other byte as C{\\xHH}.
    """
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data)
