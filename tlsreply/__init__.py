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

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tlsreply._version import __version__

# Where each public name lives. They are imported on first use (PEP 562):
# importing tlsreply, or its pytest plugin, must not pull in Twisted,
# pyOpenSSL and cryptography for every pytest run of every project that
# has tlsreply installed.
_PUBLIC = {
    "AccessLog": "tlsreply.accesslog",
    "ConfigurationError": "tlsreply.errors",
    "ConnectionRecord": "tlsreply.records",
    "HandshakeInfo": "tlsreply.records",
    "ReloadableContexts": "tlsreply.reload",
    "ReplyFactory": "tlsreply.protocol",
    "ReplyProtocol": "tlsreply.protocol",
    "ServerContexts": "tlsreply.tlscontext",
    "ServerCredentials": "tlsreply.credentials",
    "ServerLifecycle": "tlsreply.lifecycle",
    "TLSPolicy": "tlsreply.policy",
    "TLSReplyService": "tlsreply.service",
    "buildServerContexts": "tlsreply.tlscontext",
    "decodeReplyText": "tlsreply.replies",
    "ensureDevelopmentCertificate": "tlsreply.devcert",
    "httpResponse": "tlsreply.replies",
    "loadCredentials": "tlsreply.credentials",
    "parseListenAddress": "tlsreply.service",
    "wrapWithTLS": "tlsreply.tlsmemory",
}

__all__ = [
    "AccessLog",
    "ConfigurationError",
    "ConnectionRecord",
    "HandshakeInfo",
    "ReloadableContexts",
    "ReplyFactory",
    "ReplyProtocol",
    "ServerContexts",
    "ServerCredentials",
    "ServerLifecycle",
    "TLSPolicy",
    "TLSReplyService",
    "__version__",
    "buildServerContexts",
    "decodeReplyText",
    "ensureDevelopmentCertificate",
    "httpResponse",
    "loadCredentials",
    "parseListenAddress",
    "wrapWithTLS",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tlsreply' has no attribute {name!r}")


def __dir__() -> list[str]:
    """
    The public names, which load on first use, with the module's own and
    its loaded submodules: not the lazy loader's imports.
    """
    here = globals()
    return sorted(
        {*__all__}
        | {n for n in here if n.startswith("__") or isinstance(here[n], ModuleType)}
    )


if TYPE_CHECKING:
    from tlsreply.accesslog import AccessLog
    from tlsreply.credentials import ServerCredentials, loadCredentials
    from tlsreply.devcert import ensureDevelopmentCertificate
    from tlsreply.errors import ConfigurationError
    from tlsreply.lifecycle import ServerLifecycle
    from tlsreply.policy import TLSPolicy
    from tlsreply.protocol import ReplyFactory, ReplyProtocol
    from tlsreply.records import ConnectionRecord, HandshakeInfo
    from tlsreply.reload import ReloadableContexts
    from tlsreply.replies import decodeReplyText, httpResponse
    from tlsreply.service import TLSReplyService, parseListenAddress
    from tlsreply.tlscontext import ServerContexts, buildServerContexts
    from tlsreply.tlsmemory import wrapWithTLS
