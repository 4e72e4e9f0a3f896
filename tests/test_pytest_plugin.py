"""
The pytest fixtures, used the way a TLS client's test suite uses them.

These are pytest tests (the fixtures are pytest's); trial finds no
TestCase here and skips the module.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from dataclasses import dataclass

import pytest

from tests.support import readmeExample, requireTool
from tlsreply.testing.pytest_plugin import ThreadedTestServer


@dataclass
class Fetched:
    """
    What a Python ssl client saw.
    """

    data: bytes
    version: str | None
    session: ssl.SSLSession | None
    sessionReused: bool
    alpnProtocol: str | None


def fetch(server: ThreadedTestServer, context: ssl.SSLContext | None = None,
          session: ssl.SSLSession | None = None) -> Fetched:
    """
    Read the whole reply with Python's ssl, as a client under test would.
    """
    context = context or server.sslContext()
    with socket.create_connection(server.address, timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            data = b""
            while chunk := tls.recv(1024):
                data += chunk
            return Fetched(data, tls.version(), tls.session, bool(tls.session_reused),
                           tls.selected_alpn_protocol())


def test_serverWithPythonSSL(tlsreply_server: ThreadedTestServer) -> None:
    """
    The plain fixture: a verifying Python client gets the reply, and the
    connection is recorded.
    """
    fetched = fetch(tlsreply_server)
    assert fetched.data == b"test\n"
    [record] = tlsreply_server.waitForRecords(1)
    assert record.outcome == "replied"
    assert record.tlsVersion == fetched.version == "TLSv1.3"
    assert record.requestedServerName == "localhost"


def test_caFileWorksForOpenSSL(tlsreply_server: ThreadedTestServer) -> None:
    """
    The CA file is what a command-line client needs: C{openssl s_client}
    verifies the server with it and prints the reply.
    """
    openssl = requireTool("openssl")
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{tlsreply_server.port}",
         "-servername", "localhost", "-CAfile", str(tlsreply_server.caCertificatePath),
         "-verify_return_error", "-ign_eof"],
        input=b"", capture_output=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert b"Verify return code: 0 (ok)" in result.stdout
    assert b"\ntest\n" in result.stdout


def test_recordsShowResumption(tlsreply_server: ThreadedTestServer) -> None:
    """
    "My client resumed its session on the second connect", as an assertion.
    """
    context = tlsreply_server.sslContext()
    first = fetch(tlsreply_server, context)
    second = fetch(tlsreply_server, context, session=first.session)
    records = tlsreply_server.waitForRecords(2)
    assert [r.resumed for r in records] == [False, True]
    assert second.sessionReused


def test_factoryScenarios(tlsreply_server_factory: object) -> None:
    """
    The factory serves scenarios; a correct client refuses an expired
    certificate, and the record says the handshake failed.
    """
    server = tlsreply_server_factory(scenario="expired")  # type: ignore[operator]
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        fetch(server)
    assert "certificate has expired" in caught.value.verify_message
    [record] = server.waitForRecords(1)
    assert record.handshakeFailed


def test_factorySettings(tlsreply_server_factory: object) -> None:
    """
    Custom reply and TLS settings: ALPN is negotiated and recorded.
    """
    server = tlsreply_server_factory(  # type: ignore[operator]
        reply=b"custom\n", alpnProtocols=("h2", "http/1.1")
    )
    context = server.sslContext()
    context.set_alpn_protocols(["http/1.1"])
    fetched = fetch(server, context)
    assert fetched.data == b"custom\n"
    assert fetched.alpnProtocol == "http/1.1"
    [record] = server.waitForRecords(1)
    assert record.alpnProtocol == "http/1.1"
    assert record.offeredALPN == ("http/1.1",)


def test_startsQuickly(tlsreply_server_factory: object) -> None:
    """
    A server starts in well under a second (the CA and certificate are made
    and the port is listening), once the reactor thread runs: typically
    0.05 s, and here within 5 s, the margin a loaded 2-core CI machine
    needs.
    """
    tlsreply_server_factory()  # type: ignore[operator]
    started = time.monotonic()
    tlsreply_server_factory()  # type: ignore[operator]
    assert time.monotonic() - started < 5.0


def test_cleanupAfterFailingTest(pytester: pytest.Pytester) -> None:
    """
    A test that fails still has its server stopped: the port is closed
    once the test run ends.
    """
    pytester.makepyfile(
        test_user="""
        def test_fails(tlsreply_server):
            open("port.txt", "w").write(str(tlsreply_server.port))
            assert False, "the client under test is broken"
        """
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    port = int((pytester.path / "port.txt").read_text())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_readmeExampleRuns(pytester: pytest.Pytester) -> None:
    """
    The complete example in the README's "Testing your TLS client" section
    passes as a user's test file.
    """
    pytester.makepyfile(test_my_client=readmeExample("# test_my_client.py"))
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=2)


def test_readmeOutcomesExampleRuns(pytester: pytest.Pytester) -> None:
    """
    The README's example of expected outcomes across scenarios, a client
    certificate from C{server.ca} and a shaped HTTP response passes as a
    user's test file, every parametrized case included, warning of
    nothing.
    """
    example = readmeExample("# test_my_client_outcomes.py")
    pytester.makepyfile(test_my_client_outcomes=example)
    result = pytester.runpytest_inprocess("-W", "error")
    result.assert_outcomes(passed=9)


def test_expectedOutcomeAndCA(tlsreply_server_factory: object) -> None:
    """
    The fixtures' server says what to expect, as the catalogue does, and
    its CA, used from the test's thread, issues client certificates that
    a server requiring them accepts; without one, the client sees exactly
    the expected message.
    """
    from tlsreply.testing import SCENARIOS, ExpectedOutcome, IssuedCertificate

    server = tlsreply_server_factory(scenario="client-cert-required")  # type: ignore[operator]
    assert isinstance(server.expectedOutcome, ExpectedOutcome)
    assert server.expectedOutcome == SCENARIOS["client-cert-required"].expectedOutcome
    issued = server.ca.issueClientCertificate("carol")
    assert isinstance(issued, IssuedCertificate)
    context = server.sslContext()
    issued.configure(context)
    assert fetch(server, context).data == b"test\n"
    with pytest.raises(ssl.SSLError) as refused:
        fetch(server, ssl.create_default_context(cafile=server.caCertificatePath))
    message = server.expectedOutcome.message
    assert message is not None
    assert message in str(refused.value)
    first, second = server.waitForRecords(2)
    assert first.clientCertificate == "CN=carol,O=tlsreply test"
    assert second.handshakeFailed


@pytest.mark.parametrize(
    "tlsreply_server",
    [{"httpStatus": 302, "httpHeaders": {"Location": "https://localhost/elsewhere"}}],
    indirect=True,
)
def test_indirectHTTPShape(tlsreply_server: ThreadedTestServer) -> None:
    """
    Parametrized indirectly, C{httpStatus} and C{httpHeaders} shape the
    HTTP response, which they make an HTTP response by themselves.
    """
    lines = fetch(tlsreply_server).data.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 302 Found"
    assert b"Location: https://localhost/elsewhere" in lines


def test_crlRevokedOnThePrivateReactor(tlsreply_server_factory: object) -> None:
    """
    C{crl-revoked}'s CRL is served from the fixtures' reactor thread at
    the distribution point its certificate names, and goes when the
    server stops.
    """
    from cryptography import x509

    from tests.test_revocation import httpGet

    server = tlsreply_server_factory(scenario="crl-revoked")  # type: ignore[operator]
    context = server.sslContext()
    with socket.create_connection(server.address, timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            leaf = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    [point] = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert point.full_name is not None
    url = str(point.full_name[0].value)
    body, contentType = httpGet(url)
    crl = x509.load_der_x509_crl(body)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    server.stop()
    with pytest.raises(OSError):
        httpGet(url)


@pytest.mark.parametrize("tlsreply_server", ["expired"], indirect=True)
def test_indirectScenario(tlsreply_server: ThreadedTestServer) -> None:
    """
    Parametrized indirectly with a scenario's name, the fixture serves that
    scenario.
    """
    assert tlsreply_server.scenario == "expired"
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
        fetch(tlsreply_server)


@pytest.mark.parametrize(
    "tlsreply_server", [{"reply": b"shaped\n", "alpnProtocols": ("h2",)}], indirect=True
)
def test_indirectSettings(tlsreply_server: ThreadedTestServer) -> None:
    """
    Parametrized indirectly with a dict, the fixture is made with those
    factory settings.
    """
    context = tlsreply_server.sslContext()
    context.set_alpn_protocols(["h2"])
    fetched = fetch(tlsreply_server, context)
    assert (fetched.data, fetched.alpnProtocol) == (b"shaped\n", "h2")


def test_indirectNonsenseIsRefused(pytester: pytest.Pytester) -> None:
    """
    Any other parameter is an error that says what the fixture takes.
    """
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.parametrize("tlsreply_server", [42], indirect=True)
        def test_it(tlsreply_server):
            pass
        """
    )
    result = pytester.runpytest_inprocess()
    result.stdout.fnmatch_lines(["*a scenario's name or a dict*not 42*"])


def test_waitForRecordsGivesThatMany(tlsreply_server: ThreadedTestServer) -> None:
    """
    C{waitForRecords(n)} returns the first C{n} records even when more
    connections have ended; C{records} has them all.
    """
    for _ in range(3):
        fetch(tlsreply_server)
    tlsreply_server.waitForRecords(3)
    first, second = tlsreply_server.waitForRecords(2)
    assert [first, second] == tlsreply_server.records[:2]
    assert len(tlsreply_server.records) == 3


def test_unknownSettingIsNamed(tlsreply_server_factory: object) -> None:
    """
    A misspelt setting is refused with the fixture's own message, which
    lists what it takes.
    """
    with pytest.raises(TypeError, match="unknown tlsreply server setting 'alpn'.*alpnProtocols"):
        tlsreply_server_factory(alpn=("h2",))  # type: ignore[operator]


def test_factoryKeepsItsReactorAndFolder(tlsreply_server_factory: object) -> None:
    """
    C{reactor} and C{directory}, which the fixtures choose themselves, are
    refused by name rather than with Python's "multiple values".
    """
    with pytest.raises(TypeError, match="chooses directory itself .*: drop it"):
        tlsreply_server_factory(directory="/tmp")  # type: ignore[operator]
    with pytest.raises(TypeError, match="chooses reactor itself .*: drop it"):
        tlsreply_server_factory(reactor=object())  # type: ignore[operator]
    with pytest.raises(TypeError, match="chooses directory and reactor itself .*: drop them"):
        tlsreply_server_factory(reactor=object(), directory="/tmp")  # type: ignore[operator]


def test_onlyThreadSafeAttributes(tlsreply_server: ThreadedTestServer) -> None:
    """
    The fixture's server passes on what the test's thread may use, and
    refuses the rest (C{whenRecorded} would touch the reactor's state from
    the wrong thread), pointing to the blocking method.
    """
    assert tlsreply_server.serverName == "localhost"
    assert tlsreply_server.url("/x") == f"https://localhost:{tlsreply_server.port}/x"
    assert tlsreply_server.clientTLSOptions() is not None
    with pytest.raises(AttributeError, match="no 'whenRecorded' .*; use waitForRecords"):
        tlsreply_server.whenRecorded(1)
    with pytest.raises(AttributeError, match="no 'service'"):
        tlsreply_server.service  # noqa: B018


@pytest.mark.parametrize("tlsreply_server", ["truncated-reply"], indirect=True)
def test_hostileScenario(tlsreply_server: ThreadedTestServer) -> None:
    """
    A hostile scenario from the fixture, on its private reactor: Python's
    default client takes the truncated reply as complete (its stack's
    outcome), the correct client gets the promised error, and the records
    say the server truncated.
    """
    assert fetch(tlsreply_server).data == b"test\n"
    expected = tlsreply_server.expectedOutcome
    context = tlsreply_server.sslContext()
    with socket.create_connection(tlsreply_server.address, timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost",
                                 suppress_ragged_eofs=False) as tls:
            assert tls.recv(1024) == b"test\n"
            with pytest.raises(ssl.SSLEOFError, match=expected.message or "-"):
                tls.recv(1024)
    for record in tlsreply_server.waitForRecords(2):
        assert record.closed.startswith("truncated: the reply, then TCP FIN without close_notify")


def test_hostileSettings(tlsreply_server_factory: object) -> None:
    """
    The factory takes a hostile scenario's settings: a stall limit that
    ends the stall before the client's own timeout (the server closes
    TCP without close_notify, which Python's default client does not
    report).
    """
    server = tlsreply_server_factory(scenario="stall-after-handshake", stallLimit=0.2)  # type: ignore[operator]
    assert fetch(server).data == b""
    [record] = server.waitForRecords(1)
    assert "closed by the server at the 0.2s stall limit" in record.closed
