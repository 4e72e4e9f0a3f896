"""
C{python -m tlsreply}: the C{tlsreply} command (L{tlsreply.command.cli}).
"""

import sys

from tlsreply.command.cli import main

if __name__ == "__main__":
    sys.exit(main())
