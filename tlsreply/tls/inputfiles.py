# -*- test-case-name: tests.test_certificatedirectory,tests.test_credentials,tests.test_tap -*-
"""
The one way tlsreply reads a file an operator names: a certificate, a key,
a chain, a client CA, an OCSP response, a reply file, every file of a
certificate folder.

Only regular files are opened (or symbolic links to them, which is how
rotated certificates are published: Let's Encrypt's C{live/} folder,
Kubernetes' Secret volumes). A FIFO would block the start (or a reload, in
the reactor) in C{open} or C{read} until a writer came, a device may never
end (C{/dev/zero}) or act on being opened: each is refused with one line
naming it, at once. So is a pipe from a shell's process substitution
(C{--cert <(...)}): it could be read once, but a reload (SIGHUP) reads the
certificates, keys and CAs again.

OpenSSL opens the client CA file again by its path once it has been read
here (C{load_client_ca}, C{load_verify_locations} take paths only).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tlsreply.errors import ConfigurationError

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _notRegular(path: Path, mode: int, link: bool) -> ConfigurationError:
    kind = _KINDS.get(stat.S_IFMT(mode), "an unknown kind of file")
    what = f"a symbolic link to {kind}" if link else kind
    return ConfigurationError(
        f"{path} is {what}, not a regular file; tlsreply does not open it"
    )


def _missing(path: Path, what: str) -> ConfigurationError:
    """
    The error for a name that C{stat} cannot find: a symbolic link to
    nothing is said to be one.
    """
    try:
        target = os.readlink(path)
    except OSError:
        return ConfigurationError(f"{what} file not found: {path}")
    return ConfigurationError(
        f"{path} is a symbolic link to {target}, which does not exist"
    )


def readRegularFile(path: Path, what: str) -> bytes | None:
    """
    The bytes of C{path} if it is a regular file or a symbolic link to
    one, without ever opening anything else.

    The file is checked before it is opened (C{stat}), opened so that
    nothing can block (C{O_NONBLOCK}: a FIFO put in its place meanwhile
    opens at once) and checked again once open (C{fstat}), which is the
    check that counts. C{O_NOFOLLOW} is not used: symbolic links to
    regular files are how rotated certificates are published.

    @param what: what the file is, for messages (C{"certificate"}).
    @return: C{None} for a folder (not read: the caller says what a folder
        means where it expected a file).
    @raise ConfigurationError: for anything else that is not a regular
        file, a missing file or broken symbolic link, or a file that
        cannot be read.
    """

    def cannot(e: OSError) -> ConfigurationError:
        return ConfigurationError(f"cannot read {what} file {path}: {e.strerror or e}")

    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise _missing(path, what) from None
    except OSError as e:
        raise cannot(e) from None
    if stat.S_ISDIR(mode):
        return None
    if not stat.S_ISREG(mode):
        raise _notRegular(path, mode, link)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError as e:
        raise cannot(e) from None
    with open(descriptor, "rb", closefd=True) as opened:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _notRegular(path, mode, link)
        try:
            return opened.read()
        except OSError as e:
            raise cannot(e) from None


def readNamedFile(path: Path, what: str) -> bytes:
    """
    L{readRegularFile} for a file named on its own (C{--cert}, C{--key},
    C{--reply-file}...), where a folder is a mistake.

    @raise ConfigurationError: as L{readRegularFile}, and for a folder.
    """
    data = readRegularFile(path, what)
    if data is None:
        raise ConfigurationError(f"{what} path is a directory: {path}")
    return data
