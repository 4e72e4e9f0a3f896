# -*- test-case-name: tests.test_daemonstart -*-
"""
The files a reload (SIGHUP) opens again, and a warning at start for each
one that the process will not be allowed to open by then.

Started as root, C{twistd --uid}/C{--gid} binds the ports, then becomes
that user for good. tlsreply read its certificates and keys as root, so it
serves; the first SIGHUP then fails, hours or months later, on a key only
root can read. L{ReloadAccessCheck} says so as the server starts, naming
each file.
"""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import Service
from twisted.logger import Logger

from tlsreply.command._twistd import Access, RunAs, unreachableBy
from tlsreply.config import DEVELOPMENT_CERTIFICATE_DIRECTORY, ServerConfig
from tlsreply.tls.devcert import CERTIFICATE_NAME, PRIVATE_KEY_NAME

_log = Logger(namespace="tlsreply")

#: What a certificate folder's files may be named (see
#: L{tlsreply.tls.certificatedirectory.loadCertificateDirectory}).
_FOLDER_SUFFIXES = (".pem", ".crt", ".cer", ".key", ".ocsp")


def filesForReload(config: ServerConfig) -> list[tuple[str, Path, Access]]:
    """
    What a reload of C{config}'s server opens: (what it is, path, access).
    A scenario is never reloaded.
    """
    if config.scenario is not None:
        return []
    files: list[tuple[str, Path, Access]] = []
    for each in config.certificates:
        files.append(("certificate", each.certificate, "read"))
        if each.key is not None:
            files.append(("private key", each.key, "read"))
        if each.chain is not None:
            files.append(("chain", each.chain, "read"))
        if each.ocspResponse is not None:
            files.append(("OCSP response", each.ocspResponse, "read"))
    folder = config.certificateDirectory
    if folder is not None:
        files.append(("certificate directory", folder, "read"))
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            entries = []
        files += [
            ("file", path, "read")
            for path in entries
            if path.suffix.lower() in _FOLDER_SUFFIXES and path.is_file()
        ]
    if not config.certificates and folder is None:
        development = DEVELOPMENT_CERTIFICATE_DIRECTORY.absolute()
        files.append(("development certificate", development / CERTIFICATE_NAME, "read"))
        files.append(("development key", development / PRIVATE_KEY_NAME, "read"))
    if config.policy.clientCAPath is not None:
        files.append(("client CA file", config.policy.clientCAPath, "read"))
    if config.policy.keyLogPath is not None:
        files.append(("key-log file", config.policy.keyLogPath, "write"))
    return files


class ReloadAccessCheck(Service):
    """
    Warns, as the server starts, about each file a reload opens that the
    process cannot open once twistd has made it C{runAs}. It is the last
    service of the process: its C{privilegedStartService} runs after the
    development certificate is saved and before twistd drops root.
    """

    def __init__(self, config: ServerConfig, runAs: RunAs) -> None:
        self.config = config
        self.runAs = runAs

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        files = filesForReload(self.config)
        unreachable = set(unreachableBy(self.runAs, [(path, access) for _, path, access in files]))
        for what, path, access in files:
            if path in unreachable:
                _log.warn(
                    "uid {uid} (twistd --uid) cannot {access} the {what} {path}: a "
                    "reload (SIGHUP) will not be able to {access} it, and will keep "
                    "serving what was read at start",
                    uid=self.runAs.uid,
                    access=access,
                    what=what,
                    path=str(path),
                )
