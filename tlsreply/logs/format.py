# -*- test-case-name: tests.test_jsonlog,tests.test_ownlines,tests.test_tap -*-
"""
Where the server log goes, and in which format, under the program that
runs tlsreply: twistd or twist (C{tlsreply serve} is twist).

Both start logging after the plugin's options are parsed, with an
observer their own options chose; tlsreply chooses it instead, through the
options those programs read: twistd's C{logger} (its C{--logger} option: a
factory for the log observer) and twist's C{fileLogObserverFactory} (what
its C{--log-format} sets). The observer writes text or, for
C{--log-format json}, JSON, behind L{tlsreply.logs._ownlines.OwnLinesObserver}
(only lines tlsreply chose). Nothing else of theirs changes: the log still
goes where their options say. Where twistd's user chose an observer
(C{--logger}, C{--syslog}), the text log is left to it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from typing import IO, Any

from twisted.logger import ILogObserver, textFileLogObserver
from twisted.python.logfile import LogFile

from tlsreply.errors import ConfigurationError
from tlsreply.logs._jsonlines import JSONLinesObserver
from tlsreply.logs._ownlines import OwnLinesFactory, OwnLinesObserver


def _isTwistd(runner: Mapping[str, Any]) -> bool:
    return "nodaemon" in runner


def _isTwist(runner: Mapping[str, Any]) -> bool:
    return "fileLogObserverFactory" in runner or "logFile" in runner


#: twistd's log observer factory, made by L{useServerLog} (there is one
#: twistd, and one set of its options, per process).
twistdLog: TwistdLog | None = None


def useServerLog(runner: Any, logFormat: str) -> None:
    """
    Make the program running tlsreply (its parsed options, C{runner}) log
    only the lines tlsreply chose (L{tlsreply.logs._ownlines}), as text or as
    one JSON line each (C{logFormat} C{"json"}, L{tlsreply.logs._jsonlines}).

    @raise ConfigurationError: for JSON to twistd's C{--syslog}, which is
        not a stream to write lines to.
    """
    if runner is None:
        return
    json = logFormat == "json"
    if _isTwistd(runner):
        if not json and (
            runner.get("syslog")
            or runner.get("logger")
            or (runner.get("logfile") == "-" and not runner.get("nodaemon"))
        ):
            # The user's choice of observer, or twistd's own refusal.
            return
        if runner.get("syslog"):
            raise ConfigurationError("--log-format json cannot go to syslog (twistd --syslog)")
        if runner.get("logfile") == "-" and not (runner.get("nodaemon") or runner.get("debug")):
            # twistd refuses this for its own log; its log is now ours.
            raise ConfigurationError(
                "--log-format json: a daemon cannot log to standard output "
                "(twistd --logfile - needs -n)"
            )
        global twistdLog
        twistdLog = TwistdLog(runner, json)
        # twistd takes its --logger as a dotted name, which it imports once
        # the plugin's options are parsed.
        runner["logger"] = f"{__name__}.twistdLog"
    elif _isTwist(runner):
        factory = runner.get("fileLogObserverFactory") or textFileLogObserver
        if json:
            factory = JSONLinesObserver
            runner["logFormat"] = "json"
        if not isinstance(factory, OwnLinesFactory):
            runner["fileLogObserverFactory"] = OwnLinesFactory(factory)


class TwistdLog:
    """
    twistd's C{logger} option: makes the observer twistd would make, in
    text or JSON, writing to standard output in the foreground without
    C{--logfile} (or with C{--logfile -}), else to the log file
    (C{twistd.log} by default), rotated as twistd rotates it: by size, and
    on SIGUSR1 (logrotate's C{postrotate} signal for twistd), unless
    something else handles that signal already.

    @ivar json: write JSON lines, not text.
    """

    def __init__(self, runner: Mapping[str, Any], json: bool) -> None:
        self._runner = runner
        self.json = json

    def __call__(self) -> ILogObserver:
        logfile = self._runner.get("logfile")
        stream: IO[str]
        if logfile == "-" or (self._runner.get("nodaemon") and not logfile):
            stream = sys.stdout
        else:
            logFile = LogFile.fromFullPath(logfile or "twistd.log")
            rotateOnSIGUSR1(logFile)
            stream = logFile
        if self.json:
            return OwnLinesObserver(JSONLinesObserver(stream))
        return OwnLinesObserver(textFileLogObserver(stream))


def rotateOnSIGUSR1(logFile: LogFile) -> None:
    """
    Rotate C{logFile} on SIGUSR1, as twistd does for its own log file: only
    where the signal still has its default action (which ends the process).
    """
    if signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None):
        return

    def rotate(number: int, frame: Any) -> None:
        from twisted.internet import reactor

        # In the reactor's thread, between two writes.
        reactor.callFromThread(logFile.rotate)  # type: ignore[attr-defined]

    signal.signal(signal.SIGUSR1, rotate)


def serverLogOnStdout(runner: Any) -> bool:
    """
    Does the program running tlsreply write its log to standard output, as
    text or as tlsreply's JSON? (twistd in the foreground without
    C{--logfile}, C{--syslog} or a C{--logger} of its own; twist with its
    log on standard output, as text or as tlsreply's JSON.) Then the
    connection lines can go there directly, in the same format.
    """
    if runner is None:
        return False
    if _isTwistd(runner):
        logger = runner.get("logger")
        return bool(
            runner["nodaemon"]
            and runner.get("logfile") in (None, "-")
            and not runner.get("syslog")
            and (logger is None or isinstance(logger, TwistdLog))
        )
    if _isTwist(runner):
        factory = runner.get("fileLogObserverFactory")
        if isinstance(factory, OwnLinesFactory):
            factory = factory.factory
        return bool(
            runner.get("logFile") is sys.stdout
            and factory in (textFileLogObserver, JSONLinesObserver)
        )
    return False
