# -*- test-case-name: tests.test_tap,tests.test_lifecycle,tests.test_assembly -*-
"""
The server the command line runs, built from a L{ServerConfig}: its TLS
contexts (from certificate files, the development certificate, or a test
scenario), its reply factory and connection log, its listening service or
its workers, under the process's L{ServerLifecycle}.

Every failure here is a L{ConfigurationError} with one line that names the
problem; L{tlsreply.command.tap} turns it into that line and a non-zero exit.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.logger import Logger, LogLevel

from tlsreply.config import (
    ACCESS_LOG_DESTINATIONS,
    DEVELOPMENT_CERTIFICATE_DIRECTORY,
    ServerConfig,
)
from tlsreply.errors import ConfigurationError
from tlsreply.lifecycle import ServerLifecycle, raiseDescriptorLimit, serverControls
from tlsreply.logs.access import ACCESS_SYSTEM, AccessLog, ConnectionLog, NoAccessLog
from tlsreply.protocol import ReplyFactory
from tlsreply.scenarios.timings import TIMINGS
from tlsreply.service import TLSReplyService, parseListenAddress
from tlsreply.tls.certificatedirectory import loadCertificateDirectory
from tlsreply.tls.contexts import ServerContexts, buildServerContexts, checkPolicy
from tlsreply.tls.credentials import (
    ServerCredentials,
    loadCredentials,
    validityProblem,
)
from tlsreply.tls.devcert import (
    CERTIFICATE_NAME,
    PRIVATE_KEY_NAME,
    DevelopmentCertificate,
    ensureDevelopmentCertificate,
    prepareDevelopmentCertificate,
    saveDevelopmentCertificate,
)
from tlsreply.tls.reload import ReloadableContexts
from tlsreply.transport.listening import ListeningReactor
from tlsreply.workers.supervisor import WorkerPool

if TYPE_CHECKING:
    from twisted.internet.interfaces import IOpenSSLServerConnectionCreator

    from tlsreply.metrics.multiprocess import MultiprocessFiles
    from tlsreply.metrics.web import MetricsService
    from tlsreply.scenarios.misbehaving import HostileSettings

_log = Logger(namespace="tlsreply")


def buildDaemon(
    config: ServerConfig, reactor: Any = None, socketTLS: bool = True
) -> ServerLifecycle:
    """
    Build the whole server for C{config}, ready to start.

    @param reactor: the global reactor when C{None}.
    @param socketTLS: serve C{tcp:}, C{unix:} and C{systemd:} addresses on
        tlsreply's own ports (see L{TLSReplyService.fromDescriptions}).
    @raise ConfigurationError: for anything that cannot be loaded or used.
    """
    if reactor is None:
        from twisted.internet import reactor
    contexts, companion = reloadableContexts(config, reactor)
    try:
        lifecycle = _serverLifecycle(config, contexts, reactor, socketTLS)
    except BaseException:
        if companion is not None:
            companion.stopService()  # a scenario's socket, bound already
        raise
    if companion is not None:
        # Last: its privilegedStartService runs once every port is bound.
        companion.setServiceParent(lifecycle)
    for warning in contexts.policy.warnings():
        _log.warn("{policyWarning}", policyWarning=warning)
    raiseDescriptorLimit(config.maxConnections)
    return lifecycle


def _serverLifecycle(
    config: ServerConfig, contexts: ReloadableContexts, reactor: Any, socketTLS: bool
) -> ServerLifecycle:
    """
    The listening service, or the workers, under the process's lifecycle.
    """
    if config.workers != 1:
        return _workers(config, contexts, reactor)
    server = buildServer(config, contexts, reactor, ListeningReactor(reactor, socketTLS))
    metrics = None
    if config.metrics is not None:
        from tlsreply.instrumentation import singleProcessMetrics

        metrics = singleProcessMetrics(reactor, config.metrics, server, contexts)
    reload, abort = serverControls(server, contexts)
    return _underLifecycle(config, reactor, reload, abort, server, metrics)


def _workers(config: ServerConfig, contexts: ReloadableContexts, reactor: Any) -> ServerLifecycle:
    """
    A parent that binds and supervises C{config.workers} workers, each
    serving what L{buildServer} builds.
    """
    if config.accessLog not in ACCESS_LOG_DESTINATIONS:
        # Checked now, in the parent: each worker opens it for itself.
        openAccessLog(config.accessLog, reactor, json=_json(config))
    metricsFiles: MultiprocessFiles | None = None
    if config.metrics is not None:
        from tlsreply.metrics.multiprocess import MultiprocessFiles

        # The workers' metrics folder is made as the pool starts, after
        # twistd --uid dropped privileges (see MultiprocessFiles).
        metricsFiles = MultiprocessFiles()

    def serviceForWorker(
        workerReactor: Any, workerContexts: ServerContexts, listener: Any, number: int
    ) -> TLSReplyService:
        service = buildServer(config, workerContexts, workerReactor, listener, worker=number)
        if metricsFiles is not None:
            from tlsreply.instrumentation import instrumentWorker

            instrumentWorker(service, workerReactor, metricsFiles)
        return service

    pool = WorkerPool(
        config.workers,
        config.listen,
        contexts,
        serviceForWorker,
        reactor,
        config.shutdownGrace,
        parseListenAddress,
    )

    def abort(name: str) -> str:
        return f"{pool.abortAll()} worker(s) abort their connections"

    if metricsFiles is None:
        return _underLifecycle(config, reactor, pool.reload, abort, pool, None)
    from tlsreply.instrumentation import parentMetrics

    assert config.metrics is not None
    metrics = parentMetrics(reactor, config.metrics, pool, contexts, metricsFiles)
    # The folder exists for as long as the workers run.
    pool.setServiceParent(metricsFiles)
    return _underLifecycle(config, reactor, pool.reload, abort, metricsFiles, metrics)


def buildServer(
    config: ServerConfig,
    contexts: IOpenSSLServerConnectionCreator,
    reactor: Any,
    listener: Any,
    worker: int | None = None,
) -> TLSReplyService:
    """
    The listening service of C{config}, for the process itself or for one
    of its workers: the one place the command line's server is made, so
    that a setting serves the same with C{--workers} as without.

    @param contexts: the TLS contexts (in a worker, the parent's, as the
        fork left them).
    @param reactor: the clock of its timeouts and the reactor of its
        access log.
    @param listener: the reactor its addresses listen on
        (L{parseListenAddress}): a L{ListeningReactor}, or in a worker the
        one that adopts the parent's sockets.
    @param worker: the worker's number (its log lines and access-log lines
        say which), or C{None} for a single process.
    @raise ConfigurationError: for an access log or an address that cannot
        be used.
    """
    system, label = ACCESS_SYSTEM, "tlsreply"
    if worker is not None:
        system, label = f"{ACCESS_SYSTEM}.worker{worker}", f"tlsreply worker {worker}"
    accessLog = openAccessLog(config.accessLog, reactor, system, _json(config))
    return TLSReplyService(
        [(d, parseListenAddress(listener, d)) for d in config.listen],
        contexts,
        replyFactory(config, reactor, accessLog),
        shutdownGrace=config.shutdownGrace,
        maxConnections=config.maxConnections,
        label=label,
    )


def _underLifecycle(
    config: ServerConfig,
    reactor: Any,
    reload: Callable[[], object],
    abort: Callable[[str], str],
    server: Service,
    metrics: MetricsService | None,
) -> ServerLifecycle:
    """
    The process's lifecycle above C{server} (the listening service, or
    what runs the workers) and the metrics service: the one place either
    is put under a L{ServerLifecycle}.
    """
    lifecycle = ServerLifecycle(
        reactor,
        reload,
        abort,
        config.drainDelay,
        metrics.startDraining if metrics is not None else None,
    )
    server.setServiceParent(lifecycle)
    if metrics is not None:
        metrics.setServiceParent(lifecycle)
    return lifecycle


def _json(config: ServerConfig) -> bool:
    return config.logFormat == "json"


def replyFactory(config: ServerConfig, reactor: Any, accessLog: ConnectionLog | None) -> ReplyFactory:
    """
    The reply factory of C{config}, on C{reactor}'s clock: for a hostile
    test scenario, one whose server misbehaves as the scenario says
    (L{tlsreply.scenarios.servers.scenarioReplyFactory}), with the
    scenario's timings.
    """
    if config.scenario is not None:
        from tlsreply.scenarios.servers import scenarioReplyFactory

        return scenarioReplyFactory(
            config.scenario,
            config.reply,
            reactor,
            config.handshakeTimeout,
            config.closeTimeout,
            accessLog,
            _hostileSettings(config),
        )
    return ReplyFactory(
        config.reply,
        clock=reactor,
        handshakeTimeout=config.handshakeTimeout,
        closeTimeout=config.closeTimeout,
        accessLog=accessLog,
    )


def openAccessLog(
    where: str, reactor: Any, system: str = ACCESS_SYSTEM, json: bool = False
) -> ConnectionLog | None:
    """
    The connection log for a destination of L{ServerConfig.accessLog};
    C{None} means the server log (structured C{twisted.logger} events),
    which is also what C{"auto"} means when nothing decided it.

    @param system: the name its lines give (a worker's says which).
    @param json: write JSON lines (C{--log-format json}).
    @raise ConfigurationError: for a file that cannot be opened.
    """
    if where == "off":
        return NoAccessLog()
    if where == "stdout":
        return AccessLog(
            os.fdopen(os.dup(1), "wb", buffering=0), reactor, system=system, json=json
        )
    if where in ACCESS_LOG_DESTINATIONS:  # "log", "auto"
        return None
    try:
        return AccessLog.toFile(where, reactor, system=system, json=json)
    except OSError as e:
        raise ConfigurationError(
            f"cannot open the access log {where}: {e.strerror or e}"
        ) from None  # a symbolic link too (see tlsreply.tls.safefiles)


# The TLS contexts.


def reloadableContexts(
    config: ServerConfig, reactor: Any = None
) -> tuple[ReloadableContexts, Service | None]:
    """
    The contexts of C{config}, which SIGHUP builds again from the files,
    and the service that must start with the server, if any: for a
    scenario, the one that serves what it needs besides TLS (see
    L{scenarioContexts}); for a development certificate made by this
    start, the one that saves it (L{DevelopmentCertificateSaver}).
    """
    if config.scenario is not None:
        contexts, helpers = scenarioContexts(config, reactor)
        return ReloadableContexts(contexts, _noScenarioReload), helpers
    found = configuredCredentials(config)
    if found:
        _logServing(found)
        return ReloadableContexts(_buildContexts(config, found), lambda: loadContexts(config)), None
    development = prepareDevelopmentCertificate(DEVELOPMENT_CERTIFICATE_DIRECTORY.absolute())
    reloadable = ReloadableContexts(
        _buildContexts(config, [development.credentials]), lambda: loadContexts(config)
    )
    if not development.created:
        _logDevelopment(development)
        return reloadable, None
    return reloadable, DevelopmentCertificateSaver(development, reloadable)


class DevelopmentCertificateSaver(Service):
    """
    Saves the development certificate this start made (in memory) into
    C{./certs/} once the server has bound its ports: it is the last service
    of the process, and saves in C{privilegedStartService}, which runs
    after every other service's (so after every bind), before twistd drops
    privileges (the folder is the starting user's, as when the certificate
    was made first), and before the server says it listens (in
    C{startService}; L{ServerLifecycle} runs both phases under every
    runner). A server that fails to start leaves nothing there.
    """

    def __init__(self, made: DevelopmentCertificate, contexts: ReloadableContexts) -> None:
        self.made = made
        self.contexts = contexts
        self._saved = False

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._save()

    def startService(self) -> None:
        super().startService()
        self._save()

    def _save(self) -> None:
        if self._saved:
            return
        saved = saveDevelopmentCertificate(self.made)
        self._saved = True
        if saved.credentials.fingerprint == self.made.credentials.fingerprint:
            _logDevelopment(saved)
        else:
            # Another tlsreply saved one first: serve that one, as it does
            # (the reload says which).
            self.contexts.reload()


def _noScenarioReload() -> ServerContexts:
    raise ConfigurationError(
        "a scenario's certificates are made at start; restart tlsreply for new ones"
    )


def loadContexts(config: ServerConfig) -> ServerContexts:
    """
    Read every certificate file and build the contexts, as each reload
    does.
    """
    return _buildContexts(config, loadServerCredentials(config))


def _buildContexts(config: ServerConfig, credentials: list[ServerCredentials]) -> ServerContexts:
    """
    The contexts for C{credentials}, each validity problem logged.
    """
    now = datetime.datetime.now(datetime.UTC)
    for each in credentials:
        problem = validityProblem(each, now)
        if problem is not None:
            _log.emit(
                LogLevel.levelWithName(problem.severity),
                "{problem}; serving it anyway",
                problem=problem.message,
            )
    return buildServerContexts(credentials, config.policy)


def loadServerCredentials(config: ServerConfig) -> list[ServerCredentials]:
    """
    The certificates C{config} names, or the development certificate
    (made if it does not exist yet), each logged.
    """
    found = configuredCredentials(config)
    if not found:
        dev = ensureDevelopmentCertificate(DEVELOPMENT_CERTIFICATE_DIRECTORY.absolute())
        _logDevelopment(dev)
        return [dev.credentials]
    _logServing(found)
    return found


def _logDevelopment(dev: DevelopmentCertificate) -> None:
    _log.info(
        "{action} development certificate {path} (SHA-256 {fingerprint}) for "
        "{names}; clients can trust it with e.g. curl --cacert {path}",
        action="created" if dev.created else "using",
        path=str(dev.certificatePath),
        fingerprint=dev.credentials.fingerprint,
        names=", ".join(dev.credentials.subjectNames),
    )


def _logServing(found: list[ServerCredentials]) -> None:
    for each in found:
        _log.info(
            "serving certificate {path} ({key}, SHA-256 {fingerprint}) for {names}",
            path=str(each.certificatePath),
            key=each.keyDescription,
            fingerprint=each.fingerprint,
            names=", ".join(each.subjectNames) or "(no subjectAltName)",
        )


def configuredCredentials(config: ServerConfig) -> list[ServerCredentials]:
    """
    The certificates C{config} names (files and folder), read and checked.
    """
    found = [
        loadCredentials(f.certificate, f.key, f.chain, f.ocspResponse)
        for f in config.certificates
    ]
    if config.certificateDirectory is not None:
        found += loadCertificateDirectory(config.certificateDirectory)
    return found


def scenarioContexts(
    config: ServerConfig, reactor: Any = None
) -> tuple[ServerContexts, Service]:
    """
    The contexts of a test scenario, from a fresh test CA whose certificate
    clients find in C{./certs/scenario/ca.pem}; the scenario's policy with
    what the command line may change (see
    L{tlsreply.scenarios.servers.withCommandPolicy}); and a service that
    serves what the scenario needs besides TLS (C{crl-revoked}'s CRL, over
    HTTP on 127.0.0.1) on C{reactor}, the global one when C{None}, for the
    server's service tree.
    """
    from tlsreply.scenarios.ca import TestCA
    from tlsreply.scenarios.servers import buildScenario

    assert config.scenario is not None
    directory = (DEVELOPMENT_CERTIFICATE_DIRECTORY / "scenario").absolute()
    setup = buildScenario(config.scenario, TestCA(), directory)
    _log.info(
        "serving test scenario {scenario} from a new test CA; clients trust it "
        "with e.g. curl --cacert {caPath}",
        scenario=config.scenario,
        caPath=str(setup.caPath),
    )
    try:
        contexts = setup.serverContexts(config.policy)
    except BaseException:
        setup.stopHelpers()
        raise
    if reactor is None:
        from twisted.internet import reactor
    return contexts, setup.helpersService(reactor)


def describeServer(config: ServerConfig) -> dict[str, Any]:
    """
    What C{--show-config} prints: the settings, and the facts of every
    certificate that would be served. It only reads: a development
    certificate that does not exist yet is described as to be made.

    @raise ConfigurationError: for a certificate file that cannot be read,
        and for a TLS setting OpenSSL refuses
        (L{tlsreply.tls.contexts.checkPolicy}).
    """
    settings = config.describe()
    checkPolicy(config.policy)
    if config.scenario is not None:
        settings["certificates"] = f"made at start for scenario {config.scenario}"
        settings.update(_scenarioTimings(config))
        return settings
    found = configuredCredentials(config)
    if found:
        settings["certificates"] = [c.describe() for c in found]
        return settings
    directory = DEVELOPMENT_CERTIFICATE_DIRECTORY.absolute()
    try:
        existing = loadCredentials(directory / CERTIFICATE_NAME, directory / PRIVATE_KEY_NAME)
    except ConfigurationError:
        settings["certificates"] = (
            f"a development certificate, made at start in {directory / CERTIFICATE_NAME}"
        )
    else:
        settings["certificates"] = [existing.describe()]
    return settings


def _scenarioTimings(config: ServerConfig) -> dict[str, float | None]:
    """
    The timings the scenario's server will use, given or default, for
    C{--show-config}; C{None} for a timing the scenario does not use.
    """
    from tlsreply.scenarios.misbehaving import HostileSettings

    used = _hostileSettings(config) or HostileSettings()
    return {
        timing.config: getattr(used, timing.setting) if config.scenario in timing.users else None
        for timing in TIMINGS
    }


def _hostileSettings(config: ServerConfig) -> HostileSettings | None:
    """
    The hostile servers' settings of C{config}'s scenario timings, or
    C{None} for none given (L{tlsreply.scenarios.servers.hostileSettings}).
    """
    from tlsreply.scenarios.servers import hostileSettings

    return hostileSettings(**{t.setting: getattr(config, t.config) for t in TIMINGS})
