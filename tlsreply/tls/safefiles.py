# -*- test-case-name: tests.test_safefiles -*-
"""
The one way tlsreply writes a file: never through a symbolic link, and a
key or other secret readable by its owner only, also when the file was
there before.

A file tlsreply makes whole (a scenario's certificates and keys, the
development certificate, a test CA's files) is written by L{writeFile}: to
a new file in the same folder, created with C{O_EXCL|O_NOFOLLOW} and given
its mode before the first byte, then renamed over the name. A reader never
sees half a file, and a link standing at the name (symbolic or hard) is
replaced, never written through, nor is the old file's mode kept. A file
tlsreply appends to (the key log, the access log) is opened by
L{openToAppend} with C{O_NOFOLLOW}; a secret must moreover be a regular
file with no other name, and gets mode 0600 on the open descriptor (never
C{chmod} by path, which follows a link).

A symbolic link at the name is refused in both cases, with an
L{UnsafeFileError} that names it, rather than quietly replaced: it was
either planted there or is a mistake, and the operator should know. The
folder a file is in may be a link: it is the operator's (or the test's)
choice; only the file's own name is never followed.

Failures are C{OSError}s (with the path in C{filename}), so that each
caller words them as it words any other failure to write its file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, Final

#: The mode of a key or other secret: its owner's only.
SECRET_MODE: Final = 0o600

_LINK_REASON: Final = "a symbolic link, which tlsreply never writes through"
_NOT_REGULAR: Final = "not a regular file"


class UnsafeFileError(OSError):
    """
    A file tlsreply will not write: a symbolic link, or, for a secret, not a
    regular file or one with another hard link.

    Its C{strerror} says which (C{"a symbolic link, which tlsreply never
    writes through"}), its C{filename} where; C{str()} gives both.
    """

    def __init__(self, path: Path | str, code: int, reason: str) -> None:
        super().__init__(code, reason, os.fspath(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def describe(error: OSError) -> str:
    """
    An C{OSError} in one line for an operator: C{"PATH: REASON"} when it
    names a file, else the reason alone.
    """
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


def refuseSymbolicLink(path: Path | str, folder: int | None = None) -> None:
    """
    Raise L{UnsafeFileError} if C{path} is a symbolic link (dangling ones
    included); nothing if it is anything else or nothing at all.

    @param folder: a descriptor of C{path}'s folder, which C{path}'s last
        component is then looked up in.
    """
    name = Path(path).name if folder is not None else path
    try:
        status = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(status.st_mode):
        raise UnsafeFileError(path, errno.ELOOP, _LINK_REASON)


def writeFile(path: Path | str, data: bytes, mode: int | None = None) -> None:
    """
    Replace the file at C{path} with C{data}, atomically, without following
    a link at C{path}.

    @param mode: the file's mode (L{SECRET_MODE} for a key), set on the new
        file before anything is written to it; C{None} for a new file's
        usual mode (0666 less the umask).
    @raise UnsafeFileError: if C{path} is a symbolic link.
    @raise OSError: if it cannot be written (nothing is left behind).
    """
    path = Path(path)
    temporary = f".{path.name}.{secrets.token_hex(8)}.tmp"
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        refuseSymbolicLink(path, folder)
        descriptor = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o666 if mode is None else 0o600,
            dir_fd=folder,
        )
        try:
            with os.fdopen(descriptor, "wb") as stream:
                if mode is not None:
                    os.fchmod(descriptor, mode)
                stream.write(data)
            # A link that appeared at the name since is replaced by the
            # rename, not followed.
            os.replace(temporary, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
            raise
    except OSError as e:
        if e.filename is None or e.filename == temporary:
            e.filename = str(path)
        raise
    finally:
        os.close(folder)


def openToAppend(path: Path | str, secret: bool = False) -> BinaryIO:
    """
    Open the file at C{path} to append to it (creating it if missing),
    never through a symbolic link.

    @param secret: the file holds secrets (the key log): it must be a
        regular file with no other hard link (through which another file
        would get them), it is created, or made, L{SECRET_MODE}, and a
        FIFO or device is refused without waiting for it.
    @raise UnsafeFileError: for a symbolic link, or a secret's file that
        is not a regular one or has another link.
    @raise OSError: if it cannot be opened.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    if secret:
        flags |= os.O_NONBLOCK  # a FIFO must not block the start
    try:
        descriptor = os.open(path, flags, SECRET_MODE if secret else 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            refuseSymbolicLink(path)
        if secret and e.errno == errno.ENXIO:  # a FIFO with no reader, a device
            raise UnsafeFileError(path, errno.EINVAL, _NOT_REGULAR) from None
        raise
    try:
        if secret:
            _requirePrivateFile(descriptor, path)
            fcntl.fcntl(
                descriptor, fcntl.F_SETFL, fcntl.fcntl(descriptor, fcntl.F_GETFL) & ~os.O_NONBLOCK
            )
        return os.fdopen(descriptor, "ab")
    except BaseException:
        os.close(descriptor)
        raise


def restrictToOwner(path: Path | str) -> None:
    """
    Give the existing regular file at C{path} L{SECRET_MODE}, on an open
    descriptor, never through a symbolic link.

    @raise UnsafeFileError: for a symbolic link, or a file that is not a
        regular one or has another hard link.
    @raise OSError: if it cannot be opened.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            refuseSymbolicLink(path)
        raise
    try:
        _requirePrivateFile(descriptor, path)
    finally:
        os.close(descriptor)


def _requirePrivateFile(descriptor: int, path: Path | str) -> None:
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        raise UnsafeFileError(path, errno.EINVAL, _NOT_REGULAR)
    if status.st_nlink > 1:
        raise UnsafeFileError(
            path, errno.EMLINK, "has another hard link, through which its secrets would leak"
        )
    if stat.S_IMODE(status.st_mode) != SECRET_MODE:
        os.fchmod(descriptor, SECRET_MODE)
