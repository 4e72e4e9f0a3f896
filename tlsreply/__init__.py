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
from sys import meta_path as _metaPath
from types import ModuleType
from typing import TYPE_CHECKING, Any
from warnings import warn as _warn

from tlsreply._version import __version__

# Where each public name lives. They are imported on first use (PEP 562):
# importing tlsreply, or its pytest plugin, must not pull in Twisted,
# pyOpenSSL and cryptography for every pytest run of every project that
# has tlsreply installed.
_PUBLIC = {
    "AccessLog": "tlsreply.logs.access",
    "ConfigurationError": "tlsreply.errors",
    "ConnectionRecord": "tlsreply.connection.records",
    "HandshakeInfo": "tlsreply.connection.records",
    "ReloadableContexts": "tlsreply.tls.reload",
    "ReplyFactory": "tlsreply.protocol",
    "ReplyProtocol": "tlsreply.protocol",
    "ServerContexts": "tlsreply.tls.contexts",
    "ServerCredentials": "tlsreply.tls.credentials",
    "ServerLifecycle": "tlsreply.lifecycle",
    "TLSPolicy": "tlsreply.tls.policy",
    "TLSReplyService": "tlsreply.service",
    "buildServerContexts": "tlsreply.tls.contexts",
    "decodeReplyText": "tlsreply.replies",
    "ensureDevelopmentCertificate": "tlsreply.tls.devcert",
    "httpResponse": "tlsreply.replies",
    "loadCredentials": "tlsreply.tls.credentials",
    "parseListenAddress": "tlsreply.service",
    "wrapWithTLS": "tlsreply.transport.tlsmemory",
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


# The modules that moved into subpackages (issue 17), by their old names:
# importing one still works for one release, as the module under its new
# name, with a DeprecationWarning. The finder is asked first (an editable
# install's finder would find the old file of another checkout), and for
# any other name it costs one dictionary look-up.
# (tlsreply.metrics, tlsreply.workers and tlsreply.clienthello are packages
# now: their old modules' names are in the CHANGELOG.)
_MOVED: dict[str, str] = {
    "tlsreply._tcpinfo": "tlsreply.connection.tcpinfo",
    "tlsreply.accesslog": "tlsreply.logs.access",
    "tlsreply.addresses": "tlsreply.connection.addresses",
    "tlsreply.certificatedirectory": "tlsreply.tls.certificatedirectory",
    "tlsreply.certificates": "tlsreply.tls.certificates",
    "tlsreply.ciphersuitenames": "tlsreply.clienthello._ciphersuitenames",
    "tlsreply.cli": "tlsreply.command.cli",
    "tlsreply.clienthelloparser": "tlsreply.clienthello.parser",
    "tlsreply.connections": "tlsreply.connection.registry",
    "tlsreply.cpulimit": "tlsreply.workers._cpulimit",
    "tlsreply.credentials": "tlsreply.tls.credentials",
    "tlsreply.deadlines": "tlsreply.connection._deadlines",
    "tlsreply.devcert": "tlsreply.tls.devcert",
    "tlsreply.fingerprint": "tlsreply.clienthello.fingerprint",
    "tlsreply.hellopeek": "tlsreply.clienthello.peek",
    "tlsreply.jsonlog": "tlsreply.logs._jsonlines",
    "tlsreply.limits": "tlsreply.connection.limits",
    "tlsreply.lingering": "tlsreply.transport._lingering",
    "tlsreply.listening": "tlsreply.transport.listening",
    "tlsreply.logformat": "tlsreply.logs.format",
    "tlsreply.logtext": "tlsreply.connection.peertext",
    "tlsreply.metricscollectors": "tlsreply.metrics.collectors",
    "tlsreply.metricsdaemon": "tlsreply.instrumentation",
    "tlsreply.metricshttp": "tlsreply.metrics._http",
    "tlsreply.metricsreasons": "tlsreply.metrics._reasons",
    "tlsreply.metricsweb": "tlsreply.metrics.web",
    "tlsreply.metricsworkers": "tlsreply.metrics.multiprocess",
    "tlsreply.optionvalues": "tlsreply.command._values",
    "tlsreply.ownlines": "tlsreply.logs._ownlines",
    "tlsreply.pacing": "tlsreply.metrics._pacing",
    "tlsreply.policy": "tlsreply.tls.policy",
    "tlsreply.poller": "tlsreply.transport._poller",
    "tlsreply.proxyheader": "tlsreply.transport.proxyheader",
    "tlsreply.records": "tlsreply.connection.records",
    "tlsreply.reload": "tlsreply.tls.reload",
    "tlsreply.reloadaccess": "tlsreply.command._reloadaccess",
    "tlsreply.safefiles": "tlsreply.tls.safefiles",
    "tlsreply.tap": "tlsreply.command.tap",
    "tlsreply.testing.ca": "tlsreply.scenarios.ca",
    "tlsreply.testing.certificatescenarios": "tlsreply.scenarios.certificate",
    "tlsreply.testing.hostile": "tlsreply.scenarios.misbehaving",
    "tlsreply.testing.hostilescenarios": "tlsreply.scenarios.hostile",
    "tlsreply.testing.httpfiles": "tlsreply.scenarios._httpfiles",
    "tlsreply.testing.outcomes": "tlsreply.scenarios.outcomes",
    "tlsreply.testing.protocolscenarios": "tlsreply.scenarios.protocol",
    "tlsreply.testing.pythonssl": "tlsreply.scenarios.pythonssl",
    "tlsreply.testing.revocationscenarios": "tlsreply.scenarios.revocation",
    "tlsreply.testing.scenariobase": "tlsreply.scenarios.base",
    "tlsreply.testing.scenariocatalogue": "tlsreply.scenarios.catalogue",
    "tlsreply.testing.scenarios": "tlsreply.scenarios.servers",
    "tlsreply.testing.sha1": "tlsreply.scenarios._sha1",
    "tlsreply.testing.sha1probe": "tlsreply.scenarios._sha1probe",
    "tlsreply.testing.tlsrecords": "tlsreply.scenarios._tlsrecords",
    "tlsreply.tlscontext": "tlsreply.tls.contexts",
    "tlsreply.tlsmemory": "tlsreply.transport.tlsmemory",
    "tlsreply.tlsnames": "tlsreply.clienthello.names",
    "tlsreply.tlssocket": "tlsreply.transport.tlssocket",
    "tlsreply.twistdrunner": "tlsreply.command._twistd",
    "tlsreply.workersockets": "tlsreply.workers._sockets",
}


class _MovedModules:
    """
    Finds a moved module under its old name: the module itself, under its
    new one.
    """

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _MOVED:
            return None
        from importlib.machinery import ModuleSpec

        loader: Any = _MovedModules(_MOVED[name])
        return ModuleSpec(name, loader)

    def __init__(self, newName: str) -> None:
        self.newName = newName

    def create_module(self, spec: Any) -> ModuleType:
        _warn(
            f"{spec.name} is now {self.newName}; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        module = import_module(self.newName)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system gave the module the old name's spec.
        module.__spec__ = self.spec


if _MovedModules not in _metaPath:
    _metaPath.insert(0, _MovedModules)


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
    from tlsreply.connection.records import ConnectionRecord, HandshakeInfo
    from tlsreply.errors import ConfigurationError
    from tlsreply.lifecycle import ServerLifecycle
    from tlsreply.logs.access import AccessLog
    from tlsreply.protocol import ReplyFactory, ReplyProtocol
    from tlsreply.replies import decodeReplyText, httpResponse
    from tlsreply.service import TLSReplyService, parseListenAddress
    from tlsreply.tls.contexts import ServerContexts, buildServerContexts
    from tlsreply.tls.credentials import ServerCredentials, loadCredentials
    from tlsreply.tls.devcert import ensureDevelopmentCertificate
    from tlsreply.tls.policy import TLSPolicy
    from tlsreply.tls.reload import ReloadableContexts
    from tlsreply.transport.tlsmemory import wrapWithTLS
