"""
Tests for L{tlsreply.replies.decodeReplyText}: the C{--reply} text an
operator types becomes the exact bytes the server sends.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tlsreply.errors import ConfigurationError
from tlsreply.replies import (
    decodeReplyText,
    httpResponse,
    reasonPhrase,
    statusHasNoBody,
)


class DecodeReplyTextTests(SynchronousTestCase):
    """
    Backslash escapes are decoded the way C{printf} does, everything else
    is UTF-8.
    """

    def test_newline(self) -> None:
        """
        The default reply as typed on a command line, C{test\\n}, is the
        four letters and a newline byte.
        """
        self.assertEqual(decodeReplyText("test\\n"), b"test\n")

    def test_plainText(self) -> None:
        """
        Text without backslashes is sent as it is.
        """
        self.assertEqual(decodeReplyText("hello world"), b"hello world")

    def test_everySimpleEscape(self) -> None:
        """
        Each documented single-character escape gives its control byte.
        """
        for escape, expected in [
            ("\\\\", b"\\"),
            ("\\n", b"\n"),
            ("\\r", b"\r"),
            ("\\t", b"\t"),
            ("\\0", b"\x00"),
            ("\\a", b"\x07"),
            ("\\b", b"\x08"),
            ("\\f", b"\x0c"),
            ("\\v", b"\x0b"),
            ("\\e", b"\x1b"),
        ]:
            self.assertEqual(decodeReplyText(escape), expected, escape)
            self.assertEqual(
                decodeReplyText("<" + escape + ">"), b"<" + expected + b">", escape
            )

    def test_httpResponse(self) -> None:
        """
        Escapes mix with text: an HTTP response with CRLF line ends.
        """
        self.assertEqual(
            decodeReplyText("HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n"),
            b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
        )

    def test_escapedBackslashIsNotAnEscape(self) -> None:
        """
        An escaped backslash ends the escape: C{\\\\n} is a backslash and
        the letter n, and C{\\\\q} is not an unknown escape.
        """
        self.assertEqual(decodeReplyText("\\\\n"), b"\\n")
        self.assertEqual(decodeReplyText("\\\\q"), b"\\q")

    def test_hexEscapesAreRawBytes(self) -> None:
        """
        C{\\xHH} gives the byte HH itself, not its UTF-8 encoding, in either
        case of hex digits.
        """
        self.assertEqual(decodeReplyText("\\x00\\xff"), b"\x00\xff")
        self.assertEqual(decodeReplyText("\\xAB\\xab\\x7F"), b"\xab\xab\x7f")

    def test_hexEscapeTakesTwoDigits(self) -> None:
        """
        A hex escape takes exactly two digits; a third is ordinary text.
        """
        self.assertEqual(decodeReplyText("\\x414"), b"A4")

    def test_nonASCIIIsUTF8(self) -> None:
        """
        Characters outside ASCII are encoded as UTF-8, unlike C{\\xHH}.
        """
        self.assertEqual(decodeReplyText("é €"), "é €".encode())
        self.assertEqual(decodeReplyText("é"), b"\xc3\xa9")
        self.assertEqual(decodeReplyText("\\xe9"), b"\xe9")

    def assertBadReply(self, text: str, *fragments: str) -> str:
        """
        C{text} is refused with a one-line L{ConfigurationError} containing
        every one of C{fragments}.

        @return: the message.
        """
        error = self.assertRaises(ConfigurationError, decodeReplyText, text)
        message = str(error)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def test_unknownEscape(self) -> None:
        """
        An unknown escape is refused, naming it and its position.
        """
        self.assertBadReply("ab\\q", "\\q", "position 2")

    def test_incompleteHexEscape(self) -> None:
        """
        C{\\x} with fewer than two hex digits is refused, naming the escape
        and its position.
        """
        self.assertBadReply("ab\\x4", "\\x", "position 2")
        self.assertBadReply("\\xg0", "\\x", "position 0")

    def test_trailingBackslash(self) -> None:
        """
        A lone backslash at the end is refused, saying so and where.
        """
        self.assertBadReply("abc\\", "trailing \\", "position 3")

    def test_errorIsOneLineEvenForMultiLineText(self) -> None:
        """
        The message quotes the text with its newlines escaped, so that it
        stays on one line.
        """
        self.assertBadReply("line one\nline two \\q", "\\q", "position 18")

    def test_emptyReply(self) -> None:
        """
        An empty reply is refused: the server must send at least one byte.
        """
        self.assertBadReply("", "empty")

    def test_textThatIsNotUTF8(self) -> None:
        """
        Command-line bytes that are not UTF-8 reach Python as lone
        surrogates; they are refused with a L{ConfigurationError} naming
        the position, not a L{UnicodeEncodeError} traceback.
        """
        self.assertBadReply("ab\udcff", "UTF-8", "position 2")


class HTTPResponseTests(SynchronousTestCase):
    """
    L{httpResponse} frames a body as an HTTP/1.1 response with a chosen
    status and header fields, and refuses what would break the framing.
    """

    def test_default(self) -> None:
        """
        Without a status or headers it is the same C{200 OK} response as
        before statuses and headers could be chosen, byte for byte.
        """
        self.assertEqual(
            httpResponse(b"ok\n"),
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 3\r\n"
            b"Cache-Control: no-store\r\n"
            b"Connection: close\r\n"
            b"\r\n"
            b"ok\n",
        )

    def test_standardReasonPhrase(self) -> None:
        """
        The status line carries the code's standard reason phrase.
        """
        for status, line in [
            (201, b"HTTP/1.1 201 Created\r\n"),
            (301, b"HTTP/1.1 301 Moved Permanently\r\n"),
            (404, b"HTTP/1.1 404 Not Found\r\n"),
            (418, b"HTTP/1.1 418 I'm a Teapot\r\n"),
            (503, b"HTTP/1.1 503 Service Unavailable\r\n"),
        ]:
            self.assertTrue(httpResponse(b"x", status).startswith(line), status)

    def test_unknownCodeGetsItsClassName(self) -> None:
        """
        A code without a registered phrase gets its class's name (RFC 9110,
        section 15), so the status line is never empty-handed.
        """
        self.assertEqual(reasonPhrase(299), "Success")
        self.assertEqual(reasonPhrase(199), "Informational")
        self.assertEqual(reasonPhrase(399), "Redirection")
        self.assertEqual(reasonPhrase(499), "Client Error")
        self.assertEqual(reasonPhrase(599), "Server Error")
        self.assertTrue(
            httpResponse(b"x", 599).startswith(b"HTTP/1.1 599 Server Error\r\n")
        )

    def test_statusOutOfRange(self) -> None:
        """
        Only 100 to 599 are statuses; anything else, a bool included, is
        refused with a message naming the value.
        """
        for status in (99, 600, 0, -200, True, 200.0, "200"):
            error = self.assertRaises(ConfigurationError, httpResponse, b"x", status)
            self.assertIn("100 to 599", str(error))
            self.assertIn(repr(status), str(error))

    def test_headersAreAdded(self) -> None:
        """
        Configured headers follow tlsreply's, in their order, repeats
        included.
        """
        response = httpResponse(
            b"ok", 200, [("X-One", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
        )
        head, body = response.split(b"\r\n\r\n")
        self.assertEqual(body, b"ok")
        self.assertEqual(
            head.split(b"\r\n")[-4:],
            [b"Connection: close", b"X-One: 1", b"Set-Cookie: a=1", b"Set-Cookie: b=2"],
        )

    def test_headerReplacesDefault(self) -> None:
        """
        A configured C{Content-Type} or C{Cache-Control}, in any case,
        replaces tlsreply's default instead of being sent beside it.
        """
        response = httpResponse(
            b"{}",
            200,
            [("content-type", "application/json"), ("Cache-Control", "max-age=60")],
        )
        self.assertNotIn(b"text/plain", response)
        self.assertNotIn(b"no-store", response)
        self.assertIn(b"\r\ncontent-type: application/json\r\n", response)
        self.assertIn(b"\r\nCache-Control: max-age=60\r\n", response)
        self.assertEqual(response.count(b"Content-Length: 2\r\n"), 1)

    def test_framingHeadersRefused(self) -> None:
        """
        C{Content-Length}, C{Connection} and C{Transfer-Encoding} frame the
        response, so they stay tlsreply's: configuring one is an error that
        says so.
        """
        for name in ("Content-Length", "connection", "Transfer-Encoding"):
            error = self.assertRaises(
                ConfigurationError, httpResponse, b"x", 200, [(name, "1")]
            )
            self.assertIn(name, str(error))
            self.assertIn("tlsreply sets", str(error))

    def test_badHeaderName(self) -> None:
        """
        A name that is not an RFC 9110 token (empty, a space, a colon, a
        non-ASCII letter) is refused, quoting it.
        """
        for name in ("", "X Y", "X:Y", "Ä", "X\r\nY"):
            error = self.assertRaises(
                ConfigurationError, httpResponse, b"x", 200, [(name, "v")]
            )
            self.assertIn(repr(name), str(error))
            self.assertIn("token", str(error))
            self.assertNotIn("\n", str(error))

    def test_badHeaderValue(self) -> None:
        """
        A CR, LF or NUL in a value, which would end the field or the header
        early, is refused, naming the header and the position.
        """
        for value, position in (("a\r\nX-Injected: 1", 1), ("ab\n", 2), ("\x00", 0)):
            error = self.assertRaises(
                ConfigurationError, httpResponse, b"x", 200, [("X-Test", value)]
            )
            self.assertIn("X-Test", str(error))
            self.assertIn(f"position {position}", str(error))
            self.assertNotIn("\n", str(error))

    def test_valuesAreUTF8(self) -> None:
        """
        A value may hold text beyond ASCII, a tab and spaces; it is sent as
        UTF-8.
        """
        response = httpResponse(b"x", 200, [("X-Name", "é\tb c")])
        self.assertIn("\r\nX-Name: é\tb c\r\n".encode(), response)

    def test_valueThatIsNotUTF8(self) -> None:
        """
        Command-line bytes that are not UTF-8 (lone surrogates) are refused
        with a message naming the header, not a L{UnicodeEncodeError}.
        """
        error = self.assertRaises(
            ConfigurationError, httpResponse, b"x", 200, [("X-Test", "a\udcff")]
        )
        self.assertIn("X-Test", str(error))
        self.assertIn("UTF-8", str(error))

    def test_headerNotAPair(self) -> None:
        """
        A header that is not a (name, value) pair, such as a bare string,
        is refused rather than read letter by letter.
        """
        for header in ("X-A: b", ("X-A",), ("X-A", "b", "c"), ("X-A", 1)):
            self.assertRaises(ConfigurationError, httpResponse, b"x", 200, [header])

    def test_noBodyStatuses(self) -> None:
        """
        1xx, 204 and 304 responses end at their header: the body, and with
        it C{Content-Length} and the default C{Content-Type}, is left out.
        """
        for status in (100, 101, 103, 204, 304):
            self.assertTrue(statusHasNoBody(status), status)
            response = httpResponse(b"ignored", status)
            self.assertTrue(response.endswith(b"\r\n\r\n"), status)
            self.assertNotIn(b"ignored", response)
            self.assertNotIn(b"Content-Length", response)
            self.assertNotIn(b"Content-Type", response)
        for status in (200, 205, 303, 404):
            self.assertFalse(statusHasNoBody(status), status)
            self.assertTrue(httpResponse(b"kept", status).endswith(b"\r\n\r\nkept"))

    def test_emptyBody(self) -> None:
        """
        An empty body is a response of length 0.
        """
        self.assertTrue(
            httpResponse(b"").endswith(
                b"Content-Length: 0\r\n"
                b"Cache-Control: no-store\r\n"
                b"Connection: close\r\n\r\n"
            )
        )
