"""
A reload (SIGHUP) starts a fresh session cache and fresh session-ticket
keys: a session from before it does not resume after it, whichever way the
client resumes (TLS 1.3 ticket, TLS 1.2 ticket, TLS 1.2 session ID), and
the sessions made after it resume as before. Proven on a real C{twistd -n
tlsreply} with Python's C{ssl} as the client.
"""

from __future__ import annotations

import re
import signal
import ssl

from twisted.trial.unittest import SynchronousTestCase

from tests.policyserver import tls12, tls12SessionID, tls13
from tests.support import (
    LOOPBACK,
    SSLResult,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, Daemon

_REPLIED = r"\[tlsreply\.access#info\] replied to 127\.0\.0\.1:\d+: (TLSv1\.[23]) .* resumed=(True|False)"


class ReloadSessionTests(SynchronousTestCase):
    """
    C{twistd -n tlsreply}, SIGHUP, and clients holding sessions from before.
    """

    def test_sessionsFromBeforeAReloadDoNotResume(self) -> None:
        """
        Each kind of client resumes its session before the reload; after
        it, the same session gets a full handshake (the client offers it,
        the server no longer knows it), and the session from that full
        handshake resumes.
        """
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", f"tcp:0:interface={LOOPBACK}", "--access-log", "log",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath)],
            directory,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]").group(1))

        def fetch(context: ssl.SSLContext, session: ssl.SSLSession | None = None) -> SSLResult:
            """
            Fetch the reply; the server's line for it must say what the
            client saw.
            """
            result = fetchWithSSL(port, context, session=session)
            self.assertEqual(result.data, b"test\n")
            line = daemon.waitFor(_REPLIED)
            self.assertEqual(line.groups(), (result.version, str(result.sessionReused)))
            return result

        kinds = {"TLSv1.3 ticket": tls13, "TLSv1.2 ticket": tls12, "TLSv1.2 session ID": tls12SessionID}
        before = {}
        for kind, configure in kinds.items():
            context = clientContext(str(certificates.caPath), configure)
            first = fetch(context)
            self.assertFalse(first.sessionReused, kind)
            assert first.session is not None
            self.assertEqual(first.session.has_ticket, kind != "TLSv1.2 session ID", kind)
            self.assertTrue(fetch(context, first.session).sessionReused, kind)
            before[kind] = (context, first.session)

        daemon.process.send_signal(signal.SIGHUP)
        daemon.waitFor(r"reloaded: serving 1 certificate")

        resumed = {}
        for kind, (context, session) in before.items():
            after = fetch(context, session)
            resumed[kind] = after.sessionReused
            self.assertTrue(fetch(context, after.session).sessionReused, kind)
        self.assertEqual(resumed, dict.fromkeys(kinds, False))
        self.assertEqual(daemon.stop(), 0)
        self.assertIsNone(re.search("Traceback", "".join(daemon.output)))
