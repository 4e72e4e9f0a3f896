"""
tlsreply: a TLS reply server built on Twisted.

For every connection it completes the TLS server handshake, writes a fixed
reply, sends close_notify and closes. The public API below is what an
application needs to embed it::

    from tlsreply import (
        ReplyFactory, TLSReplyService, buildServerContexts, loadCredentials,
    )

    credentials = loadCredentials("cert.pem", "key.pem")
    service = TLSReplyService.fromDescriptions(
        reactor,
        ["tcp:4433"],
        buildServerContexts(credentials),
        ReplyFactory(b"hello\\n", clock=reactor),
    )
    service.setServiceParent(application)
"""

from tlsreply._version import __version__
from tlsreply.credentials import ServerCredentials, loadCredentials
from tlsreply.devcert import ensureDevelopmentCertificate
from tlsreply.errors import ConfigurationError
from tlsreply.handshake import HandshakeInfo
from tlsreply.protocol import ReplyFactory, ReplyProtocol, wrapWithTLS
from tlsreply.service import TLSReplyService, parseListenAddress
from tlsreply.tlscontext import ServerContexts, TLSPolicy, buildServerContexts

__all__ = [
    "ConfigurationError",
    "HandshakeInfo",
    "ReplyFactory",
    "ReplyProtocol",
    "ServerContexts",
    "ServerCredentials",
    "TLSPolicy",
    "TLSReplyService",
    "__version__",
    "buildServerContexts",
    "ensureDevelopmentCertificate",
    "loadCredentials",
    "parseListenAddress",
    "wrapWithTLS",
]
