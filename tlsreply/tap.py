# -*- test-case-name: tests.test_tap -*-
"""
The command line: C{twistd -n tlsreply ...} and C{twist tlsreply ...}.

Only parsing and wiring live here; the library modules know nothing about
the command line. A bad setting ends the program with one line on stderr
naming the problem and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.logger import Logger, LogLevel
from twisted.python import usage

from tlsreply.credentials import ServerCredentials, loadCredentials, validityProblem
from tlsreply.devcert import ensureDevelopmentCertificate
from tlsreply.errors import ConfigurationError
from tlsreply.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_REPLY,
    ReplyFactory,
)
from tlsreply.replytext import decodeReplyText
from tlsreply.service import DEFAULT_SHUTDOWN_GRACE, TLSReplyService
from tlsreply.tlscontext import TLSPolicy, buildCertificateOptions

DEFAULT_LISTEN = "tcp:4433"
DEVELOPMENT_CERTIFICATE_DIRECTORY = Path("certs")

_log = Logger(namespace="tlsreply")


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"expected seconds (a number >= 0), got {value!r}")
    return seconds


class Options(usage.Options):
    """
    Options for C{twistd tlsreply}.
    """

    synopsis = "[options]"
    longdesc = (
        "Completes the TLS handshake with every client, writes the reply, "
        "sends close_notify and closes. Without --cert it serves a "
        "self-signed development certificate made in ./certs/."
    )

    optParameters: list[list[Any]] = [
        [
            "port",
            "p",
            None,
            "Listen here: a port number or a Twisted server endpoint "
            "description (tcp:4433:interface=::, unix:/run/tlsreply.sock, "
            "haproxy:tcp:4433, systemd:domain=INET:index=0). "
            f"[default: {DEFAULT_LISTEN}]",
        ],
        [
            "cert",
            "c",
            None,
            "PEM certificate, optionally followed by its chain. "
            "[default: a development certificate in ./certs/]",
        ],
        ["key", "k", None, "PEM private key. [default: read from --cert]"],
        ["chain", None, None, "PEM intermediate certificates, leaf's issuer first."],
        [
            "reply",
            "r",
            None,
            "The reply text; backslash escapes such as \\n, \\r, \\t, \\0 "
            "and \\xHH are decoded. [default: test\\n]",
        ],
        ["reply-file", None, None, "Send this file's bytes as the reply."],
        [
            "handshake-timeout",
            None,
            DEFAULT_HANDSHAKE_TIMEOUT,
            "Seconds from accept to a completed handshake before the "
            "connection is aborted; 0 for no limit.",
            _seconds,
        ],
        [
            "close-timeout",
            None,
            DEFAULT_CLOSE_TIMEOUT,
            "Seconds the client has, after the reply and close_notify, to "
            "close before tlsreply closes TCP itself; 0 for no limit.",
            _seconds,
        ],
        [
            "shutdown-grace",
            None,
            DEFAULT_SHUTDOWN_GRACE,
            "Seconds that connections in progress get to finish on stop "
            "(SIGTERM, SIGINT) before they are aborted.",
            _seconds,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """
        Add a listening address, like --port; may be repeated.
        """
        self["listen"].append(description)

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse, and turn a usage error into one line and exit status 1.

        twistd answers a L{usage.UsageError} by printing its whole help
        before the message; one line naming the problem is what an operator
        (or a deployment script's log) needs.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            raise SystemExit(f"tlsreply: {e} (see --help)") from None

    def postOptions(self) -> None:
        """
        Settle the listening addresses and the reply text.
        """
        addresses = ([self["port"]] if self["port"] else []) + self["listen"]
        self["listen"] = addresses or [DEFAULT_LISTEN]
        if self["reply"] is not None and self["reply-file"] is not None:
            raise usage.UsageError("give --reply or --reply-file, not both")
        if self["reply"] is not None:
            try:
                self["reply"] = decodeReplyText(self["reply"])
            except ConfigurationError as e:
                raise usage.UsageError(f"--reply: {e}") from None
        if self["cert"] is None and (self["key"] or self["chain"]):
            raise usage.UsageError("--key and --chain need --cert")


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    Build the tlsreply service from parsed options.

    @param reactor: for tests; the global reactor when L{None}.
    """
    if reactor is None:
        from twisted.internet import reactor
    try:
        service = _makeService(options, reactor)
    except ConfigurationError as e:
        raise SystemExit(f"tlsreply: {e}") from None
    parent = _ExitOnConfigurationError()
    service.setServiceParent(parent)
    return parent


def _makeService(options: Options, reactor: Any) -> TLSReplyService:
    credentials = _credentials(options)
    problem = validityProblem(
        credentials, datetime.datetime.now(datetime.UTC)
    )
    if problem is not None:
        _log.emit(
            LogLevel.levelWithName(problem.severity),
            "{problem}; serving it anyway",
            problem=problem.message,
        )
    reply = _reply(options)
    policy = TLSPolicy()
    factory = ReplyFactory(
        reply,
        clock=reactor,
        handshakeTimeout=options["handshake-timeout"],
        closeTimeout=options["close-timeout"],
    )
    return TLSReplyService.fromDescriptions(
        reactor,
        options["listen"],
        buildCertificateOptions(credentials, policy),
        factory,
        policy=policy,
        shutdownGrace=options["shutdown-grace"],
    )


def _credentials(options: Options) -> ServerCredentials:
    if options["cert"] is not None:
        credentials = loadCredentials(options["cert"], options["key"], options["chain"])
        _log.info(
            "serving certificate {path} (SHA-256 {fingerprint}) for {names}",
            path=str(options["cert"]),
            fingerprint=credentials.fingerprint,
            names=", ".join(credentials.subjectNames) or "(no subjectAltName)",
        )
        return credentials
    dev = ensureDevelopmentCertificate(DEVELOPMENT_CERTIFICATE_DIRECTORY.absolute())
    _log.info(
        "{action} development certificate {path} (SHA-256 {fingerprint}) for "
        "{names}; clients can trust it with e.g. curl --cacert {path}",
        action="created" if dev.created else "using",
        path=str(dev.certificatePath),
        fingerprint=dev.credentials.fingerprint,
        names=", ".join(dev.credentials.subjectNames),
    )
    return dev.credentials


def _reply(options: Options) -> bytes:
    if options["reply"] is not None:
        reply: bytes = options["reply"]
        return reply
    if options["reply-file"] is None:
        return DEFAULT_REPLY
    path = Path(options["reply-file"])
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(
            f"cannot read reply file {path}: {e.strerror or e}"
        ) from None
    if not data:
        raise ConfigurationError(f"reply file {path} is empty")
    return data


class _ExitOnConfigurationError(MultiService):
    """
    The top service of the command line: a failure to listen (address in
    use, permission denied) ends the program with exit status 1 and one
    critical log line instead of a traceback.

    By the time twistd starts services its log has replaced stdout and
    stderr, so the message goes to the log, where the operator of a daemon
    will look for it.
    """

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except ConfigurationError as e:
            _log.critical("tlsreply: {error}", error=str(e))
            raise SystemExit(1) from None

    def startService(self) -> None:
        try:
            super().startService()
        except ConfigurationError as e:
            _log.critical("tlsreply: {error}", error=str(e))
            raise SystemExit(1) from None
