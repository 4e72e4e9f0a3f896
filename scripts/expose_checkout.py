"""
Put this checkout on the C{sys.path} of the Python environment that runs
this script, after an editable install (C{pip install -e .}), so that
C{twistd} finds the tlsreply plugin and C{trial tests} finds the tests.

Why it is needed: setuptools' editable install (its default "lenient"
mode, the one it keeps) maps the C{tlsreply} package to the checkout with
an import hook, and nothing else. Twisted finds plugins another way:
C{twisted.plugins} scans every C{sys.path} entry for a C{twisted/plugins/}
folder, and an import hook is not a C{sys.path} entry, so C{twistd} would
not list C{tlsreply}; and trial imports C{tests} from C{sys.path}, which a
console script does not start with the current folder on. The "compat"
mode that put the checkout on C{sys.path} is being removed from setuptools;
this script does that one thing explicitly, for a development environment,
with a C{.pth} file in its site-packages, and refreshes Twisted's plugin
cache. Running it again changes nothing; deleting the environment removes
it. A regular (non-editable) install does not need it: the wheel ships
C{twisted/plugins/tlsreply_plugin.py}.

Usage: C{.venv/bin/python scripts/expose_checkout.py} (C{make} runs it).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
PTH_NAME = "tlsreply-checkout.pth"


def exposeCheckout(sitePackages: Path, checkout: Path = CHECKOUT) -> Path:
    """
    Put C{checkout} on C{sys.path} through a C{.pth} file in
    C{sitePackages}.

    @return: the C{.pth} file.
    """
    pth = sitePackages / PTH_NAME
    pth.write_text(f"{checkout}\n")
    return pth


def main() -> int:
    exposeCheckout(Path(sysconfig.get_paths()["purelib"]))
    # A fresh interpreter, so that the new .pth is read: list the plugins
    # once, which writes Twisted's cache (twisted/plugins/dropin.cache,
    # ignored by git).
    subprocess.run(
        [sys.executable, "-c",
         "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"],
        check=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
