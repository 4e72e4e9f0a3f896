# -*- test-case-name: tests.test_tap,tests.test_policy -*-
"""
The command line: C{twistd -n tlsreply ...} and C{twist tlsreply ...}.

Only parsing and wiring live here; the library modules know nothing about
the command line. A bad setting ends the program with one line on stderr
naming the problem and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.logger import Logger, LogLevel
from twisted.python import usage

from tlsreply.accesslog import ACCESS_SYSTEM, AccessLog, ConnectionLog, NoAccessLog
from tlsreply.credentials import (
    ServerCredentials,
    loadCertificateDirectory,
    loadCredentials,
    validityProblem,
)
from tlsreply.devcert import ensureDevelopmentCertificate
from tlsreply.errors import ConfigurationError
from tlsreply.limits import DEFAULT_MAX_CONNECTIONS
from tlsreply.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_REPLY,
    ReplyFactory,
)
from tlsreply.reload import ReloadableContexts
from tlsreply.replies import decodeReplyText, httpResponse
from tlsreply.service import DEFAULT_SHUTDOWN_GRACE, TLSReplyService, parseListenAddress
from tlsreply.tlscontext import (
    DEFAULT_SESSION_TIMEOUT,
    VERSIONS,
    ServerContexts,
    TLSPolicy,
    buildServerContexts,
)
from tlsreply.workers import WorkerPool, workerCount

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


def _positiveInteger(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"expected a whole number >= 1, got {value!r}")
    return int(value)


def _choice(*choices: str) -> Any:
    def coerce(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    coerce.coerceDoc = "One of: " + ", ".join(choices)  # type: ignore[attr-defined]
    return coerce


_onOff = _choice("on", "off")


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
            "Send the reply as a minimal HTTP/1.1 200 response (Content-Length, "
            "Connection: close), for curl, browsers and HTTP health checks.",
        ],
    ]

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
        ["cert-dir", None, None, "Serve every certificate (and key) in this folder."],
        [
            "scenario",
            None,
            None,
            "Serve a deliberately broken or unusual test server (expired, "
            "wrong-host, tls1.2-only, ...; see --list-scenarios) from a fresh "
            "test CA written to ./certs/scenario/ca.pem.",
        ],
        [
            "reply",
            "r",
            None,
            "The reply text; backslash escapes such as \\n, \\r, \\t, \\0 "
            "and \\xHH are decoded. [default: test\\n]",
        ],
        ["reply-file", None, None, "Send this file's bytes as the reply."],
        ["min-tls", None, "1.2", "Lowest TLS version.", _choice("1.2", "1.3")],
        ["max-tls", None, "1.3", "Highest TLS version.", _choice("1.2", "1.3")],
        [
            "insecure-min-tls",
            None,
            None,
            "INSECURE: also allow this old TLS version, with a warning",
            _choice("1.0", "1.1"),
        ],
        [
            "ciphers",
            None,
            None,
            "OpenSSL cipher string for TLS 1.2, server's order first. "
            "[default: ECDHE with AES-GCM or ChaCha20-Poly1305]",
        ],
        [
            "ciphersuites",
            None,
            None,
            "OpenSSL TLS 1.3 ciphersuites. [default: OpenSSL's]",
        ],
        [
            "groups",
            None,
            None,
            "Key-exchange groups in preference order, e.g. X25519:P-256:P-384. "
            "[default: OpenSSL's automatic choice]",
        ],
        ["session-cache", None, "on", "Server-side session cache.", _onOff],
        [
            "session-timeout",
            None,
            DEFAULT_SESSION_TIMEOUT,
            "Seconds a session or ticket can be resumed.",
            _positiveInteger,
        ],
        ["session-tickets", None, "on", "Issue session tickets.", _onOff],
        [
            "alpn",
            None,
            None,
            "ALPN protocols to negotiate, server's order, e.g. h2,http/1.1. "
            "Clients with none in common get no ALPN, not an error.",
        ],
        ["client-ca", None, None, "PEM CA certificates for client certificates."],
        [
            "verify-client",
            None,
            "none",
            "Ask for a client certificate: none, optional (verify and log), "
            "require (refuse without a valid one).",
            _choice("none", "optional", "require"),
        ],
        [
            "keylog",
            None,
            None,
            "INSECURE: append NSS key-log lines (for Wireshark) to this file.",
        ],
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
            "close before tlsreply closes TCP itself (more while it is still "
            "receiving a large reply); 0 for no limit.",
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
        [
            "workers",
            None,
            1,
            "Serve from this many worker processes (auto: one per CPU). The "
            "parent binds the listening sockets, forks the workers after "
            "building the TLS contexts (so a session ticket from one worker "
            "resumes on any other), and replaces any that dies; SIGHUP "
            "replaces them all with workers on the new certificates.",
            workerCount,
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
            "max-connections",
            None,
            DEFAULT_MAX_CONNECTIONS,
            "Connections in progress at which tlsreply stops accepting (the "
            "kernel's backlog holds new clients) until one ends.",
            _positiveInteger,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["certificates"] = []

    def opt_listen(self, description: str) -> None:
        """
        Add a listening address, like --port; may be repeated.
        """
        self["listen"].append(description)

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
        Settle the listening addresses, the reply text and the TLS policy.
        """
        if self["list-scenarios"]:
            from tlsreply.testing.scenarios import describeScenarios

            sys.stdout.write(json.dumps(describeScenarios(), indent=2) + "\n")
            raise SystemExit(0)
        if self["scenario"] is not None:
            from tlsreply.testing.scenarios import SCENARIOS

            if self["scenario"] not in SCENARIOS:
                raise usage.UsageError(
                    f"unknown scenario {self['scenario']!r} "
                    f"(known: {', '.join(SCENARIOS)})"
                )
            if self["certificates"] or self["cert-dir"]:
                raise usage.UsageError("--scenario brings its own certificates: drop --cert")
            decidedByScenario = {
                "min-tls": "1.2",
                "max-tls": "1.3",
                "insecure-min-tls": None,
                "session-cache": "on",
                "session-tickets": "on",
                "session-timeout": DEFAULT_SESSION_TIMEOUT,
                "client-ca": None,
                "verify-client": "none",
            }
            changed = [f"--{k}" for k, v in decidedByScenario.items() if self[k] != v]
            if changed:
                raise usage.UsageError(
                    f"--scenario decides {', '.join(changed)} itself: drop them"
                )
        addresses = ([self["port"]] if self["port"] else []) + self["listen"]
        self["listen"] = addresses or [DEFAULT_LISTEN]
        if self["reply"] is not None and self["reply-file"] is not None:
            raise usage.UsageError("give --reply or --reply-file, not both")
        if self["reply"] is not None:
            try:
                self["reply"] = decodeReplyText(self["reply"])
            except ConfigurationError as e:
                raise usage.UsageError(f"--reply: {e}") from None
        try:
            self["policy"] = self._policy()
        except ConfigurationError as e:
            raise usage.UsageError(str(e)) from None

    def _policy(self) -> TLSPolicy:
        alpn = tuple(p.strip() for p in (self["alpn"] or "").split(",") if p.strip())
        if self["alpn"] is not None and not alpn:
            raise ConfigurationError("--alpn needs at least one protocol name")
        if self["client-ca"] is not None and self["verify-client"] == "none":
            raise ConfigurationError(
                "--client-ca needs --verify-client optional or require"
            )
        insecure = self["insecure-min-tls"]
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
            alpnProtocols=alpn,
            clientCAPath=Path(self["client-ca"]) if self["client-ca"] else None,
            verifyClient=self["verify-client"],
            keyLogPath=Path(self["keylog"]) if self["keylog"] else None,
        )


def makeService(options: Options, reactor: Any = None, socketTLS: bool = True) -> IService:
    """
    Build the tlsreply service from parsed options.

    @param reactor: for tests; the global reactor when L{None}.
    @param socketTLS: serve C{tcp:}, C{unix:} and C{systemd:} addresses on
        tlsreply's own ports (see L{TLSReplyService.fromDescriptions}); the
        tests also run the command line's servers with L{False}.
    """
    if reactor is None:
        from twisted.internet import reactor
    try:
        if options["scenario"] is not None:
            contexts = ReloadableContexts(_scenarioContexts(options), _noScenarioReload)
        else:
            contexts = ReloadableContexts(
                _loadContexts(options), lambda: _loadContexts(options)
            )
        if options["show-config"]:
            _showConfig(options, contexts.current)
        service = _makeService(options, contexts, reactor, socketTLS)
    except ConfigurationError as e:
        raise SystemExit(f"tlsreply: {e}") from None
    parent = _CommandLineService(reactor, contexts)
    service.setServiceParent(parent)
    return parent


def _noScenarioReload() -> ServerContexts:
    raise ConfigurationError(
        "a scenario's certificates are made at start; restart tlsreply for new ones"
    )


def _loadContexts(options: Options) -> ServerContexts:
    """
    Read every certificate file and build the contexts: at start, and again
    for each reload.
    """
    credentials = _credentials(options)
    now = datetime.datetime.now(datetime.UTC)
    for each in credentials:
        problem = validityProblem(each, now)
        if problem is not None:
            _log.emit(
                LogLevel.levelWithName(problem.severity),
                "{problem}; serving it anyway",
                problem=problem.message,
            )
    return buildServerContexts(credentials, options["policy"])


def _scenarioContexts(options: Options) -> ServerContexts:
    """
    The contexts of a test scenario, from a fresh test CA whose certificate
    clients find in C{./certs/scenario/ca.pem}.

    The scenario decides the certificates, versions, sessions and client
    verification; ALPN, groups, ciphers and the key log still come from
    the command line.
    """
    from tlsreply.testing.ca import TestCA
    from tlsreply.testing.scenarios import buildScenario

    directory = (DEVELOPMENT_CERTIFICATE_DIRECTORY / "scenario").absolute()
    directory.mkdir(parents=True, exist_ok=True)
    ca = TestCA()
    setup = buildScenario(options["scenario"], ca, directory)
    caPath = setup.caPath
    command: TLSPolicy = options["policy"]
    policy = replace(
        setup.policy,
        alpnProtocols=command.alpnProtocols,
        groups=command.groups,
        tls12Ciphers=command.tls12Ciphers or setup.policy.tls12Ciphers,
        tls13Ciphersuites=command.tls13Ciphersuites,
        keyLogPath=command.keyLogPath,
    )
    options["policy"] = policy
    _log.info(
        "serving test scenario {scenario} from a new test CA; clients trust it "
        "with e.g. curl --cacert {caPath}",
        scenario=options["scenario"],
        caPath=str(caPath),
    )
    return buildServerContexts(setup.credentials, policy)


def _makeService(
    options: Options, contexts: ReloadableContexts, reactor: Any, socketTLS: bool
) -> TLSReplyService | WorkerPool:
    policy: TLSPolicy = options["policy"]
    reply = _reply(options)
    accessLogWhere = _accessLogDestination(options)
    service: TLSReplyService | WorkerPool
    if options["workers"] == 1:
        service = TLSReplyService.fromDescriptions(
            reactor,
            options["listen"],
            contexts,
            _replyFactory(options, reply, reactor, _accessLog(accessLogWhere, reactor)),
            policy=policy,
            shutdownGrace=options["shutdown-grace"],
            maxConnections=options["max-connections"],
            socketTLS=socketTLS,
        )
    else:
        if accessLogWhere not in ("stdout", "log", "off"):
            # Checked now, in the parent: each worker opens it for itself.
            _accessLog(accessLogWhere, reactor)

        def serviceForWorker(
            workerReactor: Any, workerContexts: ServerContexts, listener: Any, number: int
        ) -> TLSReplyService:
            accessLog = _accessLog(accessLogWhere, workerReactor, f"tlsreply.access.worker{number}")
            return TLSReplyService(
                [(d, parseListenAddress(listener, d)) for d in options["listen"]],
                workerContexts,
                _replyFactory(options, reply, workerReactor, accessLog),
                policy=policy,
                shutdownGrace=options["shutdown-grace"],
                maxConnections=options["max-connections"],
                label=f"tlsreply worker {number}",
            )

        service = WorkerPool(
            options["workers"],
            options["listen"],
            contexts,
            serviceForWorker,
            reactor,
            options["shutdown-grace"],
            parseListenAddress,
        )
    for warning in policy.warnings():
        _log.warn("{policyWarning}", policyWarning=warning)
    _raiseDescriptorLimit(options["max-connections"])
    return service


def _replyFactory(
    options: Options, reply: bytes, reactor: Any, accessLog: ConnectionLog | None
) -> ReplyFactory:
    return ReplyFactory(
        reply,
        clock=reactor,
        handshakeTimeout=options["handshake-timeout"],
        closeTimeout=options["close-timeout"],
        accessLog=accessLog,
    )


def _accessLogDestination(options: Options) -> str:
    """
    Where C{--access-log} sends the connection log: C{stdout}, C{log},
    C{off} or a file path (C{auto} decided).
    """
    where: str = options["access-log"]
    if where == "auto":
        return "stdout" if _serverLogIsTextOnStdout(options) else "log"
    return where


def _accessLog(
    where: str, reactor: Any, system: str = ACCESS_SYSTEM
) -> ConnectionLog | None:
    """
    The connection log for a destination of L{_accessLogDestination};
    L{None} means the server log (structured L{twisted.logger} events).

    @param system: the name its lines give (a worker's says which).
    @raise ConfigurationError: for a file that cannot be opened.
    """
    if where == "log":
        return None
    if where == "off":
        return NoAccessLog()
    if where == "stdout":
        return AccessLog(os.fdopen(os.dup(1), "wb", buffering=0), reactor, system=system)
    try:
        return AccessLog.toFile(where, reactor, system=system)
    except OSError as e:
        raise ConfigurationError(
            f"cannot open the access log {where}: {e.strerror or e}"
        ) from None


def _serverLogIsTextOnStdout(options: Options) -> bool:
    """
    Does the program running tlsreply write its log, as text, to standard
    output? (twistd in the foreground without --logfile, --syslog or
    --logger; twist with its text log on standard output.) Then the
    connection lines can go there directly.
    """
    runner = getattr(options, "parent", None)
    if runner is None:
        return False
    keys = set(runner.keys())
    if "nodaemon" in keys:  # twistd
        return bool(
            runner["nodaemon"]
            and runner.get("logfile") in (None, "-")
            and not runner.get("syslog")
            and runner.get("logger") is None
        )
    if "fileLogObserverFactory" in keys:  # twist
        from twisted.logger import textFileLogObserver

        return bool(
            runner.get("logFile") is sys.stdout
            and runner["fileLogObserverFactory"] is textFileLogObserver
        )
    return False


def _raiseDescriptorLimit(maxConnections: int) -> None:
    """
    Make room for C{maxConnections} descriptors (plus some for listeners
    and logs), raising the soft limit as far as the hard one allows.
    """
    needed = maxConnections + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        _log.warn(
            "the descriptor limit ({limit}) is below --max-connections "
            "{maxConnections} plus 64; accepting will fail before the cap",
            limit=soft,
            maxConnections=maxConnections,
        )


def _showConfig(options: Options, contexts: ServerContexts) -> None:
    """
    Print the effective settings and end the program (C{--show-config}).
    """
    settings = {
        "listen": options["listen"],
        "certificates": [c.describe() for c in contexts.credentials],
        "tls": contexts.policy.describe(),
        "reply": _reply(options).decode("utf-8", "backslashreplace"),
        "handshakeTimeout": options["handshake-timeout"],
        "closeTimeout": options["close-timeout"],
        "shutdownGrace": options["shutdown-grace"],
        "maxConnections": options["max-connections"],
    }
    sys.stdout.write(json.dumps(settings, indent=2) + "\n")
    raise SystemExit(0)


def _credentials(options: Options) -> list[ServerCredentials]:
    found = [
        loadCredentials(
            entry["cert"], entry.get("key"), entry.get("chain"), entry.get("ocsp-response")
        )
        for entry in options["certificates"]
    ]
    if options["cert-dir"] is not None:
        found += loadCertificateDirectory(options["cert-dir"])
    if not found:
        dev = ensureDevelopmentCertificate(DEVELOPMENT_CERTIFICATE_DIRECTORY.absolute())
        _log.info(
            "{action} development certificate {path} (SHA-256 {fingerprint}) for "
            "{names}; clients can trust it with e.g. curl --cacert {path}",
            action="created" if dev.created else "using",
            path=str(dev.certificatePath),
            fingerprint=dev.credentials.fingerprint,
            names=", ".join(dev.credentials.subjectNames),
        )
        return [dev.credentials]
    for each in found:
        _log.info(
            "serving certificate {path} ({key}, SHA-256 {fingerprint}) for {names}",
            path=str(each.certificatePath),
            key=each.keyDescription,
            fingerprint=each.fingerprint,
            names=", ".join(each.subjectNames) or "(no subjectAltName)",
        )
    return found


def _reply(options: Options) -> bytes:
    body = _replyBody(options)
    return httpResponse(body) if options["http"] else body


def _replyBody(options: Options) -> bytes:
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


@contextmanager
def _exitOnListenFailure() -> Iterator[None]:
    """
    Turn a failure to listen into one critical log line and exit status 1.
    """
    try:
        yield
    except ConfigurationError as e:
        _log.critical("tlsreply: {error}", error=str(e))
        raise SystemExit(1) from None


def _ignoreStopSignals() -> None:
    """
    The shutdown is complete and the process is about to exit: ignore any
    further SIGTERM or SIGINT (an init system repeating itself). Python
    puts the default handlers back while it exits, and a signal arriving
    then would kill the process with a failure status after a clean stop.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _CommandLineService(MultiService):
    """
    The top service of the command line.

      - A failure to listen (address in use, permission denied) ends the
        program with exit status 1 and one critical log line instead of a
        traceback. By the time twistd starts services its log has replaced
        stdout and stderr, so the message goes to the log, where the
        operator of a daemon will look for it.
      - SIGTERM and SIGINT stop gracefully (see L{TLSReplyService}) and the
        process exits 0: a requested stop is not a failure, whereas twistd
        would end by re-raising the signal. A second one aborts the
        connections still in progress at once.
      - SIGHUP reloads every certificate, key, chain and OCSP file.

    Signal handlers are installed only on the global reactor, and the
    previous ones are restored on stop.
    """

    def __init__(self, reactor: Any, contexts: ReloadableContexts) -> None:
        super().__init__()
        self._reactor = reactor
        self.contexts = contexts
        self._previousHandlers: dict[int, Any] = {}
        self._stoppingOnSignal = False

    def privilegedStartService(self) -> None:
        with _exitOnListenFailure():
            super().privilegedStartService()

    def startService(self) -> None:
        with _exitOnListenFailure():
            super().startService()
        # After the reactor's own handlers, which it installs as it starts.
        self._reactor.callWhenRunning(self._installSignalHandlers)

    def stopService(self) -> Any:
        # Stopping because of a signal: keep handling signals until the
        # process ends, so that a second SIGTERM or Ctrl-C aborts what is
        # left (instead of reaching Twisted's handler for a stopped
        # reactor, which ends the process by re-raising the signal).
        # Stopped any other way (an embedding application, a test): give
        # the previous handlers back.
        if not self._stoppingOnSignal:
            self._restoreSignalHandlers()
        return super().stopService()

    def _restoreSignalHandlers(self) -> None:
        for number, handler in self._previousHandlers.items():
            signal.signal(number, handler)
        self._previousHandlers.clear()

    def _installSignalHandlers(self) -> None:
        from twisted.internet import reactor as globalReactor

        if self._reactor is not globalReactor or not self.running:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        handlers = {
            signal.SIGTERM: self._stopOnSignal,
            signal.SIGINT: self._stopOnSignal,
            signal.SIGHUP: self._reloadOnSignal,
        }
        for number, handler in handlers.items():
            self._previousHandlers[number] = signal.signal(number, handler)

    def _stopOnSignal(self, number: int, frame: Any) -> None:
        self._reactor.callFromThread(self._stop, signal.Signals(number).name)

    def _stop(self, name: str) -> None:
        if self._stoppingOnSignal:
            for service in self:
                if isinstance(service, TLSReplyService):
                    aborted = service.connections.abortAll(f"aborted on a second {name}")
                    _log.warn(
                        "received {signal} again: aborted {aborted} connection(s)",
                        signal=name,
                        aborted=aborted,
                    )
                elif isinstance(service, WorkerPool):
                    told = service.abortAll()
                    _log.warn(
                        "received {signal} again: {told} worker(s) abort their "
                        "connections",
                        signal=name,
                        told=told,
                    )
            return
        self._stoppingOnSignal = True
        _log.info("received {signal}: stopping gracefully", signal=name)
        self._reactor.addSystemEventTrigger("after", "shutdown", _ignoreStopSignals)
        if self._reactor.running:
            self._reactor.stop()

    def _reloadOnSignal(self, number: int, frame: Any) -> None:
        self._reactor.callFromThread(self._reload)

    def _reload(self) -> None:
        _log.info("received SIGHUP: reloading certificates")
        for service in self:
            if isinstance(service, WorkerPool):
                # New workers (with their own connection logs) replace the
                # old ones.
                service.reload()
                return
        self.contexts.reload()
        for service in self:
            if isinstance(service, TLSReplyService):
                accessLog = service.replyFactory.accessLog
                if isinstance(accessLog, AccessLog):
                    accessLog.reopen()
