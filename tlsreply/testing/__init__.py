"""
tlsreply as a tool for other people's test suites: a real TLS server to
test clients against.

  - L{startTLSReplyServer} and L{TestServer} (in L{tlsreply.testing.server}):
    a server for trial and other Twisted code;
  - L{tlsreply.testing.pytest_plugin}: the C{tlsreply_server} fixtures,
    registered with pytest when tlsreply is installed;
  - L{tlsreply.testing.ca}: the test CA and its certificates, and
    L{tlsreply.testing.issuing}: a test server's CA (C{server.ca}), which
    issues client and server certificates as files;
  - L{tlsreply.testing.scenarios}: the local badssl, deliberately broken or
    unusual servers and what a correct client sees of each
    (L{ExpectedOutcome}, C{server.expectedOutcome}).

The server core (the rest of C{tlsreply}) never imports this package.
Nothing heavy is imported until a name is used (PEP 562): pytest imports
the plugin, and so this package, in every project that has tlsreply
installed.
"""

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "ExpectedOutcome": "tlsreply.testing.scenariobase",
    "IssuedCertificate": "tlsreply.testing.issuing",
    "IssuingCA": "tlsreply.testing.issuing",
    "SCENARIOS": "tlsreply.testing.scenarios",
    "TestCA": "tlsreply.testing.ca",
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
    from tlsreply.testing.ca import TestCA
    from tlsreply.testing.issuing import IssuedCertificate, IssuingCA
    from tlsreply.testing.scenariobase import ExpectedOutcome
    from tlsreply.testing.scenarios import SCENARIOS
    from tlsreply.testing.server import TestServer, startTLSReplyServer
