# -*- test-case-name: tests.test_certificatedirectory, tests.test_certificate_selection -*-
"""
Loading every certificate in a folder (C{--cert-dir}).

A folder is read by file name, and every file that tlsreply reads must be
used: a file it would read but cannot use is an error naming that file,
never skipped. Skipping it would be silent, and on a reload it would take
a name out of service (an emptied or half-written certificate file), which
is what a failed reload exists to prevent: the error fails the whole load,
and a reload keeps the previous certificates. Every other name is ignored,
by a rule simple enough to document: a README or an editor's backup
beside the certificates is no mistake.

Only regular files are opened, or symbolic links to them
(L{tlsreply.tls.inputfiles}); a sub-folder is not read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tlsreply.errors import ConfigurationError
from tlsreply.tls.credentials import (
    ServerCredentials,
    holdsPrivateKey,
    pairCredentials,
    parseCertificates,
    parseOCSPResponse,
    parsePrivateKey,
)
from tlsreply.tls.inputfiles import readRegularFile

#: A certificate (its chain may follow), and its key if no C{NAME.key}.
CERTIFICATE_EXTENSIONS = (".pem", ".crt", ".cer")
#: The key of the certificate file of the same name.
KEY_EXTENSION = ".key"
#: The OCSP response (DER) stapled for the certificate of the same name.
OCSP_EXTENSION = ".ocsp"
_READ = (*CERTIFICATE_EXTENSIONS, KEY_EXTENSION, OCSP_EXTENSION)

#: Names that the documentation gives as ignored; a test checks both that
#: they are and that the README and docs/deployment.md name each.
IGNORED_EXAMPLES = (
    "README",
    "README.md",
    "a.pem.bak",
    "a.pem~",
    "a.pem.orig",
    "a.pem.dpkg-old",
    "a.csr",
    ".a.pem.swp",
    "..data",
)


def isIgnored(name: str) -> bool:
    """
    Whether a certificate folder's entry called C{name} is not read:
    hidden names (starting with a dot: editors' swap and lock files,
    Kubernetes' C{..data}), and names whose extension (in any case) is not
    C{.pem}, C{.crt}, C{.cer}, C{.key} or C{.ocsp}, which covers a README
    and every backup suffix (C{~}, C{.bak}, C{.orig}, C{.dpkg-old}).
    """
    return name.startswith(".") or os.path.splitext(name)[1].lower() not in _READ


@dataclass
class _Entry:
    path: Path
    data: bytes
    used: bool = False


def _what(extension: str) -> str:
    if extension == KEY_EXTENSION:
        return "private key"
    if extension == OCSP_EXTENSION:
        return "OCSP response"
    return "certificate"


def loadCertificateDirectory(directory: Path | str) -> list[ServerCredentials]:
    """
    Load every certificate in a folder (not its sub-folders), in name
    order.

    Read are the regular files (or symbolic links to them) whose names do
    not start with a dot and end in C{.pem}, C{.crt}, C{.cer}, C{.key} or
    C{.ocsp}, in any case; every other name is ignored (L{isIgnored}). A
    certificate file C{NAME.pem} (C{.crt}, C{.cer}) holds a PEM certificate,
    then its chain; its key is in the same file or in C{NAME.key}; an OCSP
    response for it may be in C{NAME.ocsp}. Every file read must be one of
    these, used.

    @raise ConfigurationError: naming the file, for one that is not a
        regular file, cannot be read, is empty, holds no certificate or a
        malformed one, holds a key but no certificate, or is a key or OCSP
        response that no certificate uses; for a certificate without its
        key; and if the folder cannot be read or holds no certificate.
    """
    directory = Path(directory)
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise ConfigurationError(
            f"cannot read certificate directory {directory}: {e.strerror or e}"
        ) from None
    certificates: list[_Entry] = []
    companions: dict[tuple[str, str], list[_Entry]] = {}
    for name in names:
        if isIgnored(name):
            continue
        stem, extension = os.path.splitext(name)
        extension = extension.lower()
        what = _what(extension)
        path = directory / name
        data = readRegularFile(path, what)
        if data is None:
            continue
        if not data:
            raise ConfigurationError(f"{what} file {path} is empty")
        entry = _Entry(path, data)
        if extension in CERTIFICATE_EXTENSIONS:
            certificates.append(entry)
        else:
            companions.setdefault((stem, extension), []).append(entry)
    found = [_load(directory, entry, companions) for entry in certificates]
    for entries in companions.values():
        for entry in entries:
            if not entry.used:
                raise _unused(entry.path, [e.path for e in entries if e.used])
    if not found:
        raise ConfigurationError(f"certificate directory {directory} holds no certificate")
    return found


def _load(
    directory: Path, entry: _Entry, companions: dict[tuple[str, str], list[_Entry]]
) -> ServerCredentials:
    """
    The credentials of one certificate file, marking the key and OCSP
    response files it uses.
    """
    path, data = entry.path, entry.data
    stem = os.path.splitext(path.name)[0]
    if b"-----BEGIN CERTIFICATE-----" not in data and holdsPrivateKey(data):
        raise ConfigurationError(
            f"certificate file {path} holds a private key but no certificate (a "
            f"certificate's key goes in its own file, or in NAME{KEY_EXTENSION} beside it)"
        )
    chain = parseCertificates(data, path)
    keys = companions.get((stem, KEY_EXTENSION), [])
    if holdsPrivateKey(data):
        key = parsePrivateKey(data, path, "certificate")
        keyPath = path
        if keys:
            raise ConfigurationError(
                f"private key file {keys[0].path} is not used: {path.name} holds its "
                "own key (remove one of them)"
            )
    elif keys:
        keyEntry = keys[0]
        keyEntry.used = True
        key = parsePrivateKey(keyEntry.data, keyEntry.path)
        keyPath = keyEntry.path
    else:
        raise ConfigurationError(
            f"certificate {path} in {directory} has no key (in the same "
            f"file or in {stem}{KEY_EXTENSION})"
        )
    ocspResponse = None
    responses = companions.get((stem, OCSP_EXTENSION), [])
    if responses:
        responses[0].used = True
        ocspResponse = parseOCSPResponse(responses[0].data, responses[0].path)
    return pairCredentials(chain, path, key, keyPath, ocspResponse)


def _unused(path: Path, usedInstead: list[Path]) -> ConfigurationError:
    """
    The error for a key or OCSP response file that no certificate uses.

    @param usedInstead: the files of the same name (in another case) that
        are used.
    """
    stem, extension = os.path.splitext(path.name)
    what = _what(extension.lower())
    if usedInstead:
        return ConfigurationError(
            f"{what} file {path} is not used: {usedInstead[0].name} is used instead"
        )
    *others, last = (f"{stem}{e}" for e in CERTIFICATE_EXTENSIONS)
    names = f"{', '.join(others)} or {last}"
    return ConfigurationError(
        f"{what} file {path} belongs to no certificate: there is no {names} beside it"
    )
