"""
Properties of the ClientHello readers (L{tlsreply.clienthello.parser}'s
quick scan and full parser, and L{tlsreply.clienthello.peek}, the socket path's
look), over random and mutated hellos, with C{hypothesis}; OpenSSL itself
(pyOpenSSL over memory BIOs) is the judge of what a hello is.

What must hold:
  - no bytes make a reader raise anything but L{NotAClientHello};
  - however a hello is cut into records and reads, it parses the same;
  - where OpenSSL accepts a hello, the quick scan, the full parser and
    OpenSSL agree on the server name it asks for (so both connection
    paths choose the same certificate and session cache for it);
  - no reader holds bytes that OpenSSL would already answer: while the
    socket path waits for more bytes, and while the memory-BIO path's
    parser does, OpenSSL given the same bytes is still waiting too.

The number of examples comes from a hypothesis settings profile
(L{tests.hypothesisprofiles}), named by C{TLSREPLY_HYPOTHESIS_PROFILE}: C{ci} (the default, a bounded and
repeatable run) or C{fuzz} (C{make fuzz}: a long random campaign,
C{TLSREPLY_FUZZ_EXAMPLES} examples per property).
"""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Callable

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import assume, given
from hypothesis import strategies as st
from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from tests import hypothesisprofiles  # noqa: F401  (the settings profile)
from tests.test_clienthello import (
    alpnExtension,
    extension,
    groupsExtension,
    helloMessage,
    serverNameExtension,
    signaturesExtension,
    vector,
    versionsExtension,
)
from tlsreply.clienthello.offered import ClientHello, printableASCII
from tlsreply.clienthello.parser import (
    NOT_A_HELLO,
    SPANS_RECORDS,
    ClientHelloParser,
    NotAClientHello,
    scanClientHello,
)
from tlsreply.clienthello.peek import HelloPeek
from tlsreply.testing.inmemory import firstFlight

#: How many examples each property ran, for C{make fuzz}'s report.
EXAMPLES: Counter[str] = Counter()


def counted(name: str) -> None:
    """
    Count one example of the property C{name}.
    """
    EXAMPLES[name] += 1


# OpenSSL, the judge.


class OpenSSLServer:
    """
    An OpenSSL server that is given bytes over a memory BIO and says what
    it made of them.
    """

    def __init__(self) -> None:
        ca = trustme.CA()
        issued = ca.issue_cert("localhost")
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.use_certificate(
            x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes())
        )
        key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        context.use_privatekey(key)
        self._names: list[bytes | None] = []
        context.set_tlsext_servername_callback(
            lambda connection: self._names.append(connection.get_servername())
        )
        self._context = context

    def serve(self, data: bytes) -> tuple[bool, bytes | None, bool]:
        """
        Give C{data} to a new server connection.

        @return: whether OpenSSL read a ClientHello it accepts (it asked
            for the server name, which it does once the hello has parsed);
            the server name it read; and whether it is still waiting for
            bytes without having answered (no error, nothing written).
        """
        if not data:
            return False, None, True
        self._names.clear()
        connection = SSL.Connection(self._context, None)
        connection.set_accept_state()
        connection.bio_write(data)
        waiting = True
        try:
            connection.do_handshake()
        except SSL.WantReadError:
            pass
        except SSL.Error:
            waiting = False
        else:
            waiting = False
        try:
            if connection.bio_read(65536):
                waiting = False
        except SSL.WantReadError:
            pass
        accepted = bool(self._names)
        return accepted, self._names[0] if accepted else None, waiting


OPENSSL = OpenSSLServer()


def opensslName(name: bytes | None) -> str | None:
    """
    The server name OpenSSL read, as tlsreply's readers give it.
    """
    if name is None:
        return None
    return printableASCII(name).lower().rstrip(".") or None


# What the readers say.


def parseAll(data: bytes, cuts: list[int] | None = None) -> ClientHello | None | str:
    """
    What the full parser makes of C{data}, fed in pieces cut at C{cuts}:
    a hello, L{None} (it wants more), or the text of its refusal.
    """
    parser = ClientHelloParser()
    offsets = [0, *sorted({c for c in cuts or () if 0 < c < len(data)}), len(data)]
    try:
        for start, end in zip(offsets, offsets[1:], strict=False):
            hello = parser.feed(data[start:end])
            if hello is not None:
                return hello
    except NotAClientHello as refusal:
        return f"refused: {refusal}"
    return None


def peekAll(data: bytes, arrivals: list[int]) -> tuple[HelloPeek, list[int]]:
    """
    What the socket path makes of C{data} arriving at the offsets in
    C{arrivals}: it looks at each arrival that reaches the bytes its last
    look asked for, as the kernel's low-water mark wakes it.

    @return: the look, and the number of bytes each look that did not
        start TLS asked for (each more than the bytes it saw).
    """
    peek = HelloPeek(wantHello=True)
    waits: list[int] = []
    waitFor = 1
    for arrived in [*sorted({a for a in arrivals if 0 < a < len(data)}), len(data)]:
        if arrived < waitFor:
            continue
        buffer = bytearray(data[:arrived]) + bytearray(b"\xaa" * 64)
        waitFor = peek.look(buffer, arrived)
        if not waitFor:
            break
        assert waitFor > arrived, (waitFor, arrived)
        waits.append(waitFor)
    return peek, waits


# Hellos to start from.

_CLIENT = ssl.create_default_context()
_CLIENT.check_hostname = False
_CLIENT.verify_mode = ssl.CERT_NONE
_TLS12 = ssl.create_default_context()
_TLS12.check_hostname = False
_TLS12.verify_mode = ssl.CERT_NONE
_TLS12.maximum_version = ssl.TLSVersion.TLSv1_2


def handshakeMessage(flight: bytes) -> bytes:
    """
    The handshake bytes of a flight of records.
    """
    out, offset = b"", 0
    while offset + 5 <= len(flight):
        length = int.from_bytes(flight[offset + 3 : offset + 5], "big")
        out += flight[offset + 5 : offset + 5 + length]
        offset += 5 + length
    return out


#: Real hellos (Python's C{ssl}: TLS 1.3 and 1.2 clients, with and without
#: a name), as handshake messages.
REAL_HELLOS = [
    handshakeMessage(firstFlight(context, name))
    for context in (_CLIENT, _TLS12)
    for name in ("example.com", "Mixed.Case.Example.", None)
]

#: The extensions a TLS 1.3 hello needs for OpenSSL to answer it.
TLS13_EXTENSIONS = [
    versionsExtension(0x0304, 0x0303),
    groupsExtension(0x001D, 0x0017),
    signaturesExtension(0x0403, 0x0804, 0x0401),
    extension(51, vector(2, b"\x00\x1d" + vector(2, bytes(range(32))))),
]

hostNames = st.one_of(
    st.from_regex(rb"\A[a-zA-Z0-9][a-zA-Z0-9.-]{0,60}\.?\Z"),
    st.binary(max_size=80),
    st.sampled_from([b"", b".", b"..", b"a.", b"A\\B", b"\x1b[31m", b"x" * 256]),
)


@st.composite
def serverNameExtensions(draw: st.DrawFn) -> bytes:
    """
    A server_name extension: well formed with one name mostly, else with
    several entries or other name types, lengths off by a little, or a
    body of random bytes.
    """
    kind = draw(st.sampled_from(["one", "one", "one", "several", "lengths", "raw"]))
    if kind == "one":
        return serverNameExtension((0, draw(hostNames)))
    if kind == "several":
        entries = draw(
            st.lists(st.tuples(st.sampled_from([0, 0, 1, 255]), hostNames), min_size=0, max_size=3)
        )
        return serverNameExtension(*entries)
    if kind == "lengths":
        name = draw(hostNames)
        listDelta, nameDelta = draw(st.integers(-3, 3)), draw(st.integers(-3, 3))
        entry = b"\x00" + max(0, len(name) + nameDelta).to_bytes(2, "big") + name
        body = max(0, len(entry) + listDelta).to_bytes(2, "big") + entry
        return extension(0, body)
    return extension(0, draw(st.binary(max_size=40)))


otherExtensions = st.one_of(
    st.builds(alpnExtension, st.binary(min_size=1, max_size=10)),
    st.just(extension(42)),  # early_data
    st.builds(
        extension,
        st.integers(0, 0xFFFF).filter(lambda kind: kind not in (0, 43, 51)),
        st.binary(max_size=30),
    ),
)


@st.composite
def builtHellos(draw: st.DrawFn) -> bytes:
    """
    A TLS 1.3 ClientHello message that OpenSSL answers unless its server
    name or extra extensions spoil it: a server name drawn from
    L{serverNameExtensions}, sometimes two, and other extensions, in any
    order.
    """
    extensions = list(TLS13_EXTENSIONS)
    extensions += draw(st.lists(serverNameExtensions(), min_size=0, max_size=2))
    extensions += draw(st.lists(otherExtensions, max_size=3))
    order = draw(st.permutations(range(len(extensions))))
    return helloMessage([extensions[i] for i in order], cipherSuites=(0x1301, 0x1302))


@st.composite
def mutatedHellos(draw: st.DrawFn) -> bytes:
    """
    A real or built hello message, changed in a few places: a byte set,
    bytes inserted or deleted, a length field moved by a little, the end
    cut off.
    """
    message = bytearray(draw(st.one_of(st.sampled_from(REAL_HELLOS), builtHellos())))
    for _ in range(draw(st.integers(0, 3))):
        if not message:
            break
        position = draw(st.integers(0, len(message) - 1))
        change = draw(st.sampled_from(["set", "insert", "delete", "length", "truncate"]))
        if change == "set":
            message[position] = draw(st.integers(0, 255))
        elif change == "insert":
            message[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif change == "delete":
            del message[position : position + draw(st.integers(1, 8))]
        elif change == "length":
            size = draw(st.integers(1, 3))
            field = message[position : position + size]
            value = int.from_bytes(field, "big") + draw(st.integers(-4, 4))
            message[position : position + len(field)] = (value % (1 << (8 * len(field)))).to_bytes(
                len(field), "big"
            )
        else:
            del message[position:]
    return bytes(message)


def inRecords(message: bytes, sizes: list[int], contentType: int = 22) -> bytes:
    """
    C{message} in handshake records of the given sizes, in turn (the last
    size repeated), none over 2^14 bytes.
    """
    out, offset, index = b"", 0, 0
    while offset < len(message):
        size = max(1, min(16384, sizes[min(index, len(sizes) - 1)]))
        out += bytes([contentType]) + b"\x03\x01" + vector(2, message[offset : offset + size])
        offset += size
        index += 1
    return out


recordSizes = st.lists(st.integers(1, 400), min_size=1, max_size=6)
cutPoints = st.lists(st.integers(0, 3000), max_size=6)

#: Records that cannot continue a hello: other content types (empty,
#: padded, of any length), a major version other than 3, and lengths no
#: record may have, header only.
interruptions = st.one_of(
    st.builds(
        lambda kind, body: bytes([kind]) + b"\x03\x03" + vector(2, body),
        st.integers(0, 255).filter(lambda kind: kind != 22),
        st.binary(max_size=24),
    ),
    st.builds(
        lambda kind, length: bytes([kind]) + b"\x03\x03" + length.to_bytes(2, "big"),
        st.integers(0, 255),
        st.integers(16385, 0xFFFF),
    ),
    st.builds(lambda major: bytes([22, major, 3, 0, 4]), st.integers(0, 255).filter(lambda m: m != 3)),
    st.just(b"\x16\x03\x03\x00\x00"),
)


def assertReaderContract(testCase: SynchronousTestCase, read: Callable[[], object]) -> object:
    """
    C{read()}, which may return anything or raise L{NotAClientHello} (then
    L{None}), but raise nothing else.
    """
    try:
        return read()
    except NotAClientHello:
        return None


class NeverRaisesTests(SynchronousTestCase):
    """
    No bytes, however cut, make a reader raise anything but
    L{NotAClientHello}.
    """

    @given(
        st.one_of(
            st.binary(max_size=600),
            st.builds(inRecords, mutatedHellos(), recordSizes),
            st.builds(lambda m: inRecords(m, [16384]), mutatedHellos()),
        ),
        cutPoints,
    )
    def test_anyBytes(self, data: bytes, cuts: list[int]) -> None:
        """
        Random bytes and mutated hellos in records, fed whole or in pieces,
        to the parser, the scan (which must also read nothing past the
        length it is given) and the socket path's look.
        """
        counted("never raises")
        whole = parseAll(data)
        self.assertEqual(repr(parseAll(data, cuts)), repr(whole))
        for length in {len(data), *(c for c in cuts if c < len(data))}:
            status, name, early = scanClientHello(data, length)
            self.assertTrue(status in (0, NOT_A_HELLO, SPANS_RECORDS) or status > length)
            # The bytes after the length do not count.
            for junk in (b"\x00", b"\xff"):
                padded = bytearray(data[:length]) + bytearray(junk * 600)
                self.assertEqual(scanClientHello(padded, length), (status, name, early))
        peek, _ = peekAll(data, cuts)
        self.assertIsInstance(peek.serverName, (str, type(None)))


class SplitsTests(SynchronousTestCase):
    """
    However a hello is cut into records and reads, it reads the same.
    """

    @given(st.one_of(st.sampled_from(REAL_HELLOS), builtHellos()), recordSizes, cutPoints)
    def test_recordsAndReads(self, message: bytes, sizes: list[int], cuts: list[int]) -> None:
        """
        A hello split into records of random sizes, arriving in random
        pieces, gives the parser and the socket path's look the same hello
        as one record read at once.
        """
        counted("splits")
        expected = parseAll(inRecords(message, [16384]))
        flight = inRecords(message, sizes)
        self.assertEqual(parseAll(flight, cuts), expected)
        peek, _ = peekAll(flight, cuts)
        if isinstance(expected, ClientHello):
            self.assertEqual(peek.clientHello, expected)
            self.assertEqual(peek.serverName, expected.serverName)
            self.assertEqual(peek.earlyDataOffered, expected.earlyDataOffered)


class AgreementTests(SynchronousTestCase):
    """
    Where OpenSSL accepts a hello, every reader reads the server name it
    reads.
    """

    @given(st.one_of(builtHellos(), mutatedHellos()), recordSizes, st.booleans())
    def test_serverName(self, message: bytes, sizes: list[int], oneRecord: bool) -> None:
        """
        The quick scan (a hello in one record), the full parser, the
        socket path's look and OpenSSL agree on the server name of every
        hello OpenSSL accepts; the scan and the parser agree that it is a
        hello at all.
        """
        counted("agreement")
        flight = inRecords(message, [16384] if oneRecord else sizes)
        accepted, name, _ = OPENSSL.serve(flight)
        assume(accepted)
        counted("agreement (accepted by OpenSSL)")
        expected = opensslName(name)
        hello = parseAll(flight)
        assert isinstance(hello, ClientHello), hello
        self.assertEqual(hello.serverName, expected)
        status, scanned, early = scanClientHello(flight, len(flight))
        if status != SPANS_RECORDS:
            self.assertEqual((status, scanned, early), (0, expected, hello.earlyDataOffered))
        peek, _ = peekAll(flight, [])
        self.assertEqual(peek.serverName, expected)


    @given(st.one_of(mutatedHellos(), st.binary(max_size=300)))
    def test_scanAgreesWithTheParser(self, message: bytes) -> None:
        """
        On any hello in one record, accepted by OpenSSL or not, the quick
        scan and the full parser agree: on whether it is a hello at all,
        on its server name and on its 0-RTT offer (unless the scan leaves
        it to the parser).
        """
        counted("scan agrees")
        flight = inRecords(message, [16384])
        assume(0 < len(message) <= 16384)
        status, name, early = scanClientHello(flight, len(flight))
        hello = parseAll(flight)
        if status == SPANS_RECORDS:
            # The hello says it is longer than its record: the parser
            # reads it, on both paths.
            self.assertNotIsInstance(hello, ClientHello)
        elif isinstance(hello, ClientHello):
            self.assertEqual((status, name, early), (0, hello.serverName, hello.earlyDataOffered))
        elif hello is None:
            self.assertGreater(status, len(flight))
        else:
            self.assertEqual(status, NOT_A_HELLO, hello)


class NoLaterThanOpenSSLTests(SynchronousTestCase):
    """
    While a reader waits for more bytes, OpenSSL given the same bytes has
    not answered them either: whatever OpenSSL answers at once, both paths
    hand to it at once.
    """

    @given(
        st.one_of(st.sampled_from(REAL_HELLOS), mutatedHellos()),
        recordSizes,
        st.integers(0, 2000),
        st.one_of(interruptions, st.binary(max_size=12), st.just(b"")),
        cutPoints,
    )
    def test_interruptedHello(
        self, message: bytes, sizes: list[int], keep: int, interruption: bytes, cuts: list[int]
    ) -> None:
        """
        Part of a hello in records, then a record that cannot continue it
        (or anything), arriving in random pieces: when the socket path
        waits for more, OpenSSL, given every byte before the point it waits
        for, is still waiting; so it is at any point where the memory-BIO
        path's parser still waits.
        """
        counted("no later than OpenSSL")
        flight = inRecords(message, sizes)
        fragment = flight[: min(keep, len(flight))]
        data = fragment + interruption
        # The client pauses before the interruption, as well as at random.
        cuts = [*cuts, len(fragment)]
        _, waits = peekAll(data, cuts)
        if waits:
            counted("no later than OpenSSL (socket path waited)")
        for waitFor in waits:
            # OpenSSL, with every byte before the socket path looks again.
            _, _, waiting = OPENSSL.serve(data[: waitFor - 1])
            self.assertTrue(waiting, f"socket path waits for {waitFor} of {data.hex()}")
        for cut in [*cuts, len(data)]:
            prefix = data[: min(cut, len(data))]
            if parseAll(prefix) is None:
                _, _, waiting = OPENSSL.serve(prefix)
                self.assertTrue(waiting, f"memory path waits on {prefix.hex()}")
