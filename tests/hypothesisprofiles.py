"""
The hypothesis settings every property-based test of the suite runs with,
loaded when a test module imports this one.

C{TLSREPLY_HYPOTHESIS_PROFILE} names the profile: C{ci} (the default: a
bounded, repeatable run with no deadline, since CI's two cores are shared)
or C{fuzz} (C{make fuzz}: a long random campaign of
C{TLSREPLY_FUZZ_EXAMPLES} examples per property).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("TLSREPLY_CI_EXAMPLES", "200")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("TLSREPLY_FUZZ_EXAMPLES", "20000")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: The profile this run uses.
PROFILE = os.environ.get("TLSREPLY_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
