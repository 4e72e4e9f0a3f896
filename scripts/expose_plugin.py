"""
Make this checkout's twistd plugin visible to the Python environment that
runs this script, after an editable install (C{pip install -e .}).

Why it is needed: setuptools' editable install (its default "lenient"
mode, the one it keeps) maps the C{tlsreply} package to the checkout with
an import hook. Twisted finds plugins another way: C{twisted.plugins}
scans every C{sys.path} entry for a C{twisted/plugins/} folder, and an
import hook is not a C{sys.path} entry, so C{twistd} would not list
C{tlsreply}. The "compat" mode that put the whole checkout on C{sys.path}
is being removed from setuptools.

What it does: it makes one folder inside the environment
(C{<prefix>/tlsreply-plugin/twisted/plugins/}) holding a link to the
checkout's plugin module, puts that folder's root on C{sys.path} with a
C{.pth} file in site-packages, and refreshes Twisted's plugin cache. Only
the plugin is exposed (not the checkout's C{tests}, C{bench} or
C{scripts}); running it again changes nothing; deleting the environment
removes everything it made. A regular (non-editable) install does not need
it: the wheel ships C{twisted/plugins/tlsreply_plugin.py}.

Usage: C{.venv/bin/python scripts/expose_plugin.py} (C{make} runs it).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
PLUGIN = CHECKOUT / "twisted" / "plugins" / "tlsreply_plugin.py"
PTH_NAME = "tlsreply-plugin.pth"


def exposePlugin(prefix: Path, sitePackages: Path) -> Path:
    """
    Link the plugin into C{prefix} and put it on C{sys.path} through a
    C{.pth} file in C{sitePackages}.

    @return: the link.
    """
    root = prefix / "tlsreply-plugin"
    plugins = root / "twisted" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / PLUGIN.name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(PLUGIN)
    (sitePackages / PTH_NAME).write_text(f"{root}\n")
    return link


def main() -> int:
    exposePlugin(Path(sys.prefix), Path(sysconfig.get_paths()["purelib"]))
    # A fresh interpreter, so that the new .pth is read: list the plugins
    # once, which writes Twisted's cache next to the link.
    subprocess.run(
        [sys.executable, "-c",
         "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"],
        check=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
