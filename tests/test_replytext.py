"""
Tests for L{tlsreply.replies.decodeReplyText}: the C{--reply} text an
operator types becomes the exact bytes the server sends.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tlsreply.errors import ConfigurationError
from tlsreply.replies import decodeReplyText


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
