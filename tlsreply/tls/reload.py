# -*- test-case-name: tests.test_lifecycle -*-
"""
Swapping the TLS contexts of a running server (certificate rotation).

A reload builds a complete new set of contexts from the files, and only
then puts it in place: connections accepted afterwards use the new one,
connections in progress finish on the one they started with (each OpenSSL
connection holds its own reference to its context). If anything fails to
load, nothing changes and the error is logged; a reload never stops the
server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.logger import Logger
from zope.interface import implementer

from tlsreply.errors import ConfigurationError
from tlsreply.tls.contexts import ServerContexts
from tlsreply.tls.policy import TLSPolicy


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableContexts:
    """
    Hands each new connection to the current L{ServerContexts}.

    @ivar current: the contexts new connections are created from.
    @ivar generation: how many times the contexts have been replaced (the
        reloads that worked).
    @ivar failures: how many reloads failed (the previous contexts stayed).
    """

    _log = Logger()

    def __init__(
        self, current: ServerContexts, load: Callable[[], ServerContexts]
    ) -> None:
        """
        @param current: the contexts to start with.
        @param load: builds a fresh set of contexts from the files,
            raising L{ConfigurationError} if it cannot.
        """
        self.current = current
        self.generation = 0
        self.failures = 0
        self._load = load

    @property
    def policy(self) -> TLSPolicy:
        """
        The policy the current contexts follow.
        """
        return self.current.policy

    def contextForHandshake(self, serverName: str | None) -> SSL.Context:
        """
        The current contexts' choice for C{serverName} (see
        L{ServerContexts.contextForHandshake}).
        """
        return self.current.contextForHandshake(serverName)

    def servedCertificate(self, connection: SSL.Connection) -> str | None:
        """
        See L{ServerContexts.servedCertificate}.
        """
        return self.current.servedCertificate(connection)

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        return self.current.serverConnectionForTLS(tlsProtocol)

    def reload(self) -> bool:
        """
        Build new contexts and, if that worked, use them for new
        connections. A reload also starts a fresh session cache and fresh
        session-ticket keys, so every client does one full handshake.

        @return: whether the new contexts are in use.
        """
        try:
            contexts = self._load()
        except ConfigurationError as e:
            self.failures += 1
            self._log.error(
                "reload failed, still serving the previous certificates: {error}",
                error=str(e),
            )
            return False
        self.current = contexts
        self.generation += 1
        self._log.info(
            "reloaded: serving {count} certificate(s): {fingerprints}",
            count=len(contexts.credentials),
            fingerprints=", ".join(c.fingerprint for c in contexts.credentials),
            generation=self.generation,
        )
        return True
