"""
tlsreply as a tool for other people's test suites: a real TLS server to
test clients against.

  - L{startTLSReplyServer} and L{TestServer} (in L{tlsreply.testing.server}):
    a server for trial and other Twisted code;
  - L{tlsreply.testing.pytest_plugin}: the C{tlsreply_server} fixtures,
    registered with pytest when tlsreply is installed;
  - L{tlsreply.testing.ca}: the test CA and its certificates;
  - L{tlsreply.testing.scenarios}: the local badssl, deliberately broken or
    unusual servers and what a correct client sees of each.

The server core (the rest of C{tlsreply}) never imports this package.
Nothing heavy is imported until a name is used (PEP 562): pytest imports
the plugin, and so this package, in every project that has tlsreply
installed.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "TestServer": "tlsreply.testing.server",
    "startTLSReplyServer": "tlsreply.testing.server",
}

__all__ = ["TestServer", "startTLSReplyServer"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tlsreply.testing' has no attribute {name!r}")


if TYPE_CHECKING:
    from tlsreply.testing.server import TestServer, startTLSReplyServer
