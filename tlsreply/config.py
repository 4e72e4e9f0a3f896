# -*- test-case-name: tests.test_tap,tests.test_http -*-
"""
What a tlsreply server is to be: every setting of the command line, checked
and typed.

L{tlsreply.command.tap.Options} turns a command line into a L{ServerConfig};
L{tlsreply.daemon.buildDaemon} turns a L{ServerConfig} into the running
server. An application can make a L{ServerConfig} itself (every field has
the command line's default) and build the same server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tlsreply import values
from tlsreply.connection.limits import DEFAULT_MAX_CONNECTIONS
from tlsreply.errors import ConfigurationError
from tlsreply.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_REPLY,
)
from tlsreply.replies import httpResponse
from tlsreply.scenarios.timings import TIMINGS
from tlsreply.service import DEFAULT_SHUTDOWN_GRACE
from tlsreply.tls.policy import TLSPolicy

#: Where the command line listens without C{--port}.
DEFAULT_LISTEN: Final = "tcp:4433"

#: Where the development certificate (and a scenario's test CA) is kept.
DEVELOPMENT_CERTIFICATE_DIRECTORY: Final = Path("certs")

#: Where the connection log can go (L{ServerConfig.accessLog}), besides a
#: file path: the one list of them, which the command line and
#: L{tlsreply.daemon} read.
ACCESS_LOG_DESTINATIONS: Final = ("auto", "stdout", "log", "off")

#: The server log's formats (C{--log-format}).
LOG_FORMATS: Final = ("text", "json")


@dataclass(frozen=True)
class CertificateFiles:
    """
    One certificate to serve, as files.

    @ivar certificate: PEM certificate, optionally followed by its chain
        (and its key, if C{key} is not given).
    @ivar key: PEM private key; C{None} to read it from C{certificate}.
    @ivar chain: PEM intermediates, the leaf's issuer first.
    @ivar ocspResponse: a DER OCSP response to staple.
    """

    certificate: Path
    key: Path | None = None
    chain: Path | None = None
    ocspResponse: Path | None = None


@dataclass(frozen=True)
class ServerConfig:
    """
    A tlsreply server's settings.

    @ivar listen: listening addresses (Twisted endpoint descriptions).
    @ivar certificates: the certificates to serve, the fallback first;
        none (and no C{certificateDirectory} or C{scenario}) means the
        development certificate.
    @ivar certificateDirectory: serve every certificate in this folder too.
    @ivar scenario: serve this test scenario (L{tlsreply.scenarios.servers})
        instead of certificates.
    @ivar replyBody: the reply, or the body of the HTTP response (which
        may be empty).
    @ivar http: send C{replyBody} as a minimal HTTP/1.1 response
        (L{tlsreply.replies.httpResponse}).
    @ivar httpStatus: the HTTP response's status code (100 to 599).
    @ivar httpHeaders: header fields the HTTP response adds, in order, as
        C{(name, value)} pairs; C{Content-Type} and C{Cache-Control}
        replace tlsreply's defaults.
    @ivar policy: the TLS policy.
    @ivar handshakeTimeout: seconds from accept to a completed handshake.
    @ivar closeTimeout: seconds the client has to close after the reply.
    @ivar shutdownGrace: seconds connections get to finish on stop.
    @ivar maxConnections: connections in progress at which accepting stops
        (per worker).
    @ivar workers: worker processes; 1 serves from the process itself.
    @ivar accessLog: where each connection's line goes: C{"stdout"},
        C{"log"} (structured events), C{"off"}, C{"auto"} (decided by the
        program that runs tlsreply, see L{tlsreply.command.tap}), or a file path.
    @ivar metrics: where to serve Prometheus metrics and health checks (a
        Twisted server endpoint description, see
        L{tlsreply.metrics.web}), or C{None} for none.
    @ivar drainDelay: seconds to keep serving after a stop signal, with the
        readiness check failing, before the listeners close.
    @ivar logFormat: C{"text"} or C{"json"} (one JSON object per line, see
        L{tlsreply.logs._jsonlines}).
    @ivar scenarioStallLimit: for a hostile C{scenario} that stalls, the
        seconds (more than 0) after which its server closes a stalled
        connection; C{None} for the default
        (L{tlsreply.scenarios.misbehaving.HostileSettings}).
    @ivar scenarioByteDelay: for C{slow-reply}, the seconds between the
        reply's bytes; C{None} for the default. Either timing is refused
        for a scenario that does not use it
        (L{tlsreply.scenarios.timings.TIMINGS}), as it would do
        nothing.
    """

    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    certificates: tuple[CertificateFiles, ...] = ()
    certificateDirectory: Path | None = None
    scenario: str | None = None
    replyBody: bytes = DEFAULT_REPLY
    http: bool = False
    httpStatus: int = 200
    httpHeaders: tuple[tuple[str, str], ...] = ()
    policy: TLSPolicy = field(default_factory=TLSPolicy)
    handshakeTimeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    closeTimeout: float = DEFAULT_CLOSE_TIMEOUT
    shutdownGrace: float = DEFAULT_SHUTDOWN_GRACE
    maxConnections: int = DEFAULT_MAX_CONNECTIONS
    workers: int = 1
    accessLog: str = "auto"
    metrics: str | None = None
    drainDelay: float = 0.0
    logFormat: str = "text"
    scenarioStallLimit: float | None = None
    scenarioByteDelay: float | None = None

    def __post_init__(self) -> None:
        """
        Check every field, so that an application's mistake is one
        L{ConfigurationError} naming the field when the configuration is
        made, as the command line's is.
        """
        if not isinstance(self.listen, tuple) or not all(
            isinstance(d, str) and d for d in self.listen
        ):
            raise ConfigurationError(
                "ServerConfig.listen: expected a tuple of endpoint descriptions, "
                f"got {self.listen!r}"
            )
        if not self.listen:
            raise ConfigurationError("ServerConfig.listen: no listening address")
        if not all(isinstance(c, CertificateFiles) for c in self.certificates):
            raise ConfigurationError(
                "ServerConfig.certificates: expected CertificateFiles, "
                f"got {self.certificates!r}"
            )
        if not isinstance(self.replyBody, bytes) or not (self.replyBody or self.http):
            raise ConfigurationError("ServerConfig.replyBody: the reply must be at least one byte")
        if self.http:
            # Checked now, so that a bad status or header is refused here.
            self.reply  # noqa: B018
        elif self.httpStatus != 200 or self.httpHeaders:
            raise ConfigurationError(
                "ServerConfig.httpStatus and httpHeaders shape an HTTP reply: set http=True"
            )
        for name in ("handshakeTimeout", "closeTimeout", "shutdownGrace", "drainDelay"):
            values.seconds(getattr(self, name), f"ServerConfig.{name}")
        for name in ("maxConnections", "workers"):
            values.wholeNumber(getattr(self, name), f"ServerConfig.{name}")
        if self.logFormat not in LOG_FORMATS:
            raise ConfigurationError(
                f"ServerConfig.logFormat: expected 'text' or 'json', got {self.logFormat!r}"
            )
        if not isinstance(self.accessLog, str) or not self.accessLog:
            raise ConfigurationError(
                "ServerConfig.accessLog: expected "
                + ", ".join(ACCESS_LOG_DESTINATIONS)
                + f" or a file's path, got {self.accessLog!r}"
            )
        if self.scenario is not None and (self.certificates or self.certificateDirectory):
            raise ConfigurationError(
                "a scenario brings its own certificates: give no certificate with it"
            )
        self._checkScenarioTimings()

    def _checkScenarioTimings(self) -> None:
        """
        A hostile scenario's timing is seconds, and is for a scenario that
        uses it: given for any other, it would do nothing.
        """
        for timing in TIMINGS:
            value = getattr(self, timing.config)
            if value is None:
                continue
            name = f"ServerConfig.{timing.config}"
            values.seconds(value, name, positive=timing.setting == "stallLimit")
            if self.scenario not in timing.users:
                use = "uses" if len(timing.users) == 1 else "use"
                which = (
                    "and no scenario is set" if self.scenario is None
                    else f"not scenario {self.scenario!r}"
                )
                raise ConfigurationError(f"{name}: only {timing.usersText()} {use} it, {which}")

    @property
    def reply(self) -> bytes:
        """
        The bytes every client receives.
        """
        if not self.http:
            return self.replyBody
        return httpResponse(self.replyBody, self.httpStatus, self.httpHeaders)

    def describe(self) -> dict[str, Any]:
        """
        The settings as plain values (certificates as files), for
        C{--show-config}; nothing is read or made.
        """
        return {
            "listen": list(self.listen),
            "certificates": [
                {key: str(value) for key, value in vars(files).items() if value is not None}
                for files in self.certificates
            ],
            "certificateDirectory": str(self.certificateDirectory)
            if self.certificateDirectory
            else None,
            "scenario": self.scenario,
            "tls": self.policy.describe(),
            "reply": self.replyBody.decode("utf-8", "backslashreplace"),
            "http": self.http,
            "httpStatus": self.httpStatus,
            "httpHeaders": [list(header) for header in self.httpHeaders],
            "handshakeTimeout": self.handshakeTimeout,
            "closeTimeout": self.closeTimeout,
            "shutdownGrace": self.shutdownGrace,
            "maxConnections": self.maxConnections,
            "workers": self.workers,
            "accessLog": self.accessLog,
            "logFormat": self.logFormat,
            "metrics": self.metrics,
            "drainDelay": self.drainDelay,
            "scenarioStallLimit": self.scenarioStallLimit,
            "scenarioByteDelay": self.scenarioByteDelay,
        }
