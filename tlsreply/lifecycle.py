# -*- test-case-name: tests.test_lifecycle -*-
"""
The life of a tlsreply process: signals, reloads, exit statuses and the
descriptor limit.

L{ServerLifecycle} is the service the command line puts above the server;
an application that runs tlsreply from a C{.tac} file uses it the same
way, to get SIGHUP reloads and a graceful, zero-status SIGTERM::

    from tlsreply.lifecycle import ServerLifecycle

    contexts = ReloadableContexts(buildServerContexts(...), loadAgain)
    server = TLSReplyService.fromDescriptions(reactor, ["tcp:8443"], contexts, factory)
    lifecycle = ServerLifecycle.forServer(reactor, server, contexts)
    lifecycle.setServiceParent(application)
"""

from __future__ import annotations

import resource
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.logger import Logger

from tlsreply.errors import ConfigurationError
from tlsreply.logs.access import AccessLog
from tlsreply.service import TLSReplyService
from tlsreply.tls.reload import ReloadableContexts

_log = Logger(namespace="tlsreply")


def raiseDescriptorLimit(maxConnections: int) -> None:
    """
    Make room for C{maxConnections} descriptors (plus some for listeners
    and logs), raising the soft limit as far as the hard one allows, and
    warn if that is not enough.
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


@contextmanager
def exitOnListenFailure(report: Callable[[str], object] | None = None) -> Iterator[None]:
    """
    Turn a failure to start (to listen, to save the development
    certificate) into one critical log line and exit status 1.

    @param report: also given the reason, as the process is about to
        exit: see L{ServerLifecycle.onStartFailure}.
    """
    try:
        yield
    except ConfigurationError as e:
        _log.critical("tlsreply: {error}", error=str(e))
        if report is not None:
            report(str(e))
        raise SystemExit(1) from None


class FailedStart(Service):
    """
    A service that fails to start with an error found earlier, while the
    server was built: the command line puts it in place of the server
    when twistd daemonizes, so that the error is reported as a failure to
    listen is, in twistd's log and to the process waiting for the daemon.
    """

    def __init__(self, error: ConfigurationError) -> None:
        self.error = error

    def privilegedStartService(self) -> None:
        raise self.error

    def startService(self) -> None:
        raise self.error


def ignoreStopSignals() -> None:
    """
    The shutdown is complete and the process is about to exit: ignore any
    further SIGTERM or SIGINT (an init system repeating itself). Python
    puts the default handlers back while it exits, and a signal arriving
    then would kill the process with a failure status after a clean stop.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def serverControls(
    server: TLSReplyService, contexts: ReloadableContexts | None = None
) -> tuple[Callable[[], None], Callable[[str], str]]:
    """
    What the signals do to one L{TLSReplyService}, as L{ServerLifecycle}
    takes them: SIGHUP reloads C{contexts} (if given) and reopens a file
    access log; a stop signal during the stop aborts its connections.

    @return: the C{reload} and the C{abort} of a L{ServerLifecycle}.
    """

    def reload() -> None:
        if contexts is not None:
            contexts.reload()
        accessLog = server.replyFactory.accessLog
        if isinstance(accessLog, AccessLog):
            accessLog.reopen()

    def abort(name: str) -> str:
        aborted = server.connections.abortAll(f"aborted on a second {name}")
        return f"aborted {aborted} connection(s)"

    return reload, abort


class ServerLifecycle(MultiService):
    """
    The top service of a tlsreply process.

      - It binds first: C{startService} runs C{privilegedStartService}
        first if no runner did (twist does not), so every service binds
        before any starts, under every runner.
      - A failure to listen (address in use, permission denied) ends the
        program with exit status 1 and one critical log line instead of a
        traceback. By the time twistd starts services its log has replaced
        stdout and stderr, so the message goes to the log, where the
        operator of a daemon will look for it (and to L{onStartFailure}).
      - SIGTERM and SIGINT stop gracefully (see L{TLSReplyService}) and the
        process exits 0: a requested stop is not a failure, whereas twistd
        would end by re-raising the signal. With a C{drainDelay}, the
        server first drains: it calls C{drain} (the readiness check starts
        failing) and keeps serving for that long, so that a load balancer
        or Kubernetes stops sending it clients before its listeners close.
        Another signal while draining stops at once; one while stopping
        calls C{abort} (the connections still in progress end at once).
      - SIGHUP calls C{reload} (new certificates, a reopened access log).

    Signal handlers are installed only on the global reactor (a private
    reactor in a thread, as the test fixtures use, must not take the
    process's signals), and the previous ones are restored on stop.

    @ivar onStartFailure: told the reason when the start fails, before the
        process exits; under a daemonizing twistd, the command line sets
        it to L{tlsreply.command._twistd.TwistdRunner.reportStartFailure}
        (twistd itself reports only exceptions, and its first process
        would wait forever).
    """

    def __init__(
        self,
        reactor: Any,
        reload: Callable[[], object] | None = None,
        abort: Callable[[str], str] | None = None,
        drainDelay: float = 0.0,
        drain: Callable[[], object] | None = None,
    ) -> None:
        """
        @param reload: what SIGHUP does.
        @param abort: what a SIGTERM or SIGINT during the stop does, given
            the signal's name; it returns what to log.
        @param drainDelay: seconds to keep serving after the first SIGTERM
            or SIGINT, before the stop begins.
        @param drain: called when draining begins.
        """
        super().__init__()
        self._reactor = reactor
        self._reloadCall = reload
        self._abortCall = abort
        self.drainDelay = drainDelay
        self._drainCall = drain
        self.onStartFailure: Callable[[str], object] | None = None
        self._privilegedStarted = False
        self._previousHandlers: dict[int, Any] = {}
        self._stoppingOnSignal = False
        self._drainTimer: Any = None

    @classmethod
    def forServer(
        cls,
        reactor: Any,
        server: TLSReplyService,
        contexts: ReloadableContexts | None = None,
        drainDelay: float = 0.0,
        drain: Callable[[], object] | None = None,
    ) -> ServerLifecycle:
        """
        The lifecycle of one L{TLSReplyService}, added as its child: SIGHUP
        reloads C{contexts} (if given) and reopens a file access log; a
        stop signal drains for C{drainDelay} seconds (calling C{drain}),
        then stops; one during the stop aborts the server's connections
        (L{serverControls}).
        """
        reload, abort = serverControls(server, contexts)
        lifecycle = cls(reactor, reload, abort, drainDelay, drain)
        server.setServiceParent(lifecycle)
        return lifecycle

    def privilegedStartService(self) -> None:
        self._privilegedStarted = True
        with exitOnListenFailure(self.onStartFailure):
            super().privilegedStartService()

    def startService(self) -> None:
        if not self._privilegedStarted:
            # twist and embedders call only startService: bind everything
            # first all the same, so that the process starts in the same
            # order under every runner (see DevelopmentCertificateSaver).
            self.privilegedStartService()
        with exitOnListenFailure(self.onStartFailure):
            super().startService()
        # SIGTERM and SIGHUP now, for one that comes before the reactor
        # runs (twistd starts the application, then the reactor: their
        # default action would end the process); then all three once it
        # runs, over the reactor's own, installed as it starts. Not SIGINT
        # now: the reactor installs its own only over Python's default, and
        # that is the one to give back if the lifecycle stops first.
        self._installSignalHandlers(early=True)
        self._reactor.callWhenRunning(self._installSignalHandlers)

    def stopService(self) -> Any:
        # Stopping because of a signal: keep handling signals until the
        # process ends, so that a second SIGTERM or Ctrl-C aborts what is
        # left (instead of reaching Twisted's handler for a stopped
        # reactor, which ends the process by re-raising the signal).
        # Stopped any other way (an embedding application, a test): give
        # the previous handlers back.
        self._privilegedStarted = False
        if not self._stoppingOnSignal:
            self._restoreSignalHandlers()
        if self._drainTimer is not None and self._drainTimer.active():
            self._drainTimer.cancel()
        self._drainTimer = None
        return super().stopService()

    def _restoreSignalHandlers(self) -> None:
        for number, handler in self._previousHandlers.items():
            signal.signal(number, handler)
        self._previousHandlers.clear()

    def _installSignalHandlers(self, early: bool = False) -> None:
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
        if early:
            del handlers[signal.SIGINT]
        for number, handler in handlers.items():
            previous = signal.signal(number, handler)
            # Installed twice (see startService): what is given back on
            # stopping is the last handler that was not ours (the reactor's
            # SIGTERM, the original SIGHUP).
            if previous != handler:
                self._previousHandlers[number] = previous

    def _stopOnSignal(self, number: int, frame: Any) -> None:
        self._reactor.callFromThread(self.requestStop, signal.Signals(number).name)

    def requestStop(self, name: str) -> None:
        """
        What a stop signal does (SIGTERM, SIGINT): drain if there is a
        drain delay, else stop gracefully; while draining, stop now; while
        stopping, abort the connections in progress.

        @param name: what asked, for the log (C{"SIGTERM"}).
        """
        if self._drainTimer is not None:
            _log.info("received {signal} while draining: stopping now", signal=name)
            self._stopNow()
            return
        if self._stoppingOnSignal:
            if self._abortCall is not None:
                what = self._abortCall(name)
                _log.warn("received {signal} again: {what}", signal=name, what=what)
            return
        if self.drainDelay > 0:
            _log.info(
                "received {signal}: draining for {delay:g}s, then stopping gracefully",
                signal=name,
                delay=self.drainDelay,
            )
            self._drainTimer = self._reactor.callLater(self.drainDelay, self._stopNow)
            if self._drainCall is not None:
                self._drainCall()
            return
        _log.info("received {signal}: stopping gracefully", signal=name)
        self._stopNow()

    def _stopNow(self) -> None:
        """
        Begin the graceful stop (after draining, if there was a drain).
        """
        timer, self._drainTimer = self._drainTimer, None
        if timer is not None and timer.active():
            timer.cancel()
        self._stoppingOnSignal = True
        self._reactor.addSystemEventTrigger("after", "shutdown", ignoreStopSignals)
        if self._reactor.running:
            self._reactor.stop()

    def _reloadOnSignal(self, number: int, frame: Any) -> None:
        self._reactor.callFromThread(self._reload)

    def _reload(self) -> None:
        _log.info("received SIGHUP: reloading certificates")
        if self._reloadCall is not None:
            self._reloadCall()
