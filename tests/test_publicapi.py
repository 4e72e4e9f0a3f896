"""
The supported public API is named in one place a user reads, the README,
and it is what the packages' C{__all__} export, so that the two cannot
drift; the API reference (C{make docs}, L{scripts.apidocs}) shows exactly
those names as public and hides the underscore modules.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from scripts import apidocs

CHECKOUT = Path(__file__).resolve().parent.parent

#: The packages whose C{__all__} is the public API.
PUBLIC_PACKAGES = ("tlsreply", "tlsreply.testing", "tlsreply.check")


def readmeSection(title: str) -> str:
    """
    The text of the README's section C{## title}, up to the next section.
    """
    text = (CHECKOUT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.M | re.S)
    if match is None:
        raise AssertionError(f"README.md has no section {title!r}")
    return match.group(1)


def readmePublicNames() -> dict[str, set[str]]:
    """
    The names the README's "Public API" section lists for each package,
    from its lines C{- `PACKAGE`: `Name`, `name`, ...} (which may wrap).
    """
    section = readmeSection("Public API")
    listed: dict[str, set[str]] = {}
    for item in re.findall(r"^- (`[\w.]+`:.*?)(?=^- |^\n|\Z)", section, re.M | re.S):
        package, names = item.split(":", 1)
        listed[package.strip("`")] = set(re.findall(r"`(\w+)`", names))
    return listed


class PublicAPITests(SynchronousTestCase):
    """
    The README's list of public names is the packages' C{__all__}.
    """

    def test_readmeNamesEveryExportedName(self) -> None:
        """
        For each public package, the README lists exactly the names its
        C{__all__} exports: a name added, removed or renamed on either side
        fails here.
        """
        listed = readmePublicNames()
        self.assertEqual(sorted(listed), sorted(PUBLIC_PACKAGES))
        for package in PUBLIC_PACKAGES:
            exported = set(importlib.import_module(package).__all__)
            self.assertEqual(
                (package, listed[package]),
                (package, exported),
            )

    def test_exportedNamesExist(self) -> None:
        """
        Every name an C{__all__} exports can be imported from its package
        (the lazy packages load it on first use).
        """
        for package in PUBLIC_PACKAGES:
            module = importlib.import_module(package)
            for name in module.__all__:
                self.assertTrue(hasattr(module, name), f"{package}.{name}")

    def test_readmeSaysWhereTheReferenceIs(self) -> None:
        """
        The README says how to build the reference and where it lands.
        """
        section = readmeSection("Public API")
        self.assertIn("make docs", section)
        self.assertIn("docs/api/index.html", section)


class APIDocsRulesTests(SynchronousTestCase):
    """
    The privacy rules C{make docs} gives pydoctor follow the C{__all__}s
    and the files, without a list to keep up to date.
    """

    def test_publicPackagesAreTheReadmes(self) -> None:
        """
        The reference treats as public the packages the README names.
        """
        self.assertEqual(apidocs.PUBLIC_PACKAGES, PUBLIC_PACKAGES)

    def test_exportedNamesArePublic(self) -> None:
        """
        Each exported name is made public after its package's other names
        are made private (pydoctor lets the later rule win).
        """
        public = apidocs.publicNames()
        rules = apidocs.privacyOptions(public)
        for package, names in public.items():
            private = rules.index(f"--privacy=PRIVATE:{package}.*")
            for name in names:
                self.assertGreater(
                    rules.index(f"--privacy=PUBLIC:{package}.{name}"), private
                )

    def test_underscoreModulesHidden(self) -> None:
        """
        Every module with a leading underscore in its dotted name is
        hidden, in the subpackages too, and no other module is.
        """
        hidden = apidocs.underscoreModules()
        self.assertIn("tlsreply._openssl", hidden)
        self.assertIn("tlsreply.metrics._reasons", hidden)
        self.assertNotIn("tlsreply.metrics.counting", hidden)
        self.assertNotIn("tlsreply", hidden)
        self.assertNotIn("tlsreply.metrics", hidden)
        rules = apidocs.privacyOptions(apidocs.publicNames())
        self.assertIn("--privacy=HIDDEN:tlsreply.metrics._reasons", rules)
