# -*- test-case-name: tests.test_workers -*-
"""
C{--workers N}: one parent that binds and supervises, N workers that serve.

The parent binds every listening socket (L{tlsreply.workers._sockets}) before
twistd drops its privileges: for TCP, one socket per worker slot on the
same address (C{SO_REUSEPORT}: the kernel spreads connections over the
sockets and wakes only the worker whose socket a connection landed on),
for Unix and systemd sockets one socket shared by all. It builds the TLS contexts, then
forks the workers: a worker forked after the contexts were built shares
their session-ticket keys, so a ticket issued by one worker resumes on any
other (the session-ID cache, in each worker's memory, does not).

Each worker adopts its slot's sockets and serves them on a reactor of its
own (the parent's, copied by C{fork}, is never run in a worker). The
parent accepts nothing; it:

  - replaces a worker that dies (after a pause that grows if workers keep
    dying at once); its sockets stay open in the parent meanwhile, so
    connections wait in the kernel's queue rather than being refused;
  - on SIGHUP, builds new contexts (new certificates, new ticket keys
    shared by the new workers), forks a new worker for each slot, and only
    then stops the old one gracefully: nothing is refused meanwhile;
  - on SIGTERM or SIGINT, stops every worker gracefully (with SIGTERM:
    workers ignore a SIGINT, which Ctrl-C sends them too) and exits 0 once
    they have; a second one makes them abort what is left.

A worker closes, right after C{fork}, every socket of the parent's reactor
(the C{--metrics} port and its connections, a scenario's CRL port): held by
a worker, such a port would outlive the parent, still bound but never
served. A worker whose parent has gone (killed with SIGKILL, say) stops
gracefully by itself, within about L{PARENT_CHECK_INTERVAL}.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsreply.connection.addresses import formatAddress
from tlsreply.tls.contexts import ServerContexts
from tlsreply.tls.reload import ReloadableContexts
from tlsreply.workers._cpulimit import CGROUP_MEMBERSHIP, CGROUP_ROOT, cgroupCPULimit
from tlsreply.workers._sockets import (
    AdoptingReactor,
    ListeningSockets,
    bindListeningSockets,
)

#: Seconds between the death of a worker that ran for a while and its
#: replacement; a worker that dies sooner than L{STABLE_AFTER} doubles the
#: pause, up to L{MAXIMUM_PAUSE}.
REPLACE_PAUSE = 0.1
STABLE_AFTER = 5.0
MAXIMUM_PAUSE = 30.0

#: Seconds, past the shutdown grace, that the parent waits for workers to
#: exit before it kills them.
KILL_AFTER_GRACE = 5.0

#: The signals a process of tlsreply's handles, blocked from a worker's
#: C{fork} until its own handlers are installed (L{_WorkerSignals}: SIGTERM
#: stops it, SIGINT and SIGHUP are ignored as the parent's business).
_WORKER_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}

#: Seconds between a worker's checks that its parent is still there.
PARENT_CHECK_INTERVAL = 1.0

_log = Logger(namespace="tlsreply.workers")


def workerCount(
    value: str, cgroupRoot: str = CGROUP_ROOT, membership: str = CGROUP_MEMBERSHIP
) -> int:
    """
    Parse C{--workers}: a whole number from 1, or C{auto} for one per CPU
    this process may use: the CPUs it may run on, or fewer if its cgroup's
    CPU quota allows fewer (L{cgroupCPULimit}).

    @param cgroupRoot: where cgroup v2 is mounted (a test's folder).
    @param membership: the file naming this process's cgroup.
    @raise ValueError: for anything else.
    """
    if value == "auto":
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
        limit = cgroupCPULimit(cgroupRoot, membership)
        return max(1, cpus if limit is None else min(cpus, limit))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"expected a whole number >= 1 or auto, got {value!r}")
    return int(value)


# The parent.

#: Builds a worker's service: (its reactor, the contexts, the reactor its
#: endpoints are parsed with, its number from 1).
WorkerServiceFactory = Callable[[Any, ServerContexts, Any, int], Service]


@dataclass
class Worker:
    """
    One worker process, as the parent sees it.
    """

    slot: int
    pid: int
    startedAt: float
    retired: bool = False
    exited: Deferred[int] = field(default_factory=Deferred)


@implementer(IReadDescriptor)
class _ExitWatch:
    """
    Readable when a worker exits (a pidfd, Linux 5.3 and later).
    """

    def __init__(self, reactor: Any, worker: Worker, exited: Callable[[Worker], None]) -> None:
        self._reactor = reactor
        self._worker = worker
        self._exited = exited
        self._fd = os.pidfd_open(worker.pid)
        reactor.addReader(self)

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "tlsreply"

    def doRead(self) -> None:
        self._reactor.removeReader(self)
        os.close(self._fd)
        self._exited(self._worker)

    def connectionLost(self, reason: Failure) -> None:
        pass

    def forget(self) -> None:
        """
        Close the pidfd in a worker, which inherited it and watches no
        sibling: this object, the parent's, never reads it there.
        """
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class WorkerPool(Service):
    """
    The parent of C{--workers N}: binds, forks, supervises (see the module
    docstring).

    @ivar workers: the live workers, by pid.
    @ivar sockets: the listening sockets, once bound.
    @ivar exitObservers: called with each worker that has exited (and been
        reaped), before it is replaced.
    """

    def __init__(
        self,
        count: int,
        descriptions: Sequence[str],
        contexts: ReloadableContexts,
        serviceForWorker: WorkerServiceFactory,
        reactor: Any,
        shutdownGrace: float,
        parse: Callable[[Any, str], Any],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        @param serviceForWorker: builds what a worker runs.
        @param parse: turns a listening address into an endpoint, given the
            reactor to make it with (L{tlsreply.service.parseListenAddress}).
        @param now: a monotonic clock in seconds, for how long a worker
            lived (its pauses are timed by C{reactor}).
        """
        self.count = count
        self.descriptions = list(descriptions)
        self.contexts = contexts
        self.serviceForWorker = serviceForWorker
        self.shutdownGrace = shutdownGrace
        self.workers: dict[int, Worker] = {}
        self.sockets: ListeningSockets | None = None
        self.exitObservers: list[Callable[[Worker], None]] = []
        self._reactor = reactor
        self._parse = parse
        self._now = now
        self._stopping = False
        self._pauses = [REPLACE_PAUSE] * count
        self._pending: dict[int, Any] = {}

    @property
    def addresses(self) -> list[str]:
        return [formatAddress(a) for a in self.sockets.addresses] if self.sockets else []

    def privilegedStartService(self) -> None:
        """
        Bind every listening socket, while twistd still has its privileges.

        @raise ConfigurationError: if one cannot be bound.
        """
        super().privilegedStartService()
        self._bind()

    def startService(self) -> None:
        super().startService()
        self._bind()
        # Fork once the reactor runs: its logging and signal handling are
        # then in place, in the parent and (copied) in every worker.
        self._reactor.callWhenRunning(self._startWorkers)

    def _bind(self) -> None:
        if self.sockets is None:
            self.sockets = bindListeningSockets(self.count, self.descriptions, self._parse)

    def _startWorkers(self) -> None:
        _log.info(
            "tlsreply listening on {addresses} with {count} workers",
            addresses=self.addresses,
            count=self.count,
        )
        for slot in range(self.count):
            self._fork(slot)

    def _fork(self, slot: int) -> Worker:
        assert self.sockets is not None
        contexts = self.contexts.current
        parent = os.getpid()
        # Blocked across the fork: one sent to the new worker before its
        # own handlers are in place waits for them (see _runWorker) instead
        # of reaching the parent's, copied into the child, which would lose
        # it (they hand it to the parent's reactor, which never runs there).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                _runWorker(
                    slot, self.sockets, contexts, self.serviceForWorker, self._reactor,
                    parent, mask,
                )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        worker = Worker(slot, pid, self._now())
        self.workers[pid] = worker
        _log.info("started worker {number} (pid {pid})", number=slot + 1, pid=pid)
        self._watch(worker)
        return worker

    def _watch(self, worker: Worker) -> None:
        if hasattr(os, "pidfd_open"):
            _ExitWatch(self._reactor, worker, self._exited)
        else:  # pragma: no cover (Linux older than 5.3, or not Linux)
            self._poll(worker)

    def _poll(self, worker: Worker) -> None:
        pid, _ = os.waitpid(worker.pid, os.WNOHANG)
        if pid:
            self._exited(worker, reaped=True)
        else:
            self._reactor.callLater(0.5, self._poll, worker)

    def _exited(self, worker: Worker, reaped: bool = False) -> None:
        status = 0
        if not reaped:
            _, status = os.waitpid(worker.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.workers.pop(worker.pid, None)
        for observer in self.exitObservers:
            try:
                observer(worker)
            except Exception:
                _log.failure("worker exit observer {observer!r} failed", observer=observer)
        number = worker.slot + 1
        if worker.retired or self._stopping:
            if code:
                _log.warn(
                    "worker {number} (pid {pid}) stopped with status {code}",
                    number=number, pid=worker.pid, code=code,
                )
            worker.exited.callback(code)
            return
        lived = self._now() - worker.startedAt
        pause = self._pauses[worker.slot] = (
            min(MAXIMUM_PAUSE, self._pauses[worker.slot] * 2)
            if lived < STABLE_AFTER
            else REPLACE_PAUSE
        )
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        _log.error(
            "worker {number} (pid {pid}) {how} after {lived:.1f}s; replacing it in {pause:g}s",
            number=number, pid=worker.pid, how=how, lived=lived, pause=pause,
        )
        worker.exited.callback(code)
        self._pending[worker.slot] = self._reactor.callLater(pause, self._replace, worker.slot)

    def _replace(self, slot: int) -> None:
        self._pending.pop(slot, None)
        if not self._stopping:
            self._fork(slot)

    def reload(self) -> bool:
        """
        Build new contexts; if that worked, start a new worker for every
        slot, then stop the old ones gracefully.

        @return: whether new workers were started.
        """
        if not self.contexts.reload():
            return False
        old = [w for w in self.workers.values() if not w.retired]
        _log.info("replacing {count} workers with ones on the new contexts", count=len(old))
        for worker in old:
            self._fork(worker.slot)
            self._retire(worker)
        return True

    def _retire(self, worker: Worker) -> None:
        worker.retired = True
        self._signal(worker, signal.SIGTERM)

    def _signal(self, worker: Worker, number: int) -> None:
        try:
            os.kill(worker.pid, number)
        except ProcessLookupError:
            pass

    def stopService(self) -> Deferred[None]:
        """
        Stop every worker gracefully (they stop listening at once and let
        their connections finish for the shutdown grace), close the
        parent's sockets, and fire once every worker has exited; kill those
        still there after the grace.
        """
        super().stopService()
        self._stopping = True
        for pending in self._pending.values():
            if pending.active():
                pending.cancel()
        self._pending.clear()
        workers = list(self.workers.values())
        for worker in workers:
            if not worker.retired:  # those are stopping already
                self._signal(worker, signal.SIGTERM)
        if self.sockets is not None:
            self.sockets.close()
        if not workers:
            return succeed(None)
        _log.info("stopping {count} workers", count=len(workers))
        done: Deferred[None] = Deferred()
        remaining = {w.pid for w in workers}

        def exited(code: int, pid: int) -> None:
            remaining.discard(pid)
            if not remaining and not done.called:
                # The last exit may be a killed worker's, after the killer ran.
                if killer.active():
                    killer.cancel()
                done.callback(None)

        def kill() -> None:
            for worker in workers:
                if worker.pid in remaining:
                    _log.warn(
                        "worker {number} (pid {pid}) still running {grace:g}s after "
                        "SIGTERM: killing it",
                        number=worker.slot + 1, pid=worker.pid,
                        grace=self.shutdownGrace + KILL_AFTER_GRACE,
                    )
                    self._signal(worker, signal.SIGKILL)

        killer = self._reactor.callLater(self.shutdownGrace + KILL_AFTER_GRACE, kill)
        for worker in workers:
            worker.exited.addCallback(exited, worker.pid)
        return done

    def abortAll(self) -> int:
        """
        Tell every worker to abort its connections now (a second SIGTERM).

        @return: how many workers were told.
        """
        workers = list(self.workers.values())
        for worker in workers:
            self._signal(worker, signal.SIGTERM)
        return len(workers)


# A worker.


def _closeInherited(parentReactor: Any) -> None:
    """
    In a worker, right after C{fork}: close the sockets the parent's reactor
    serves (the C{--metrics} port and its connections, a scenario's CRL
    port), which a worker has no use for. Left open, each worker would keep
    them: after a SIGKILL of the parent, its metrics port would stay bound
    with nobody to accept (C{/ready} times out instead of being refused, a
    restart fails with EADDRINUSE).

    Each is closed through its socket object, not by number: the parent's
    objects stay in the worker's memory, and a closed socket object closes
    nothing when it is collected, whereas a number closed here may be
    reused by the worker and closed again by that collection. The parent's
    waker and epoll instance are left alone: their owners close them by
    number, and they hold no address.
    """
    for selectable in {*parentReactor.getReaders(), *parentReactor.getWriters()}:
        if isinstance(selectable, _ExitWatch):
            selectable.forget()
            continue
        sock = getattr(selectable, "socket", None)
        if isinstance(sock, socket.socket):
            sock.close()


def _runWorker(
    slot: int,
    sockets: ListeningSockets,
    contexts: ServerContexts,
    serviceForWorker: WorkerServiceFactory,
    parentReactor: Any,
    parent: int,
    mask: set[int | signal.Signals],
) -> None:
    """
    The life of a worker process, right after C{fork}: never returns.

    @param parentReactor: the parent's, copied by C{fork}, never run here.
    @param parent: the parent's pid, taken before the C{fork}, so that a
        parent that died at once is noticed too.
    @param mask: the signal mask to restore once the worker's own handlers
        are installed (the stop signals are blocked until then).
    """
    code = 1
    try:
        for number in _WORKER_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        _closeInherited(parentReactor)
        mine = sockets.slots[slot]
        for other in {id(s): s for s in sum(sockets.slots, []) if s not in mine}.values():
            other.close()
        reactor = _newReactor()
        service = serviceForWorker(reactor, contexts, AdoptingReactor(reactor, mine), slot + 1)
        signals = _WorkerSignals(reactor, service)
        signals.install()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _ParentWatch(reactor, parent, slot + 1, signals.stopGracefully).start()
        service.startService()
        reactor.run(installSignalHandlers=False)
        code = 0
    except BaseException:
        _log.failure("worker {number} failed", number=slot + 1)
    finally:
        os._exit(code)


def _newReactor() -> Any:
    """
    A reactor of the worker's own (the parent's was copied by C{fork} and
    shares its epoll instance with the parent: it must not run here).
    """
    try:
        from twisted.internet.epollreactor import EPollReactor

        return EPollReactor()
    except ImportError:  # pragma: no cover (not Linux)
        from twisted.internet.pollreactor import PollReactor

        return PollReactor()


class _WorkerSignals:
    """
    A worker's signals: SIGTERM stops it gracefully, a second one aborts
    its connections. SIGINT and SIGHUP are the parent's business: Ctrl-C at
    a terminal reaches every process of its group, and the parent turns it
    into one SIGTERM for each worker, which a SIGINT of the worker's own
    would make a second signal (an abort instead of a graceful stop).
    """

    def __init__(self, reactor: Any, service: Any) -> None:
        self._reactor = reactor
        self._service = service
        self._stopping = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._received)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _received(self, number: int, frame: Any) -> None:
        self._reactor.callFromThread(self._stop, signal.Signals(number).name)

    def _stop(self, name: str) -> None:
        if self._stopping:
            self._service.connections.abortAll(f"aborted on a second {name}")
            return
        self.stopGracefully()

    def stopGracefully(self) -> None:
        """
        Stop the worker gracefully, unless it is stopping already.
        """
        if self._stopping:
            return
        self._stopping = True
        stopped = self._service.stopService()
        stopped.addBoth(lambda _: self._reactor.stop())


class _ParentWatch:
    """
    Stops a worker whose parent has gone: nothing else would (a parent
    killed with SIGKILL signals no one), and an orphan would keep serving,
    unsupervised and never reloaded, on sockets that a new instance could
    not bind. Polling C{getppid}, which changes when the parent dies, works
    everywhere (unlike Linux's C{PR_SET_PDEATHSIG}, which follows the
    parent's thread, not the process).
    """

    def __init__(self, reactor: Any, parent: int, number: int, stop: Callable[[], None]) -> None:
        self._parent = parent
        self._number = number
        self._stop = stop
        self._check = LoopingCall(self._checkParent)
        self._check.clock = reactor

    def start(self) -> None:
        # Not now: the reactor must run before it can be stopped.
        self._check.start(PARENT_CHECK_INTERVAL, now=False)

    def _checkParent(self) -> None:
        if os.getppid() == self._parent:
            return
        self._check.stop()
        _log.warn(
            "worker {number}: the parent (pid {parent}) has exited; stopping",
            number=self._number,
            parent=self._parent,
        )
        self._stop()
