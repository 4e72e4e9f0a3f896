# -*- test-case-name: tests.test_replytext -*-
"""
Turning the C{--reply} text an operator types into the bytes sent.
"""

from __future__ import annotations

import re

from tlsreply.errors import ConfigurationError

_SIMPLE_ESCAPES = {
    "\\": b"\\",
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "0": b"\x00",
    "a": b"\x07",
    "b": b"\x08",
    "f": b"\x0c",
    "v": b"\x0b",
    "e": b"\x1b",
}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.?)", re.DOTALL)


def decodeReplyText(text: str) -> bytes:
    """
    Decode backslash escapes the way C{printf} and C strings do, and encode
    everything else as UTF-8: C{"test\\n"} becomes C{b"test\\n"},
    C{"\\x00\\xff"} becomes C{b"\\x00\\xff"} (raw bytes, not UTF-8).

    Recognised: C{\\\\ \\n \\r \\t \\0 \\a \\b \\f \\v \\e \\xHH}.

    @raise ConfigurationError: for an unknown or incomplete escape (naming
        it and its position), text that cannot be UTF-8 encoded (bytes on
        the command line that are not UTF-8 arrive as lone surrogates), or
        an empty result.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConfigurationError(
            f"reply text {text!r} is not valid UTF-8 at position {e.start}; "
            "write raw bytes as \\xHH"
        ) from None
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        out += text[position : match.start()].encode("utf-8")
        escape = match.group(1)
        if escape.startswith("x") and len(escape) == 3:
            out.append(int(escape[1:], 16))
        elif escape in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[escape]
        else:
            shown = "\\" + escape[:1] if escape else "a trailing \\"
            raise ConfigurationError(
                f"bad escape {shown} at position {match.start()} in reply text "
                f"{text!r} (known: \\\\ \\n \\r \\t \\0 \\a \\b \\f \\v \\e \\xHH)"
            )
        position = match.end()
    out += text[position:].encode("utf-8")
    if not out:
        raise ConfigurationError("the reply is empty; it must be at least one byte")
    return bytes(out)


def httpResponse(body: bytes) -> bytes:
    """
    Wrap a reply in a minimal HTTP/1.1 response, so that curl, browsers and
    HTTP health checks can use tlsreply directly (C{--http}).

    The response is sent whatever the request: the reply does not depend on
    it. C{Connection: close} and an exact C{Content-Length} tell the client
    the response is complete before the connection closes.
    """
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body
