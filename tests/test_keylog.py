"""
C{--keylog}, proven on the wire: the server's NSS key log holds exactly
what the clients' own key logs hold.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from tests.policyserver import both, fetch, serve, tls12
from tests.support import WireTestCase, clientContext, onMemoryBIO, temporaryDirectory


def keyLogLines(path: Path) -> list[tuple[str, str, str]]:
    """
    The NSS key-log lines in a file: (label, client random, secret).
    """
    lines = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            label, clientRandom, secret = line.split(" ")
            lines.append((label, clientRandom, secret))
    return lines


class KeyLogTests(WireTestCase):
    """
    C{--keylog} writes the secrets of every connection in NSS key-log
    format.
    """

    async def test_keyLogMatchesClients(self) -> None:
        """
        After a TLS 1.3, a resumed TLS 1.3 and a TLS 1.2 connection, the
        server's key log holds exactly the lines the clients' own key logs
        (written by Python's C{ssl}) hold: one set per connection, keyed by
        its client random. The file is private to its owner, and the policy
        warns.
        """
        directory = temporaryDirectory(self)
        serverLog = directory / "server.keys"
        server = serve(self, "--keylog", str(serverLog))
        self.assertTrue(
            any("INSECURE: TLS session keys" in w for w in server.options.config.policy.warnings())
        )
        clientLogs = []
        for name, configure in [("tls13", None), ("tls12", tls12)]:
            clientLog = directory / f"{name}.keys"
            clientLogs.append(clientLog)

            def logKeys(context: ssl.SSLContext, path: Path = clientLog) -> None:
                context.keylog_filename = str(path)

            context = clientContext(server.caPath, both(configure, logKeys))
            first = await fetch(server, context)
            if name == "tls13":
                resumed = await fetch(server, context, session=first.session)
                self.assertTrue(resumed.sessionReused)
        serverLines = keyLogLines(serverLog)
        clientLines = [line for path in clientLogs for line in keyLogLines(path)]
        self.assertEqual(sorted(serverLines), sorted(clientLines))
        byConnection: dict[str, set[str]] = {}
        for label, clientRandom, _ in serverLines:
            byConnection.setdefault(clientRandom, set()).add(label)
        tls13Labels = {
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET",
        }
        self.assertEqual(
            sorted(byConnection.values(), key=len),
            [{"CLIENT_RANDOM"}, tls13Labels, tls13Labels],
        )
        self.assertEqual(len(serverLines), 5 + 5 + 1)
        self.assertEqual(os.stat(serverLog).st_mode & 0o777, 0o600)


# The same tests with TLS over memory BIOs (haproxy: and embedders' endpoints).
KeyLogTestsOnMemoryBIO = onMemoryBIO(KeyLogTests)
