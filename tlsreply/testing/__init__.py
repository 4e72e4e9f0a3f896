# -*- test-case-name: tests.test_testing, tests.test_plugin -*-
"""
tlsreply as a tool for other people's test suites: a real TLS server to
test clients against.

  - L{startTLSReplyServer} and L{TestServer} (in L{tlsreply.testing.server}):
    a server for trial and other Twisted code;
  - L{tlsreply.testing.pytest_plugin}: the C{tlsreply_server} fixtures,
    registered with pytest when tlsreply is installed;
  - L{tlsreply.testing.issuing}: a test server's CA (C{server.ca}), which
    issues client and server certificates as files;
  - L{tlsreply.testing.badclients}: clients that misbehave, and
    L{tlsreply.testing.inmemory}: TLS without a socket.

The scenarios the servers serve, their test CA and outcomes are product
(C{tlsreply serve --scenario}), in L{tlsreply.scenarios}; the names tests
use most (L{TestCA}, L{ExpectedOutcome}, L{SCENARIOS}) are handed on here.

Only tests and this package import it: the server core never does.
Nothing heavy is imported until a name is used (PEP 562): pytest imports
the plugin, and so this package, in every project that has tlsreply
installed.
"""

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "ExpectedOutcome": "tlsreply.scenarios.outcomes",
    "IssuedCertificate": "tlsreply.testing.issuing",
    "IssuingCA": "tlsreply.testing.issuing",
    "SCENARIOS": "tlsreply.scenarios.servers",
    "TestCA": "tlsreply.scenarios.ca",
    "TestServer": "tlsreply.testing.server",
    "startTLSReplyServer": "tlsreply.testing.server",
}

__all__ = [
    "SCENARIOS",
    "ExpectedOutcome",
    "IssuedCertificate",
    "IssuingCA",
    "TestCA",
    "TestServer",
    "startTLSReplyServer",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tlsreply.testing' has no attribute {name!r}")


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
    from tlsreply.scenarios.ca import TestCA
    from tlsreply.scenarios.outcomes import ExpectedOutcome
    from tlsreply.scenarios.servers import SCENARIOS
    from tlsreply.testing.issuing import IssuedCertificate, IssuingCA
    from tlsreply.testing.server import TestServer, startTLSReplyServer
