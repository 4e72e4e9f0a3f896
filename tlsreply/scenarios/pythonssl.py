# -*- test-case-name: tests.test_outcomes -*-
"""
What Python's C{ssl} does depends on the Python and the OpenSSL it runs on,
so the outcomes that depend on them are worked out for the one running,
from a few facts about it (L{PythonSSLFacts}), not written down for one.

Two scenarios depend on them today:

  - C{pq-hybrid-only}: OpenSSL offers X25519MLKEM768 from 3.5 on;
  - C{tls1.0-only} and C{tls1.1-only}: CPython's own
    C{create_default_context()} sets its minimum to TLS 1.2 (since 3.10),
    and the server's protocol_version alert refuses it; Debian's and
    Ubuntu's C{python3} leave the minimum to the system's OpenSSL
    configuration, so the client offers TLS 1.0, the old version is
    negotiated, and OpenSSL 3 at security level 1 or more refuses the
    server's SHA-1 handshake signature, the only kind TLS 1.0 and 1.1
    have ("legacy sigalg disallowed or unsupported").

The facts are plain values, so that C{make interop} can ask for the
outcomes of another Python (Debian's C{/usr/bin/python3}) from the facts
that Python reports about itself (L{PythonSSLFacts.fromValues}).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Final, TypedDict

#: The hybrid post-quantum key exchange (X25519 with ML-KEM-768) that
#: C{pq-hybrid-only} accepts alone, by its IANA and OpenSSL name.
HYBRID_GROUP: Final = "X25519MLKEM768"

#: OpenSSL's reason when it refuses a TLS 1.0 or 1.1 server's SHA-1
#: handshake signature (OpenSSL 3, security level 1 and up).
LEGACY_SIGALG: Final = "legacy sigalg disallowed or unsupported"

#: The alert a client gets from a server that refuses its versions.
PROTOCOL_VERSION_ALERT: Final = "tlsv1 alert protocol version"

#: The alert a client gets from a server that shares no group with it.
HANDSHAKE_FAILURE_ALERT: Final = "sslv3 alert handshake failure"


class PythonSSLFactValues(TypedDict):
    """
    L{PythonSSLFacts} as plain values, as a Python reports them about
    itself (L{PythonSSLFacts.values}).
    """

    opensslVersion: str
    opensslVersionInfo: list[int]
    minimumVersion: int
    securityLevel: int


@dataclass(frozen=True)
class PythonSSLFacts:
    """
    What decides a Python's outcomes: its OpenSSL, and what its
    C{ssl.create_default_context()} allows.

    @ivar opensslVersion: C{ssl.OPENSSL_VERSION} (C{"OpenSSL 3.0.19 27 Jan
        2026"}; LibreSSL names itself).
    @ivar opensslVersionInfo: C{ssl.OPENSSL_VERSION_INFO}'s first three
        numbers.
    @ivar minimumVersion: the default context's C{minimum_version}, as an
        integer (C{ssl.TLSVersion}: 771 is TLS 1.2; -2, C{MINIMUM_SUPPORTED},
        leaves it to OpenSSL's configuration).
    @ivar securityLevel: the default context's OpenSSL security level.
    """

    opensslVersion: str
    opensslVersionInfo: tuple[int, int, int]
    minimumVersion: int
    securityLevel: int

    @classmethod
    def running(cls) -> PythonSSLFacts:
        """
        The facts of the Python running this.
        """
        context = ssl.create_default_context()
        info = ssl.OPENSSL_VERSION_INFO
        return cls(
            ssl.OPENSSL_VERSION,
            (info[0], info[1], info[2]),
            int(context.minimum_version),
            int(context.security_level),
        )

    @classmethod
    def fromValues(cls, values: PythonSSLFactValues) -> PythonSSLFacts:
        """
        The facts another Python reported (L{values}).
        """
        major, minor, fix = values["opensslVersionInfo"][:3]
        return cls(
            values["opensslVersion"],
            (major, minor, fix),
            values["minimumVersion"],
            values["securityLevel"],
        )

    def values(self) -> PythonSSLFactValues:
        """
        These facts as plain values, for JSON.
        """
        return {
            "opensslVersion": self.opensslVersion,
            "opensslVersionInfo": list(self.opensslVersionInfo),
            "minimumVersion": self.minimumVersion,
            "securityLevel": self.securityLevel,
        }

    @property
    def isOpenSSL(self) -> bool:
        return self.opensslVersion.startswith("OpenSSL ")

    @property
    def offersHybrid(self) -> bool:
        """
        Whether the default context offers L{HYBRID_GROUP}: OpenSSL 3.5
        and later do by default; earlier ones do not know it.
        """
        return self.isOpenSSL and self.opensslVersionInfo >= (3, 5, 0)

    def offersVersion(self, version: ssl.TLSVersion) -> bool:
        """
        Whether the default context offers C{version}: its minimum is at
        or below it, or left to OpenSSL (whose own default, on every
        OpenSSL that Python 3.11 runs on, is TLS 1.0).
        """
        minimum = self.minimumVersion
        return minimum == ssl.TLSVersion.MINIMUM_SUPPORTED or minimum <= version

    @property
    def refusesSHA1Handshake(self) -> bool:
        """
        Whether the default context refuses a SHA-1 handshake signature
        (all a TLS 1.0 or 1.1 server can send): OpenSSL 3 does at security
        level 1 and above.
        """
        return self.isOpenSSL and self.opensslVersionInfo >= (3, 0, 0) and self.securityLevel >= 1


#: The facts of the Python running this module.
RUNNING: Final = PythonSSLFacts.running()
