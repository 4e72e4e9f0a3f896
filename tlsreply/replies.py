# -*- test-case-name: tests.test_replytext,tests.test_http -*-
"""
Turning the C{--reply} text an operator types into the bytes sent, and a
body into the HTTP response C{--http} sends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Final

from tlsreply import values
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


#: Header fields whose value is tlsreply's own: they frame the response
#: (an exact length, then the close), so a configured header may not set
#: them.
FRAMING_HEADERS: Final = ("Content-Length", "Connection", "Transfer-Encoding")

#: The default header fields a configured header of the same name replaces.
DEFAULT_HEADERS: Final = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Cache-Control", "no-store"),
)

#: The reason phrase for a status code that C{http.HTTPStatus} does not
#: know: its class's name (RFC 9110, section 15).
_CLASS_PHRASES: Final = {
    1: "Informational",
    2: "Success",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
}

# RFC 9110, section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FORBIDDEN_IN_VALUE = re.compile(r"[\r\n\x00]")


def statusHasNoBody(status: int) -> bool:
    """
    Whether a response with this status ends at its header: 1xx, 204 and
    304 (RFC 9110, sections 6.4.1 and 8.6).
    """
    return status < 200 or status in (204, 304)


def reasonPhrase(status: int) -> str:
    """
    The standard reason phrase of C{status} (C{404} gives C{"Not Found"}),
    or its class's name for a code without one (C{299} gives
    C{"Success"}).

    @raise ConfigurationError: if C{status} is not a whole number from 100
        to 599 (L{tlsreply.values.httpStatus}).
    """
    values.httpStatus(status)
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _CLASS_PHRASES[status // 100]


def checkHeader(name: str, value: str) -> None:
    """
    Refuse a header field tlsreply cannot send as given.

    @raise ConfigurationError: naming the problem, if C{name} is not an
        RFC 9110 token, C{value} holds a CR, LF or NUL (which would end the
        field or the header early), either is not a string, or C{name} is
        one of L{FRAMING_HEADERS}; or C{value} cannot be UTF-8 (bytes
        on the command line that are not UTF-8 arrive as lone surrogates).
    """
    if not isinstance(name, str) or not isinstance(value, str):
        raise ConfigurationError(
            f"HTTP header {name!r}: expected a name and a value as text, got {value!r}"
        )
    if not _TOKEN.match(name):
        raise ConfigurationError(
            f"HTTP header name {name!r} is not a token (letters, digits and "
            "!#$%&'*+-.^_`|~ only, at least one)"
        )
    for framing in FRAMING_HEADERS:
        if name.lower() == framing.lower():
            raise ConfigurationError(
                f"HTTP header {name}: tlsreply sets {framing} itself (the response "
                "ends after its Content-Length, then the connection closes)"
            )
    forbidden = _FORBIDDEN_IN_VALUE.search(value)
    if forbidden:
        raise ConfigurationError(
            f"HTTP header {name}: its value {value!r} holds {forbidden.group()!r} at "
            f"position {forbidden.start()}; CR, LF and NUL are not allowed in a value"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConfigurationError(
            f"HTTP header {name}: its value {value!r} is not valid UTF-8 at position {e.start}"
        ) from None


def parseHeaderLine(line: str) -> tuple[str, str]:
    """
    A header field as typed on a command line, C{"Name: value"}, as a
    checked C{(name, value)} pair; the spaces and tabs around the value
    are not part of it (RFC 9110, section 5.5), and no space may come
    before the colon.

    @raise ConfigurationError: without a colon or a name, or for a field
        L{checkHeader} refuses.
    """
    name, colon, value = line.partition(":")
    if not colon or not name:
        raise ConfigurationError(f"expected 'Name: value', got {line!r}")
    value = value.strip(" \t")
    checkHeader(name, value)
    return name, value


def httpResponse(
    body: bytes, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """
    Wrap a reply in a minimal HTTP/1.1 response, so that curl, browsers and
    HTTP health checks can use tlsreply directly (C{--http}).

    The response is sent whatever the request: the reply does not depend on
    it (a C{HEAD} request gets the body too). C{Connection: close} and an
    exact C{Content-Length} tell the client the response is complete before
    the connection closes.

    @param body: the body.
    @param status: the status code, 100 to 599; the status line carries its
        standard reason phrase (L{reasonPhrase}). A 1xx, 204 or 304 response
        ends at its header (L{statusHasNoBody}): C{body} is left out, and
        with it C{Content-Length}. A 1xx is interim: sent alone, it is an
        interim response with no final one before the connection closes,
        which is what a test of a client's handling of that wants.
    @param headers: header fields to send, in order, as C{(name, value)}
        pairs; a name may repeat (C{Set-Cookie}). A field named as one of
        L{DEFAULT_HEADERS} (C{Content-Type: text/plain; charset=utf-8},
        C{Cache-Control: no-store}), in any case, replaces that default.
        Values are sent as UTF-8.

    @raise ConfigurationError: for a status outside 100 to 599, or a header
        that L{checkHeader} refuses.
    """
    phrase = reasonPhrase(status)
    headers = tuple(headers)
    for header in headers:
        if (
            isinstance(header, (str, bytes))
            or not isinstance(header, (tuple, list))
            or len(header) != 2
        ):
            raise ConfigurationError(
                f"HTTP header {header!r}: expected a (name, value) pair"
            )
        checkHeader(*header)
    given = {name.lower() for name, _ in headers}
    lines = [f"HTTP/1.1 {status} {phrase}"]
    defaults = {
        name: value for name, value in DEFAULT_HEADERS if name.lower() not in given
    }
    noBody = statusHasNoBody(status)
    if "Content-Type" in defaults and not noBody:
        lines.append(f"Content-Type: {defaults['Content-Type']}")
    if not noBody:
        lines.append(f"Content-Length: {len(body)}")
    if "Cache-Control" in defaults:
        lines.append(f"Cache-Control: {defaults['Cache-Control']}")
    lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in headers)
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8") + (b"" if noBody else body)
