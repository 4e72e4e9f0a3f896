# -*- test-case-name: tests.test_daemonstart -*-
"""
What tlsreply needs to know of the C{twistd} that runs it: whether it
daemonizes, how to tell twistd's waiting first process that the start
failed, and which user the process will be once twistd has dropped root
(C{--uid}, C{--gid}).

Without C{-n}, twistd forks and its first process waits on a pipe, the
I{status pipe}, for the daemon to write C{b"0"} (started) or C{b"1 "} and
a reason (failed); it prints the reason and exits 1
(C{twisted.scripts._twistd_unix.UnixApplicationRunner}). twistd writes the
failure itself only for an C{Exception} raised while the application
starts, with the exception's qualified class name and a traceback on the
daemon's closed stderr; tlsreply ends a failed start with C{SystemExit}
(one log line, no traceback), which twistd lets through, and the first
process then waited forever. L{TwistdRunner.reportStartFailure} writes the
failure as twistd would, and removes the pidfile as twistd would.

Everything here reads twistd's options (the runner's C{config}, which the
plugin's options reach as their C{parent}); under C{twist}, C{tlsreply
serve} or in a test there are none, and nothing here does anything.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from twisted.python.util import untilConcludes

#: The most twistd's first process reads from the status pipe (one read).
STATUS_PIPE_READ = 100

Access = Literal["read", "write"]


@dataclass(frozen=True)
class RunAs:
    """
    The identity file permissions are checked against.

    @ivar groups: every group the process is in, C{gid} included.
    """

    uid: int
    gid: int
    groups: tuple[int, ...]


class TwistdRunner:
    """
    The twistd running this process, seen through its options.
    """

    def __init__(self, options: Mapping[str, Any] | None) -> None:
        """
        @param options: twistd's C{ServerOptions}, or C{None} when the
            program is not twistd.
        """
        self._options: Any = options if options is not None and "nodaemon" in options else None

    @classmethod
    def of(cls, pluginOptions: object) -> TwistdRunner:
        """
        The twistd whose command line holds C{pluginOptions} (tlsreply's
        options), if any.
        """
        return cls(getattr(pluginOptions, "parent", None))

    @property
    def daemonizes(self) -> bool:
        """
        Whether twistd forks a daemon (no C{-n}, no C{--debug}): then
        anything that ends the start must reach its status pipe.
        """
        options = self._options
        return options is not None and not options["nodaemon"] and not options.get("debug")

    def reportStartFailure(self, reason: str) -> None:
        """
        Tell twistd's waiting first process that the start failed, with
        C{reason} (cut to what it reads), and remove the daemon's pidfile:
        what twistd does for an exception, for a start that ends with
        C{SystemExit}. Nothing happens when twistd did not daemonize or
        was told already.
        """
        options = self._options
        pipe = options.get("statusPipe") if options is not None else None
        if pipe is None:
            return
        options["statusPipe"] = None  # once, and never by twistd as well
        # The pidfile first: once told, the first process exits, and what
        # its caller finds then must be final.
        self._removePidfile()
        try:
            untilConcludes(os.write, pipe, statusPipeMessage(reason))
        finally:
            untilConcludes(os.close, pipe)

    def _removePidfile(self) -> None:
        """
        Remove the pidfile, if it names this process.
        """
        pidfile = self._options.get("pidfile")
        if not pidfile:
            return
        try:
            if Path(pidfile).read_text().strip() == str(os.getpid()):
                os.unlink(pidfile)
        except OSError:
            pass

    def runAs(self) -> RunAs | None:
        """
        Who the process will be once twistd has dropped root for
        C{--uid}/C{--gid} (with C{initgroups}, as twistd does), or C{None}
        if it stays who it is: no C{--uid}, not root, or root again.
        """
        options = self._options
        uid = options.get("uid") if options is not None else None
        if uid is None or uid == 0 or os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return None  # twistd cannot switch to it either
        gid = options.get("gid")
        if gid is None:
            gid = entry.pw_gid
        groups = tuple(sorted({gid, *os.getgrouplist(entry.pw_name, gid)}))
        return RunAs(uid, gid, groups)


def statusPipeMessage(reason: str) -> bytes:
    """
    The failure as twistd writes it to its status pipe: C{b"1 "}, then the
    reason, ASCII with backslash escapes, cut with C{...} to what the
    first process reads.
    """
    message = b"1 " + reason.encode("ascii", "backslashreplace")
    if len(message) > STATUS_PIPE_READ:
        message = message[: STATUS_PIPE_READ - 3] + b"..."
    return message


def unreachableBy(runAs: RunAs, files: Iterable[tuple[Path, Access]]) -> list[Path]:
    """
    The files that C{runAs} could not open for the access given, judged
    from owners and permission bits (each folder on the way must let it
    through). Access control lists and capabilities are not considered;
    a file that does not exist is not reported.
    """
    return [path for path, access in files if not _reachable(runAs, path, access)]


def _reachable(runAs: RunAs, path: Path, access: Access) -> bool:
    try:
        target = Path(os.path.abspath(path)).resolve(strict=True)
        status = target.stat()
    except OSError:
        return True
    for folder in reversed(target.parents):
        try:
            if not _allowed(runAs, folder.stat(), "x"):
                return False
        except OSError:
            return True
    wanted = "w" if access == "write" else "r"
    if not _allowed(runAs, status, wanted):
        return False
    # A folder is read by listing it, which takes both.
    return not stat.S_ISDIR(status.st_mode) or _allowed(runAs, status, "x")


_BITS = {
    "r": (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH),
    "w": (stat.S_IWUSR, stat.S_IWGRP, stat.S_IWOTH),
    "x": (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH),
}


def _allowed(runAs: RunAs, status: os.stat_result, what: str) -> bool:
    """
    The kernel's choice: the owner's bits for the owner, else the group's
    for a member, else the others'.
    """
    owner, group, other = _BITS[what]
    if status.st_uid == runAs.uid:
        return bool(status.st_mode & owner)
    if status.st_gid in runAs.groups:
        return bool(status.st_mode & group)
    return bool(status.st_mode & other)
