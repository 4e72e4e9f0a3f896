# -*- test-case-name: tests.test_tap,tests.test_options,tests.test_http -*-
"""
The command line: C{twistd -n tlsreply ...}, C{twist tlsreply ...} and
C{tlsreply serve ...}.

Only the options and L{makeService} live here: L{Options} checks every
value and builds a typed L{ServerConfig} (L{tlsreply.config}); L{makeService}
hands it to L{tlsreply.daemon.buildDaemon}. A bad setting ends the program
with one line on stderr naming the option and the problem, and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.application.service import IService
from twisted.python import usage

from tlsreply._version import VersionOption
from tlsreply.command._reloadaccess import ReloadAccessCheck
from tlsreply.command._scenario import checkScenario
from tlsreply.command._twistd import TwistdRunner
from tlsreply.command._values import (
    COERCION_PREFIX,
    LEGACY_HINT,
    POLICY_OPTIONS,
    choice,
    documentValues,
    httpStatus,
    nonEmpty,
    onOff,
    seconds,
    wholeNumber,
    workers,
)
from tlsreply.config import (
    ACCESS_LOG_DESTINATIONS,
    DEFAULT_LISTEN,
    CertificateFiles,
    ServerConfig,
)
from tlsreply.connection.limits import DEFAULT_MAX_CONNECTIONS
from tlsreply.daemon import buildDaemon, describeServer
from tlsreply.errors import ConfigurationError
from tlsreply.lifecycle import FailedStart, ServerLifecycle
from tlsreply.logs.format import serverLogOnStdout, useServerLog
from tlsreply.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_REPLY,
)
from tlsreply.replies import decodeReplyText, parseHeaderLine
from tlsreply.service import DEFAULT_SHUTDOWN_GRACE, parseListenAddress
from tlsreply.tls.inputfiles import readNamedFile
from tlsreply.tls.policy import (
    DEFAULT_SESSION_TIMEOUT,
    MAXIMUM_SESSION_TIMEOUT,
    VERSIONS,
    PolicyFieldError,
    TLSPolicy,
    parseALPN,
)


class Options(VersionOption, usage.Options):
    """
    Options for C{twistd tlsreply}; after parsing, L{config} holds them
    checked and typed.

    @ivar config: the server's settings (once parsed).
    """

    synopsis = "[options]"
    longdesc = (
        "Completes the TLS handshake with every client, writes the reply, "
        "sends close_notify and closes. Without --cert it serves a "
        "self-signed development certificate made in ./certs/."
    )

    config: ServerConfig

    optFlags = [
        ["show-config", None, "Print the effective settings as JSON and exit."],
        [
            "list-scenarios",
            None,
            "Print the test scenarios (see --scenario) as JSON and exit.",
        ],
        [
            "http",
            None,
            "Send the reply as the body of a minimal HTTP/1.1 response (200 OK "
            "unless --http-status; Content-Length, Connection: close), for curl, "
            "browsers and HTTP health checks. --http-status, --http-header and "
            "--http-body imply it.",
        ],
    ]

    optParameters: list[list[Any]] = documentValues([
        [
            "port",
            "p",
            None,
            "Listen here: a port number or a Twisted server endpoint "
            "description (tcp:4433:interface=::, unix:/run/tlsreply.sock, "
            "haproxy:tcp:4433, systemd:domain=INET:index=0). "
            f"[default: {DEFAULT_LISTEN}]",
            nonEmpty("port"),
        ],
        [
            "cert-dir",
            None,
            None,
            "Serve every certificate (and key) in this folder.",
            nonEmpty("cert-dir"),
        ],
        [
            "scenario",
            None,
            None,
            "Serve a deliberately broken or unusual test server (expired, "
            "wrong-host, tls1.2-only, ...; see --list-scenarios) from a fresh "
            "test CA written to ./certs/scenario/ca.pem.",
        ],
        [
            "scenario-stall-limit",
            None,
            None,
            "Seconds a hostile scenario's server holds a stalled connection "
            "(stall-handshake, stall-after-handshake, an unanswered "
            "renegotiation-request) before it closes it; more than 0. "
            "[default: 60]",
            seconds("scenario-stall-limit", positive=True),
        ],
        [
            "scenario-byte-delay",
            None,
            None,
            "Seconds between the reply's bytes in the slow-reply scenario. [default: 0.2]",
            seconds("scenario-byte-delay"),
        ],
        [
            "reply",
            "r",
            None,
            "The reply text; backslash escapes such as \\n, \\r, \\t, \\0 "
            "and \\xHH are decoded. [default: test\\n]",
        ],
        ["reply-file", None, None, "Send this file's bytes as the reply.", nonEmpty("reply-file")],
        [
            "http-body",
            None,
            None,
            "The HTTP response's body (implies --http; escapes as --reply; "
            "may be empty). [default: the reply]",
        ],
        [
            "http-status",
            None,
            None,
            "The HTTP response's status code, sent with its standard reason "
            "phrase (implies --http). 1xx, 204 and 304 responses have no body. "
            "[default: 200]",
            httpStatus,
        ],
        ["min-tls", None, "1.2", "Lowest TLS version.", choice("min-tls", "1.2", "1.3", hint=LEGACY_HINT)],
        ["max-tls", None, "1.3", "Highest TLS version.", choice("max-tls", "1.2", "1.3", hint=LEGACY_HINT)],
        [
            "insecure-min-tls",
            None,
            None,
            "INSECURE: also allow this old TLS version, with a warning.",
            choice("insecure-min-tls", "1.0", "1.1"),
        ],
        [
            "ciphers",
            None,
            None,
            "OpenSSL cipher string for TLS 1.2, server's order first. "
            "[default: ECDHE with AES-GCM or ChaCha20-Poly1305]",
            nonEmpty("ciphers"),
        ],
        [
            "ciphersuites",
            None,
            None,
            "OpenSSL TLS 1.3 ciphersuites. [default: OpenSSL's]",
            nonEmpty("ciphersuites"),
        ],
        [
            "groups",
            None,
            None,
            "Key-exchange groups in preference order, e.g. X25519:P-256:P-384. "
            "[default: OpenSSL's automatic choice]",
            nonEmpty("groups"),
        ],
        ["session-cache", None, "on", "Server-side session cache.", onOff("session-cache")],
        [
            "session-timeout",
            None,
            DEFAULT_SESSION_TIMEOUT,
            "Seconds a session or ticket can be resumed.",
            wholeNumber(
                "session-timeout",
                MAXIMUM_SESSION_TIMEOUT,
                "a week at most: TLS 1.3 tickets can say no longer",
            ),
        ],
        ["session-tickets", None, "on", "Issue session tickets.", onOff("session-tickets")],
        [
            "alpn",
            None,
            None,
            "ALPN protocols to negotiate, server's order, e.g. h2,http/1.1. "
            "Clients with none in common get no ALPN, not an error.",
        ],
        [
            "client-ca",
            None,
            None,
            "PEM CA certificates for client certificates.",
            nonEmpty("client-ca"),
        ],
        [
            "verify-client",
            None,
            "none",
            "Ask for a client certificate: none, optional (verify and log), "
            "require (refuse without a valid one).",
            choice("verify-client", "none", "optional", "require"),
        ],
        [
            "keylog",
            None,
            None,
            "INSECURE: append NSS key-log lines (for Wireshark) to this file.",
            nonEmpty("keylog"),
        ],
        [
            "handshake-timeout",
            None,
            DEFAULT_HANDSHAKE_TIMEOUT,
            "Seconds from accept to a completed handshake before the "
            "connection is aborted; 0 for no limit.",
            seconds("handshake-timeout"),
        ],
        [
            "close-timeout",
            None,
            DEFAULT_CLOSE_TIMEOUT,
            "Seconds the client has, after the reply and close_notify (or a "
            "failed handshake's alert), to close before tlsreply closes TCP "
            "itself (more while it is still "
            "receiving a large reply); 0 for no limit.",
            seconds("close-timeout"),
        ],
        [
            "shutdown-grace",
            None,
            DEFAULT_SHUTDOWN_GRACE,
            "Seconds that connections in progress get to finish on stop "
            "(SIGTERM, SIGINT) before they are aborted.",
            seconds("shutdown-grace"),
        ],
        [
            "drain-delay",
            None,
            0.0,
            "Seconds to keep serving after SIGTERM or SIGINT, with the "
            "readiness check (/ready, see --metrics) failing, before the "
            "listeners close: time for a load balancer or Kubernetes to stop "
            "sending clients. A second signal stops at once.",
            seconds("drain-delay"),
        ],
        [
            "workers",
            None,
            1,
            "Serve from this many worker processes (auto: one per CPU this process "
            "may use, within its cgroup's CPU quota). The "
            "parent binds the listening sockets, forks the workers after "
            "building the TLS contexts (so a session ticket from one worker "
            "resumes on any other), and replaces any that dies; SIGHUP "
            "replaces them all with workers on the new certificates.",
            workers,
        ],
        [
            "access-log",
            None,
            "auto",
            "Where the line for each connection goes: stdout; a file path "
            "(reopened on SIGHUP, for log rotation); log (the server log, as "
            "structured events: about 0.1 ms of CPU per line); off. auto: "
            "stdout when the server log goes there (twistd -n, twist with "
            "text logs), otherwise log.",
        ],
        [
            "log-format",
            None,
            "text",
            "The server log's format: text, or json (one JSON object per "
            "line for every event, connections included, for log shippers). "
            "Under twistd it goes where twistd's log would (--logfile, or "
            "standard output with -n); under twist, where twist's would.",
            choice("log-format", "text", "json"),
        ],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics (/metrics) and health checks (/ready, "
            "/live) over HTTP here: a Twisted server endpoint description, "
            "e.g. tcp:9102:interface=127.0.0.1. With --workers, the parent "
            "serves every worker's.",
        ],
        [
            "max-connections",
            None,
            DEFAULT_MAX_CONNECTIONS,
            "Connections in progress at which tlsreply stops accepting (the "
            "kernel's backlog holds new clients) until one ends.",
            wholeNumber("max-connections"),
        ],
    ])

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["certificates"] = []
        self["http-headers"] = []

    def opt_listen(self, description: str) -> None:
        """
        Add a listening address, like --port; may be repeated.
        """
        self["listen"].append(description)

    def opt_http_header(self, line: str) -> None:
        """An HTTP header field for the response, 'Name: value' (implies --http); may be repeated. Content-Type and Cache-Control replace tlsreply's defaults; Content-Length, Connection and Transfer-Encoding are tlsreply's and refused."""
        try:
            self["http-headers"].append(parseHeaderLine(line))
        except ConfigurationError as e:
            raise usage.UsageError(f"--http-header: {e}") from None

    def opt_cert(self, path: str) -> None:
        """PEM certificate, optionally followed by its chain. May be repeated: an RSA and an ECDSA certificate, or certificates for other names, chosen by SNI (the first also serves unknown names). The --key, --chain and --ocsp-response after it apply to it. [default: a development certificate in ./certs/]"""
        self["certificates"].append({"cert": path})

    opt_c = opt_cert

    def _forLastCertificate(self, option: str, path: str) -> None:
        if not self["certificates"]:
            raise usage.UsageError(f"--{option} must follow the --cert it belongs to")
        last = self["certificates"][-1]
        if option in last:
            raise usage.UsageError(f"--{option} given twice for --cert {last['cert']}")
        last[option] = path

    def opt_key(self, path: str) -> None:
        """
        PEM private key of the preceding --cert. [default: read from --cert]
        """
        self._forLastCertificate("key", path)

    opt_k = opt_key

    def opt_chain(self, path: str) -> None:
        """
        PEM intermediates of the preceding --cert, leaf's issuer first.
        """
        self._forLastCertificate("chain", path)

    def opt_ocsp_response(self, path: str) -> None:
        """
        DER OCSP response to staple for the preceding --cert.
        """
        self._forLastCertificate("ocsp-response", path)

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse, and turn a usage error into one line and exit status 1.

        twistd answers a C{twisted.python.usage.UsageError} by printing its whole help
        before the message; one line naming the problem is what an operator
        (or a deployment script's log) needs. C{--show-config} and
        C{--list-scenarios} print and exit here, once every option is
        parsed, as C{--help} and C{--version} do.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            message = str(e).removeprefix(COERCION_PREFIX)
            raise SystemExit(f"tlsreply: {message} (see --help)") from None
        if self["list-scenarios"]:
            from tlsreply.scenarios.servers import describeScenarios

            sys.stdout.write(json.dumps(describeScenarios(), indent=2) + "\n")
            raise SystemExit(0)
        if self["show-config"]:
            try:
                settings = describeServer(self.config)
            except ConfigurationError as e:
                raise SystemExit(f"tlsreply: {e}") from None
            sys.stdout.write(json.dumps(settings, indent=2) + "\n")
            raise SystemExit(0)

    def postOptions(self) -> None:
        """
        Check every value and build L{config}; tell the program running
        tlsreply (twistd, twist) to log tlsreply's lines only, as text or
        (C{--log-format json}) JSON.
        """
        try:
            self.config = self._config()
            useServerLog(getattr(self, "parent", None), self.config.logFormat)
        except ConfigurationError as e:
            raise usage.UsageError(str(e)) from None

    def _config(self) -> ServerConfig:
        listen = tuple(([self["port"]] if self["port"] is not None else []) + self["listen"])
        http = self["http"] or any(
            (self["http-status"], self["http-headers"], self["http-body"] is not None)
        )
        for description in listen:
            # Parsed now, with no reactor, so that a mistake is refused
            # before anything (a development certificate) is made.
            parseListenAddress(object(), description)
        policy = self._policy()
        checkScenario(self, policy)
        if self["access-log"] not in ACCESS_LOG_DESTINATIONS and not self["access-log"]:
            raise ConfigurationError("--access-log needs a destination")
        if self["metrics"] is not None:
            from tlsreply.metrics.web import parseMetricsAddress

            # Parsed now, as the listening addresses are.
            parseMetricsAddress(object(), self["metrics"])
        return ServerConfig(
            listen=listen or (DEFAULT_LISTEN,),
            certificates=tuple(
                CertificateFiles(
                    Path(entry["cert"]),
                    _path(entry.get("key")),
                    _path(entry.get("chain")),
                    _path(entry.get("ocsp-response")),
                )
                for entry in self["certificates"]
            ),
            certificateDirectory=_path(self["cert-dir"]),
            scenario=self["scenario"],
            replyBody=self._replyBody(http),
            http=http,
            httpStatus=self["http-status"] or 200,
            httpHeaders=tuple(self["http-headers"]),
            policy=policy,
            handshakeTimeout=self["handshake-timeout"],
            closeTimeout=self["close-timeout"],
            shutdownGrace=self["shutdown-grace"],
            maxConnections=self["max-connections"],
            workers=self["workers"],
            accessLog=self["access-log"],
            metrics=self["metrics"],
            drainDelay=self["drain-delay"],
            logFormat=self["log-format"],
            scenarioStallLimit=self["scenario-stall-limit"],
            scenarioByteDelay=self["scenario-byte-delay"],
        )

    def _replyBody(self, http: bool) -> bytes:
        """
        The reply, or the HTTP response's body, which may be empty.
        """
        names = ("reply", "reply-file", "http-body")
        given = [f"--{name}" for name in names if self[name] is not None]
        if len(given) > 1:
            which = "both" if len(given) == 2 else "all three"
            raise ConfigurationError(f"{' and '.join(given)}: give one reply, not {which}")
        for name in ("reply", "http-body"):
            text = self[name]
            if text == "" and http:
                return b""
            if text is not None:
                try:
                    return decodeReplyText(text)
                except ConfigurationError as e:
                    raise ConfigurationError(f"--{name}: {e}") from None
        if self["reply-file"] is None:
            return DEFAULT_REPLY
        path = Path(self["reply-file"])
        try:
            data = readNamedFile(path, "reply")
        except ConfigurationError as e:
            raise ConfigurationError(f"--reply-file: {e}") from None
        if not data and not http:
            raise ConfigurationError(f"--reply-file: {path} is empty")
        return data

    def _policy(self) -> TLSPolicy:
        if self["client-ca"] is not None and self["verify-client"] == "none":
            raise ConfigurationError(
                "--client-ca needs --verify-client optional or require"
            )
        if self["client-ca"] is None and self["verify-client"] != "none":
            raise ConfigurationError(
                f"--verify-client {self['verify-client']} needs a client CA file (--client-ca)"
            )
        alpn = None
        if self["alpn"] is not None:
            try:
                alpn = parseALPN(self["alpn"])
            except ConfigurationError as e:
                raise ConfigurationError(f"--alpn: {e}") from None
        insecure = self["insecure-min-tls"]
        try:
            return TLSPolicy(
                minimumVersion=VERSIONS[self["min-tls"]],
                maximumVersion=VERSIONS[self["max-tls"]],
                insecureMinimumVersion=VERSIONS[insecure] if insecure else None,
                tls12Ciphers=self["ciphers"],
                tls13Ciphersuites=self["ciphersuites"],
                groups=self["groups"],
                sessionCache=self["session-cache"] == "on",
                sessionTimeout=self["session-timeout"],
                sessionTickets=self["session-tickets"] == "on",
                alpnProtocols=alpn or (),
                clientCAPath=_path(self["client-ca"]),
                verifyClient=self["verify-client"],
                keyLogPath=_path(self["keylog"]),
            )
        except PolicyFieldError as e:
            # OpenSSL's verdict on a cipher string or a group, by option.
            option = POLICY_OPTIONS.get(e.field)
            if option is None:
                raise
            raise ConfigurationError(f"{option}: {e.problem}") from None


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def makeService(options: Options, reactor: Any = None, socketTLS: bool = True) -> IService:
    """
    Build the tlsreply service from parsed options (see
    L{tlsreply.daemon.buildDaemon}, which raises L{ConfigurationError} for
    an application to catch; here it is one line and exit status 1).

    Under a daemonizing twistd (no C{-n}), a failure to start, found now or
    as the service starts, is reported through twistd's status pipe, so
    that the command that started the daemon exits with the reason (see
    L{tlsreply.command._twistd}); with C{twistd --uid}, a warning names each
    file a reload could not open as that user (L{ReloadAccessCheck}).

    @param reactor: for tests; the global reactor when C{None}.
    @param socketTLS: serve C{tcp:}, C{unix:} and C{systemd:} addresses on
        tlsreply's own ports; the tests also run the command line's servers
        with C{False}.
    """
    config = options.config
    if config.accessLog == "auto":
        config = replace(
            config,
            accessLog="stdout" if serverLogOnStdout(getattr(options, "parent", None)) else "log",
        )
    twistd = TwistdRunner.of(options)
    try:
        lifecycle = buildDaemon(config, reactor, socketTLS)
    except ConfigurationError as e:
        if not twistd.daemonizes:
            raise SystemExit(f"tlsreply: {e}") from None
        # twistd has not opened its log yet, and its daemon will not be
        # able to write to this terminal: fail as the daemon starts, so
        # that the line reaches both the log and the waiting command.
        if reactor is None:
            from twisted.internet import reactor
        lifecycle = ServerLifecycle(reactor)
        FailedStart(e).setServiceParent(lifecycle)
    else:
        runAs = twistd.runAs()
        if runAs is not None:
            ReloadAccessCheck(config, runAs).setServiceParent(lifecycle)
    lifecycle.onStartFailure = twistd.reportStartFailure
    return lifecycle
