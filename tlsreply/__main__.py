"""
C{python -m tlsreply}: the C{tlsreply} command (L{tlsreply.cli}).
"""

import sys

from tlsreply.cli import main

if __name__ == "__main__":
    sys.exit(main())
