"""
A certificate file that the server's user cannot read, proven as an
unprivileged user also when the suite runs as root (as in CI, where root
reads every file whatever its mode): C{setpriv} runs the command line as
C{nobody}.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from tests.support import makeCertificates, requireTool, temporaryDirectory
from tests.test_plugin import SCRIPTS, runToExit


class UnreadableFileTests(SynchronousTestCase):
    """
    C{twistd -n tlsreply --cert FILE} where FILE exists but cannot be read.
    """

    def test_permissionDenied(self) -> None:
        """
        One line naming the file and the operating system's reason
        ("Permission denied"), a non-zero exit, no traceback.
        """
        workdir = temporaryDirectory(self)
        certificates = makeCertificates(workdir)
        prefix: tuple[str, ...] = ()
        if os.geteuid() == 0:
            # Root owns the files; nobody may enter the folder but not
            # read the certificate.
            setpriv = requireTool("setpriv", "util-linux")
            prefix = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
            workdir.chmod(0o755)
            certificates.keyPath.chmod(0o644)
        certificates.certificatePath.chmod(0)
        self.addCleanup(certificates.certificatePath.chmod, 0o600)

        status, lines = runToExit(
            [*prefix, str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath)],
            workdir,
        )
        self.assertNotEqual(status, 0)
        self.assertNotIn("Traceback", "\n".join(lines))
        errors = [line for line in lines if "tlsreply: " in line]
        self.assertEqual(len(errors), 1, lines)
        self.assertIn(f"cannot read certificate file {certificates.certificatePath}", errors[0])
        self.assertIn("Permission denied", errors[0])
