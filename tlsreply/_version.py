"""
tlsreply's version, and the C{--version} option every one of its command
lines shares (C{twistd tlsreply}, C{tlsreply} and its subcommands), which
would otherwise print Twisted's version, C{usage.Options}' default.
"""

import sys
from typing import NoReturn

__version__ = "0.1.0"


class VersionOption:
    """
    A C{usage.Options} mixin: C{--version} prints tlsreply's version.
    """

    def opt_version(self) -> NoReturn:
        """
        Print tlsreply's version and exit.
        """
        sys.stdout.write(f"tlsreply {__version__}\n")
        raise SystemExit(0)
