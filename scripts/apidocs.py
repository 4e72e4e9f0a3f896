"""
Build tlsreply's API reference with pydoctor (C{make docs}), into
C{docs/api/}, failing on any warning.

The reference shows the supported public API as public: what the
C{__all__} of C{tlsreply}, C{tlsreply.testing} and C{tlsreply.check}
export (pydoctor documents each name where it is exported, not in the
module that defines it), the pytest plugin that C{tlsreply.testing}
registers, and the Twisted plugin (C{twisted/plugins/tlsreply_plugin.py},
documented as the module C{tlsreply_plugin}: a namespace package named
C{twisted} in the reference would claim Twisted's own names). Every
other module is documented as private (behind the pages' "show private
API" switch), so that the links of the public docstrings land somewhere;
the modules with a leading underscore are hidden. The privacy rules are
computed from the C{__all__}s and the files here, so that a name added to
an C{__all__} or a module added to a package is placed without editing
this script.

Usage: C{.venv/bin/python scripts/apidocs.py [OUTPUT]}.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import zlib
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent

#: The packages whose C{__all__} is the supported public API.
PUBLIC_PACKAGES = ("tlsreply", "tlsreply.testing", "tlsreply.check")

#: Modules that are public without being exported by an C{__all__}: the
#: pytest plugin is found through its entry point, not imported.
PUBLIC_MODULES = ("tlsreply.testing.pytest_plugin",)

PLUGIN = CHECKOUT / "twisted" / "plugins" / "tlsreply_plugin.py"


def publicNames() -> dict[str, list[str]]:
    """
    Each public package's C{__all__}, importing the packages from this
    checkout (cheap: their names load on first use).
    """
    return {
        name: list(importlib.import_module(name).__all__) for name in PUBLIC_PACKAGES
    }


def underscoreModules() -> list[str]:
    """
    The dotted names of the modules and packages of C{tlsreply} that have a
    leading underscore in any part (C{__init__} aside).
    """
    found = []
    for path in sorted((CHECKOUT / "tlsreply").rglob("*.py")):
        parts = list(path.relative_to(CHECKOUT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(part.startswith("_") for part in parts):
            found.append(".".join(parts))
    return found


def privacyOptions(public: dict[str, list[str]]) -> list[str]:
    """
    pydoctor's C{--privacy} rules, in order: a later rule wins over an
    earlier one. In a pattern, C{*} is one level of a dotted name; the
    members of a private module are reached only through it, and a
    hidden module hides its members.
    """
    rules = []
    for package, names in public.items():
        rules.append(f"PRIVATE:{package}.*")
        rules += [f"PUBLIC:{package}.{name}" for name in names]
    rules += [f"PUBLIC:{module}" for module in PUBLIC_MODULES]
    rules += [f"HIDDEN:{module}" for module in underscoreModules()]
    return [f"--privacy={rule}" for rule in rules]


def undocumented(output: Path, public: dict[str, list[str]]) -> list[str]:
    """
    The public names that the reference does not document where they are
    exported (pydoctor moves a name to the package whose C{__all__} exports
    it only when it can follow the import), read from its Sphinx inventory.
    """
    inventory = (output / "objects.inv").read_bytes()
    # Four lines of header, then the zlib-compressed entries.
    body = zlib.decompress(inventory.split(b"\n", 4)[4]).decode()
    documented = {line.split(" ", 1)[0] for line in body.splitlines()}
    return [
        f"{package}.{name}"
        for package, names in public.items()
        for name in names
        if f"{package}.{name}" not in documented
    ]


def main(argv: list[str]) -> int:
    output = argv[1] if len(argv) > 1 else str(CHECKOUT / "docs" / "api")
    sys.path.insert(0, str(CHECKOUT))
    public = publicNames()
    version = importlib.import_module("tlsreply._version").__version__
    command = [
        sys.executable,
        "-m",
        "pydoctor",
        "--project-name=tlsreply",
        f"--project-version={version}",
        f"--project-base-dir={CHECKOUT}",
        "--docformat=epytext",
        f"--html-output={output}",
        "--warnings-as-errors",
        "--quiet",
        *privacyOptions(public),
        str(CHECKOUT / "tlsreply"),
        str(PLUGIN),
    ]
    status = subprocess.call(command)
    if status != 0:
        return status
    missing = undocumented(Path(output), public)
    if missing:
        sys.stderr.write(f"not documented where exported: {', '.join(missing)}\n")
        return 1
    sys.stdout.write(f"API reference in {output}/index.html\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
