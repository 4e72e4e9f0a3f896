# -*- test-case-name: tests.test_interop -*-
"""
C{python -m scripts.interop}: run the interop matrix (see
L{scripts.interop.report.main}).
"""

from scripts.interop.report import main

raise SystemExit(main())
