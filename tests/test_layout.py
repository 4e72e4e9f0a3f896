"""
The package's layout keeps its promise: the server core never imports the
test toolkit (L{tlsreply.testing}) or the checking client
(L{tlsreply.check}); only the command line reaches into the toolkit, for
C{--scenario}.
"""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

PACKAGE = Path(__file__).resolve().parent.parent / "tlsreply"

#: The command line: it composes the core and may serve a scenario.
COMMAND_LINE = {"tap.py", "daemon.py", "__main__.py", "cli.py"}

WINGS = ("tlsreply.testing", "tlsreply.check")


def importedModules(path: Path) -> set[str]:
    """
    Every module a file imports, at the top or inside a function.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


class LayoutTests(SynchronousTestCase):
    """
    Which rooms may import which.
    """

    def test_coreNeverImportsTheWings(self) -> None:
        """
        No module of the server core imports the toolkit or the client.
        """
        core = [
            path for path in PACKAGE.glob("*.py") if path.name not in COMMAND_LINE
        ]
        self.assertGreater(len(core), 20)
        offending = {
            f"{path.name} imports {module}"
            for path in core
            for module in importedModules(path)
            if module.startswith(WINGS)
        }
        self.assertEqual(offending, set())

    def test_wingsDoNotImportEachOther(self) -> None:
        """
        The toolkit and the client stand apart from each other.
        """
        for wing, other in (("testing", "tlsreply.check"), ("check", "tlsreply.testing")):
            for path in (PACKAGE / wing).glob("*.py"):
                self.assertFalse(
                    [m for m in importedModules(path) if m.startswith(other)],
                    f"{path.name} in {wing} imports {other}",
                )
