"""
The package's layout keeps its promises: few modules at the top (the
composition root and the package's shared base), every family of modules
in a subpackage of its own that names its parts, private modules kept
inside their subpackage, and the wings apart: only tests and the toolkit
import the test toolkit (L{tlsreply.testing}), and only the C{tlsreply}
command imports the checking client (L{tlsreply.check}).
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGE = CHECKOUT / "tlsreply"

#: At most so many modules stand directly in tlsreply/ (its __init__ aside).
MOST_AT_THE_TOP = 15

#: Two modules at the top whose names begin alike are a family, which
#: belongs in a subpackage: this many letters alike make a family.
FAMILY_PREFIX = 5


def moduleName(path: Path) -> str:
    """
    The dotted name of the module at C{path}, a package by its own name.
    """
    parts = list(path.relative_to(CHECKOUT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def productModules() -> dict[str, Path]:
    """
    Every module of the package, by its dotted name.
    """
    return {moduleName(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def importedModules(path: Path) -> set[str]:
    """
    Every module a file imports, at the top or inside a function: what it
    names after C{import} or C{from}, and C{from package import module}'s
    modules.
    """
    known = productModules()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if f"{node.module}.{alias.name}" in known
            )
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def subpackages() -> list[str]:
    return sorted(
        moduleName(init) for init in PACKAGE.rglob("__init__.py") if init.parent != PACKAGE
    )


def setupConfig() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(CHECKOUT / "setup.cfg")
    return config


class LayoutTests(SynchronousTestCase):
    """
    Which rooms stand where, and which may import which.
    """

    def test_fewModulesAtTheTop(self) -> None:
        """
        At most L{MOST_AT_THE_TOP} modules stand directly in C{tlsreply/};
        every other module is in the subpackage of its family.
        """
        top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
        self.assertLessEqual(len(top), MOST_AT_THE_TOP, top)
        self.assertGreaterEqual(len(subpackages()), 7)

    def test_noPrefixFamilies(self) -> None:
        """
        A family is named by a folder, not by a prefix: no two names at the
        top (modules and subpackages) begin with the same
        L{FAMILY_PREFIX} letters, none at the top begins with a
        subpackage's name, and no module in a subpackage repeats the
        subpackage's name (C{metrics/metricsweb.py}).
        """
        packages = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
        names = [p.stem.lstrip("_") for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
        names += packages
        families = {
            (a, b)
            for a in names
            for b in names
            if a < b and a[:FAMILY_PREFIX] == b[:FAMILY_PREFIX]
        }
        self.assertEqual(families, set())
        stems = {package: package.rstrip("s") for package in packages}
        self.assertEqual(
            {
                (name, package)
                for name in names
                for package, stem in stems.items()
                if name != package and name.startswith(stem)
            },
            set(),
        )
        repeated = {
            str(path.relative_to(PACKAGE))
            for package, stem in stems.items()
            for path in (PACKAGE / package).glob("*.py")
            if stem in path.stem.lstrip("_")
        }
        self.assertEqual(repeated, set())

    def test_onlyTestsImportTheToolkit(self) -> None:
        """
        Nothing outside the tests and L{tlsreply.testing} itself imports
        L{tlsreply.testing}: not the server core, not the scenarios it
        serves, not the command line, not the Twisted plugin.
        """
        outside = {
            name: path
            for name, path in productModules().items()
            if not within(name, "tlsreply.testing")
        }
        outside.update(
            {moduleName(p): p for p in (CHECKOUT / "twisted" / "plugins").glob("*.py")}
        )
        self.assertGreater(len(outside), 40)
        offending = {
            f"{name} imports {module}"
            for name, path in outside.items()
            for module in importedModules(path)
            if within(module, "tlsreply.testing")
        }
        self.assertEqual(offending, set())

    def test_onlyTheCommandImportsTheClient(self) -> None:
        """
        The server core never imports the checking client
        (L{tlsreply.check}): only the module of the C{tlsreply} command
        (its console script in setup.cfg) dispatches to it.
        """
        scripts = setupConfig()["options.entry_points"]["console_scripts"]
        [command] = [
            line.split("=")[1].strip().partition(":")[0]
            for line in scripts.strip().splitlines()
            if line.split("=")[0].strip() == "tlsreply"
        ]
        offending = {
            f"{name} imports {module}"
            for name, path in productModules().items()
            if not within(name, "tlsreply.check") and name != command
            for module in importedModules(path)
            if within(module, "tlsreply.check")
        }
        self.assertEqual(offending, set())

    def test_wingsDoNotImportEachOther(self) -> None:
        """
        The toolkit and the client stand apart from each other.
        """
        for wing, other in (("testing", "tlsreply.check"), ("check", "tlsreply.testing")):
            for path in (PACKAGE / wing).glob("*.py"):
                self.assertFalse(
                    [m for m in importedModules(path) if within(m, other)],
                    f"{path.name} in {wing} imports {other}",
                )

    def test_privateModulesStayInside(self) -> None:
        """
        A module whose name begins with C{_} is private to the package it
        stands in: only that package's modules import it (and the tests,
        which look inside, and the benchmark's micro-benchmarks, which
        measure inside), never the scripts or the plugin.
        """
        importers = dict(productModules())
        for folder in ("twisted", "scripts"):
            importers.update(
                {f"{folder}/{p.relative_to(CHECKOUT / folder)}": p
                 for p in (CHECKOUT / folder).rglob("*.py")}
            )
        offending = set()
        for name, path in importers.items():
            for module in importedModules(path):
                parts = module.split(".")
                for depth, part in enumerate(parts):
                    if part.startswith("_") and not part.startswith("__"):
                        owner = ".".join(parts[:depth])
                        if owner.startswith("tlsreply") and not within(name, owner):
                            offending.add(f"{name} imports {module}")
                        break
        self.assertEqual(offending, set())

    def test_subpackagesNameTheirParts(self) -> None:
        """
        Every subpackage's C{__init__} says what it is and names each of
        its modules, as a newcomer reads the architecture from it.
        """
        unnamed = set()
        for package in subpackages():
            folder = CHECKOUT / package.replace(".", "/")
            doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
            for path in folder.glob("*.py"):
                if path.name != "__init__.py" and f"{package}.{path.stem}" not in doc.replace("\n", " "):
                    unnamed.add(f"{package}.{path.stem}")
        self.assertEqual(unnamed, set())

    def test_everyPackageIsInstalled(self) -> None:
        """
        setup.cfg lists every package: setuptools installs only those, and a
        subpackage left out would be missing from the wheel, not from the
        checkout the tests run in.
        """
        listed = setupConfig()["options"]["packages"].split()
        self.assertEqual(sorted(listed), sorted(["tlsreply", *subpackages(), "twisted.plugins"]))

    def test_movedModulesStillImport(self) -> None:
        """
        A module that moved into a subpackage still imports by its old
        name, for one release: as the very module under its new name, with
        a C{DeprecationWarning} that names the new place.
        """
        probe = (
            "import importlib, json, sys, warnings, tlsreply\n"
            "seen = {}\n"
            "for old, new in sorted(tlsreply._MOVED.items()):\n"
            "    with warnings.catch_warnings(record=True) as caught:\n"
            "        warnings.simplefilter('always')\n"
            "        module = importlib.import_module(old)\n"
            "    seen[old] = [module is importlib.import_module(new),\n"
            "                 module.__name__ == new, module.__spec__.name == new,\n"
            "                 [str(w.message) for w in caught\n"
            "                  if w.category is DeprecationWarning and new in str(w.message)]]\n"
            "print(json.dumps(seen))\n"
        )
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(CHECKOUT), *filter(None, [environment.get("PYTHONPATH")])]
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, check=True, env=environment
        )
        seen = json.loads(result.stdout)
        self.assertGreater(len(seen), 30)
        for old, (same, named, spec, warnings) in seen.items():
            self.assertEqual((same, named, spec, len(warnings)), (True, True, True, 1), old)
        strict = subprocess.run(
            [sys.executable, "-W", "error::DeprecationWarning", "-c",
             f"import {sorted(seen)[0]}"],
            capture_output=True, env=environment,
        )
        self.assertNotEqual(strict.returncode, 0)
        self.assertIn(b"DeprecationWarning", strict.stderr)

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
                        missing.add(f"{path.relative_to(PACKAGE)}: {name.strip()}")
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
