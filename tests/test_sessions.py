"""
Session resumption and early data, proven on the wire: which clients
resume (TLS 1.3 tickets, TLS 1.2 tickets, TLS 1.2 session IDs) under
C{--session-cache}, C{--session-tickets} and C{--session-timeout}, and how
a client that offers 0-RTT data is served.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import trustme
from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.policyserver import (
    Configure,
    PolicyServer,
    anyName,
    both,
    fetch,
    recordConnections,
    sClient,
    serve,
    tls12,
    tls12SessionID,
    tls13,
    writeCombined,
)
from tests.support import (
    LOOPBACK,
    WireTestCase,
    clientContext,
    inThread,
    makeCertificates,
    onMemoryBIO,
    requireCommand,
    runCommand,
    temporaryDirectory,
)
from tests.test_accesslogdaemon import waitForLines

if TYPE_CHECKING:
    # Not imported at run time: pytest would try to collect it as tests.
    from tests.support import TestCertificates


# Sessions.


#: The three ways a client resumes: each kind's name and its configuration.
CLIENT_KINDS: dict[str, Configure] = {
    "TLSv1.3 ticket": tls13,
    "TLSv1.2 ticket": tls12,
    "TLSv1.2 session ID": tls12SessionID,
}


class SessionTests(WireTestCase):
    """
    C{--session-cache}, C{--session-tickets} and C{--session-timeout}
    decide which clients resume, for TLS 1.2 and 1.3.
    """

    async def resumption(
        self, server: PolicyServer, serverName: str = "localhost"
    ) -> dict[str, bool]:
        """
        For each kind of client, connect, then connect again with the
        session from the first connection.

        @return: whether each kind's second connection resumed, as the
            client saw it; the log must say the same.
        """
        found = {}
        for kind, configure in CLIENT_KINDS.items():
            context = clientContext(server.caPath, configure)
            first = await fetch(server, context, serverName)
            self.assertFalse((await server.lastEvent())["resumed"])
            second = await fetch(server, context, serverName, first.session)
            self.assertEqual(second.data, b"test\n")
            self.assertEqual(
                (first.version, second.version), (kind.split()[0],) * 2, kind
            )
            self.assertEqual((await server.lastEvent())["resumed"], second.sessionReused)
            found[kind] = second.sessionReused
        return found

    async def test_cacheAndTickets(self) -> None:
        """
        With the session cache and tickets on (the defaults), every kind of
        client resumes.
        """
        server = serve(self, "--session-cache", "on", "--session-tickets", "on")
        self.assertEqual(
            await self.resumption(server),
            {"TLSv1.3 ticket": True, "TLSv1.2 ticket": True, "TLSv1.2 session ID": True},
        )

    async def test_ticketsOnly(self) -> None:
        """
        With C{--session-cache off} TLS 1.2 clients resume only with a
        ticket, not by session ID; TLS 1.3 clients resume with tickets.
        """
        server = serve(self, "--session-cache", "off")
        self.assertEqual(
            await self.resumption(server),
            {"TLSv1.3 ticket": True, "TLSv1.2 ticket": True, "TLSv1.2 session ID": False},
        )

    async def test_cacheOnly(self) -> None:
        """
        With C{--session-tickets off} every client resumes from the
        server's session cache: TLS 1.2 by session ID (a client that would
        take a ticket gets none), TLS 1.3 by a ticket that only names a
        cached session.
        """
        server = serve(self, "--session-tickets", "off")
        self.assertEqual(
            await self.resumption(server),
            {"TLSv1.3 ticket": True, "TLSv1.2 ticket": True, "TLSv1.2 session ID": True},
        )
        context = clientContext(server.caPath, tls12)
        result = await fetch(server, context)
        assert result.session is not None
        self.assertFalse(result.session.has_ticket)

    async def test_neither(self) -> None:
        """
        With both off, no client resumes.
        """
        server = serve(self, "--session-cache", "off", "--session-tickets", "off")
        self.assertEqual(
            await self.resumption(server),
            {"TLSv1.3 ticket": False, "TLSv1.2 ticket": False, "TLSv1.2 session ID": False},
        )

    async def test_timeout(self) -> None:
        """
        With C{--session-timeout 3} tickets say they live 3 seconds, every
        kind of client resumes at once, and 4 seconds later no session
        resumes: TLS 1.2 clients still offer theirs (by ticket or session
        ID) and the server refuses them; TLS 1.3 clients, told the ticket's
        lifetime, no longer offer it.

        OpenSSL keeps a session's birth in whole seconds and may compare it
        with a finer clock: a session is certain to resume within
        C{timeout - 1} seconds and certain to be gone after C{timeout + 1}.
        A pair of connections that took C{timeout - 1} seconds or more (a
        stalled machine, not a server that forgets) is tried again.
        """
        timeout = 3
        server = serve(self, "--session-timeout", str(timeout))
        for version in ("-tls1_3", "-tls1_2"):
            status, output = await sClient(
                self, server, "-servername", "localhost", "-CAfile", server.caPath, version
            )
            self.assertEqual(status, 0, output)
            self.assertIn(f"TLS session ticket lifetime hint: {timeout} (seconds)", output)
        sessions = {}
        for kind, configure in CLIENT_KINDS.items():
            context = clientContext(server.caPath, configure)
            for _ in range(3):
                started = time.monotonic()
                first = await fetch(server, context)
                again = await fetch(server, context, session=first.session)
                took = time.monotonic() - started
                if again.sessionReused or took < timeout - 1:
                    break
            self.assertTrue(again.sessionReused, f"{kind}: the pair took {took:.2f} s")
            assert first.session is not None
            sessions[kind] = (context, first.session)
        await deferLater(reactor, timeout + 1.1, lambda: None)
        for kind, (context, session) in sessions.items():
            late = await fetch(server, context, session=session)
            self.assertEqual(late.data, b"test\n")
            self.assertFalse(late.sessionReused, kind)
            self.assertFalse((await server.lastEvent())["resumed"], kind)

    async def test_sessionsStayWithTheirServerName(self) -> None:
        """
        Sessions resume under every name (two on one certificate, two under
        a wildcard, unknown names, no name), and never under another name,
        for TLS 1.3 tickets, TLS 1.2 tickets and TLS 1.2 session IDs. The
        TLS 1.3 clients did offer their ticket under the other names: the
        server refused it.
        """
        directory = temporaryDirectory(self)
        ca = trustme.CA()
        caPath = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(caPath))
        server = serve(
            self,
            "--cert", str(writeCombined(directory / "ab.pem", ca.issue_cert("a.test", "b.test"))),
            "--cert", str(writeCombined(directory / "w.pem", ca.issue_cert("*.w.test"))),
        )
        hellos = recordConnections(server)
        names = ["a.test", "b.test", "x.w.test", "y.w.test", "unknown-1.test",
                 "unknown-2.test", None]
        crossed = []
        for kind, configure in CLIENT_KINDS.items():
            context = clientContext(str(caPath), both(configure, anyName))
            for made in names:
                first = await fetch(server, context, made)
                for used in names:
                    del hellos[:]
                    result = await fetch(server, context, used, first.session)
                    if result.sessionReused != (made == used):
                        crossed.append((kind, made, used, result.sessionReused))
                    if kind.startswith("TLSv1.3"):
                        [hello] = hellos
                        self.assertTrue(hello.resumptionOffered, (made, used))
        self.assertEqual(crossed, [])


# Early data.


def ticketWithEarlyData(
    openssl: str, certificates: TestCertificates, sessionPath: Path
) -> None:
    """
    Get a TLS 1.3 session that allows early data, for C{localhost}, from
    C{openssl s_server -early_data} on an ephemeral port, serving the same
    certificate as tlsreply will.
    """
    server = subprocess.Popen(
        [openssl, "s_server", "-accept", f"{LOOPBACK}:0", "-naccept", "1", "-early_data",
         "-cert", str(certificates.certificatePath), "-key", str(certificates.keyPath)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        port = None
        for line in iter(server.stdout.readline, b""):
            if line.startswith(b"ACCEPT"):
                port = int(line.rsplit(b":", 1)[1])
                break
        assert port is not None, "s_server did not start"
        # Hold stdin open until the ticket is saved: at EOF both ends close.
        client = subprocess.Popen(
            [openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
             "localhost", "-CAfile", str(certificates.caPath), "-sess_out",
             str(sessionPath)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            sessionPath.exists()
            and b"-----END SSL SESSION PARAMETERS-----" in sessionPath.read_bytes()
        ):
            time.sleep(0.02)
        assert client.stdin is not None
        client.stdin.close()
        client.wait(10)
        server.stdin.close()
        server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


class EarlyDataTests(WireTestCase):
    """
    tlsreply never accepts 0-RTT data; it says when a client offered it.
    """

    async def test_earlyDataOfferGetsFullHandshakeAndIsLogged(self) -> None:
        """
        A client that offers early data with a ticket tlsreply cannot
        decrypt (one that allows early data, from C{openssl s_server
        -early_data}) gets a full 1-RTT handshake, on the context for the
        name it asked for, and the reply; the log says it offered early
        data: its connection line (C{--access-log FILE}) says
        C{early-data-offered=refused}.
        """
        openssl = requireCommand(self, "openssl")
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory / "certs")
        sessionPath = directory / "session.pem"
        await inThread(ticketWithEarlyData, openssl, certificates, sessionPath)
        description = runCommand(
            [openssl, "sess_id", "-in", str(sessionPath), "-noout", "-text"]
        ).stdout.decode()
        self.assertRegex(description, r"Max Early Data: [1-9]")
        earlyPath = directory / "early.txt"
        earlyPath.write_bytes(b"GET /replayable HTTP/1.1\r\nHost: localhost\r\n\r\n")
        accessLog = directory / "access.log"
        server = serve(
            self, "--cert", str(certificates.certificatePath),
            "--key", str(certificates.keyPath), "--access-log", str(accessLog),
        )
        hellos = recordConnections(server)
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", str(certificates.caPath),
            "-sess_in", str(sessionPath), "-early_data", str(earlyPath),
        )
        self.assertEqual(status, 0, output)
        self.assertIn("New, TLSv1.3", output)
        self.assertIn("Early data was rejected", output)
        self.assertIn("\ntest\n", output)
        [hello] = hellos
        self.assertEqual(
            (hello.requestedServerName, hello.earlyDataOffered), ("localhost", True)
        )
        # Its line is in the file, not among the log's events.
        self.assertEqual(await server.idle(), [])
        [line] = await inThread(waitForLines, accessLog, "replied to", 1)
        self.assertRegex(
            line,
            r"replied to 127\.0\.0\.1:\d+: TLSv1\.3 .* resumed=False sni=localhost .* "
            r"early-data-offered=refused; peer closed",
        )


    async def test_ownTicketsAllowNoEarlyData(self) -> None:
        """
        tlsreply's tickets allow no early data (C{Max Early Data: 0}), so
        C{openssl s_client -early_data} resumes with one of them without
        sending its early data (1-RTT) and gets the reply through the
        normal path.
        """
        openssl = requireCommand(self, "openssl")
        server = serve(self)
        directory = temporaryDirectory(self)
        sessionPath = directory / "session.pem"
        earlyPath = directory / "early.txt"
        earlyPath.write_bytes(b"GET /replayable HTTP/1.1\r\n\r\n")
        common = ("-servername", "localhost", "-CAfile", server.caPath)
        status, output = await sClient(self, server, *common, "-sess_out", str(sessionPath))
        self.assertEqual(status, 0, output)
        session = await inThread(
            runCommand, [openssl, "sess_id", "-in", str(sessionPath), "-noout", "-text"]
        )
        self.assertIn("Max Early Data: 0", session.stdout.decode())
        status, output = await sClient(
            self, server, *common, "-sess_in", str(sessionPath), "-early_data", str(earlyPath)
        )
        self.assertEqual(status, 0, output)
        self.assertIn("Reused, TLSv1.3", output)
        self.assertRegex(output, "Early data was (not sent|rejected)")
        self.assertNotIn("Early data was accepted", output)
        self.assertIn("\ntest\n", output)
        event = await server.lastEvent()
        self.assertEqual((event["resumed"], event["earlyDataOffered"]), (True, False))


# The same tests with TLS over memory BIOs (haproxy: and embedders' endpoints).
SessionTestsOnMemoryBIO = onMemoryBIO(SessionTests)
EarlyDataTestsOnMemoryBIO = onMemoryBIO(EarlyDataTests)
