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

    def test_productModulesStaySmall(self) -> None:
        """
        No product module is over 600 lines: past that, a module has more
        than one job, and it is split along a seam rather than grown.
        """
        sizes = {
            str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
            for path in PACKAGE.rglob("*.py")
        }
        self.assertEqual({name: n for name, n in sizes.items() if n > 600}, {})

    def test_testCaseNamesExist(self) -> None:
        """
        Every C{test-case-name} header (what C{trial --testmodule} and
        editors run for a module) names test modules that exist.
        """
        tests = PACKAGE.parent / "tests"
        missing = set()
        for path in PACKAGE.rglob("*.py"):
            first = path.read_text().partition("\n")[0]
            if "test-case-name:" in first:
                names = first.split("test-case-name:")[1].split("-*-")[0].strip()
                for name in names.split(","):
                    module = tests.parent / (name.strip().replace(".", "/") + ".py")
                    if not module.exists():
                        missing.add(f"{path.name}: {name.strip()}")
        self.assertEqual(missing, set())


class ToolsLayoutTests(SynchronousTestCase):
    """
    The benchmark (C{bench/}) and the scripts (C{scripts/}) keep the
    product's rules of size, and the benchmark stays outside the product.
    """

    def test_toolModulesStaySmall(self) -> None:
        """
        No file of the benchmark or the scripts is over 600 lines either:
        the benchmark and the soak share the harness in C{bench/harness/}
        instead of each growing its own plumbing.
        """
        checkout = PACKAGE.parent
        paths = [
            path
            for folder in ("bench", "scripts")
            for path in (checkout / folder).rglob("*.py")
            if ".cache" not in path.parts
        ]
        self.assertIn(checkout / "bench" / "run.py", paths)
        self.assertIn(checkout / "scripts" / "soak.py", paths)
        sizes = {
            str(path.relative_to(checkout)): len(path.read_text().splitlines())
            for path in paths
        }
        self.assertEqual({name: n for name, n in sizes.items() if n > 600}, {})

    def test_benchmarkImportsNothingFromTheProduct(self) -> None:
        """
        The benchmark measures tlsreply from the outside, through
        C{twistd}, as it measures nginx: C{bench/run.py}, its harness and
        its reference servers import nothing from C{tlsreply}, and nothing
        from C{bench/} outside the harness (where the micro-benchmarks,
        which do import C{tlsreply}, live).
        """
        bench = PACKAGE.parent / "bench"
        paths = [
            bench / "run.py",
            *(bench / "harness").rglob("*.py"),
            *(bench / "servers").rglob("*.py"),
        ]
        self.assertGreater(len(paths), 5)
        offending = {
            f"{path.relative_to(bench)} imports {module}"
            for path in paths
            for module in importedModules(path)
            if module.split(".")[0] == "tlsreply"
            or (module.startswith("bench.") and not module.startswith("bench.harness"))
        }
        self.assertEqual(offending, set())
