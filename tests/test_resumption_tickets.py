"""
What C{no-session-resumption} sends a TLS 1.3 client, counted by a real
client (C{openssl s_client -msg}).

With the session cache and tickets off, OpenSSL still sends its default of
two TLS 1.3 NewSessionTickets: "stateful" ones (a session ID) for a cache
that keeps nothing, so they never resume. Sending none takes
C{SSL_CTX_set_num_tickets(ctx, 0)}, which neither pyOpenSSL nor the binding
it uses (C{cryptography}'s) provides. These tests pin what that costs a
client, as the scenario's description states it, and fail when it changes
(OpenSSL changed its default, or tlsreply found a way to send none).
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    LOOPBACK,
    inThread,
    requireCommand,
    runCommand,
    temporaryDirectory,
)
from tlsreply.scenarios.protocol import NO_RESUMPTION_TLS13_TICKETS
from tlsreply.scenarios.servers import describeScenarios
from tlsreply.testing import startTLSReplyServer

#: What C{openssl s_client -msg} prints for each handshake message.
_MESSAGE = re.compile(r"^(<<<|>>>) TLS 1\.3, Handshake \[length ([0-9a-f]+)\], (\w+)$", re.M)


def handshakeMessages(output: str) -> list[tuple[str, int, str]]:
    """
    The TLS 1.3 handshake messages in C{openssl s_client -msg} output: who
    sent each (C{"<<<"}: the server), its length and its name.
    """
    return [(m[1], int(m[2], 16), m[3]) for m in _MESSAGE.finditer(output)]


class TicketCountTests(TestCase):
    """
    The tickets C{no-session-resumption} sends over TLS 1.3, and what a
    client that keeps one pays for it.
    """

    async def test_ticketsSentNeverResume(self) -> None:
        """
        A client receives L{NO_RESUMPTION_TLS13_TICKETS} tickets; offering
        one on its next connection makes its ClientHello larger (the
        pre_shared_key extension and its binder) and still gets a full
        handshake, with as many tickets again.
        """
        openssl = requireCommand(self, "openssl")
        server = startTLSReplyServer(self, scenario="no-session-resumption")
        session = temporaryDirectory(self) / "session.pem"
        common = [openssl, "s_client", "-connect", f"{LOOPBACK}:{server.port}",
                  "-servername", "localhost", "-CAfile", str(server.caCertificatePath),
                  "-tls1_3", "-msg", "-ign_eof"]
        first = await inThread(runCommand, [*common, "-sess_out", str(session)])
        second = await inThread(runCommand, [*common, "-sess_in", str(session)])
        outputs = [r.stdout.decode("utf-8", "replace") for r in (first, second)]
        for output in outputs:
            self.assertIn("\ntest\n", output)
            self.assertIn("New, TLSv1.3", output)
            self.assertNotIn("Reused, TLSv1.3", output)
            tickets = [m for m in handshakeMessages(output) if m[2] == "NewSessionTicket"]
            self.assertEqual(len(tickets), NO_RESUMPTION_TLS13_TICKETS, output)
        hellos = [
            [length for who, length, name in handshakeMessages(o) if name == "ClientHello"]
            for o in outputs
        ]
        self.assertEqual(len(hellos[0]), 1)
        self.assertGreater(hellos[1][0], hellos[0][0], "the second offered the ticket")


class DescriptionTests(SynchronousTestCase):
    """
    The scenario says what it sends, and why.
    """

    def test_descriptionStatesTheTickets(self) -> None:
        """
        The description gives the number of tickets and the missing call.
        """
        [scenario] = [s for s in describeScenarios() if s["name"] == "no-session-resumption"]
        self.assertIn("two TLS 1.3 NewSessionTickets", scenario["description"])
        self.assertIn("SSL_CTX_set_num_tickets", scenario["description"])
