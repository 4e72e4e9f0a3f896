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

from twisted.application.service import MultiService
from twisted.logger import Logger

from tlsreply.accesslog import AccessLog
from tlsreply.errors import ConfigurationError
from tlsreply.reload import ReloadableContexts
from tlsreply.service import TLSReplyService

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
def exitOnListenFailure() -> Iterator[None]:
    """
    Turn a failure to listen into one critical log line and exit status 1.
    """
    try:
        yield
    except ConfigurationError as e:
        _log.critical("tlsreply: {error}", error=str(e))
        raise SystemExit(1) from None


def ignoreStopSignals() -> None:
    """
    The shutdown is complete and the process is about to exit: ignore any
    further SIGTERM or SIGINT (an init system repeating itself). Python
    puts the default handlers back while it exits, and a signal arriving
    then would kill the process with a failure status after a clean stop.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ServerLifecycle(MultiService):
    """
    The top service of a tlsreply process.

      - A failure to listen (address in use, permission denied) ends the
        program with exit status 1 and one critical log line instead of a
        traceback. By the time twistd starts services its log has replaced
        stdout and stderr, so the message goes to the log, where the
        operator of a daemon will look for it.
      - SIGTERM and SIGINT stop gracefully (see L{TLSReplyService}) and the
        process exits 0: a requested stop is not a failure, whereas twistd
        would end by re-raising the signal. A second one calls C{abort}
        (the connections still in progress end at once).
      - SIGHUP calls C{reload} (new certificates, a reopened access log).

    Signal handlers are installed only on the global reactor (a private
    reactor in a thread, as the test fixtures use, must not take the
    process's signals), and the previous ones are restored on stop.
    """

    def __init__(
        self,
        reactor: Any,
        reload: Callable[[], object] | None = None,
        abort: Callable[[str], str] | None = None,
    ) -> None:
        """
        @param reload: what SIGHUP does.
        @param abort: what a second SIGTERM or SIGINT does, given the
            signal's name; it returns what to log.
        """
        super().__init__()
        self._reactor = reactor
        self._reloadCall = reload
        self._abortCall = abort
        self._previousHandlers: dict[int, Any] = {}
        self._stoppingOnSignal = False

    @classmethod
    def forServer(
        cls, reactor: Any, server: TLSReplyService, contexts: ReloadableContexts | None = None
    ) -> ServerLifecycle:
        """
        The lifecycle of one L{TLSReplyService}, added as its child: SIGHUP
        reloads C{contexts} (if given) and reopens a file access log; a
        second stop signal aborts the server's connections.
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

        lifecycle = cls(reactor, reload, abort)
        server.setServiceParent(lifecycle)
        return lifecycle

    def privilegedStartService(self) -> None:
        with exitOnListenFailure():
            super().privilegedStartService()

    def startService(self) -> None:
        with exitOnListenFailure():
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
            if self._abortCall is not None:
                what = self._abortCall(name)
                _log.warn("received {signal} again: {what}", signal=name, what=what)
            return
        self._stoppingOnSignal = True
        _log.info("received {signal}: stopping gracefully", signal=name)
        self._reactor.addSystemEventTrigger("after", "shutdown", ignoreStopSignals)
        if self._reactor.running:
            self._reactor.stop()

    def _reloadOnSignal(self, number: int, frame: Any) -> None:
        self._reactor.callFromThread(self._reload)

    def _reload(self) -> None:
        _log.info("received SIGHUP: reloading certificates")
        if self._reloadCall is not None:
            self._reloadCall()
