# -*- test-case-name: tests.test_scenarios -*-
"""
The catalogue of scenarios: every deliberately broken or unusual server,
each with the builder that makes its certificates and policy, in the order
every listing shows them.

The scenarios are defined by theme, each in its own module, where new ones
are added:

  - L{tlsreply.scenarios.certificate}: the certificate itself (its
    validity, names, chain, key and signature);
  - L{tlsreply.scenarios.protocol}: TLS versions, key-exchange
    groups, client certificates, sessions;
  - L{tlsreply.scenarios.revocation}: OCSP, CRLs, must-staple;
  - L{tlsreply.scenarios.hostile}: a server that misbehaves at the
    protocol level (truncation, resets, stalls, alerts).

What a scenario is made of is L{tlsreply.scenarios.base}; how
scenarios are served, listed and combined with a command line is
L{tlsreply.scenarios.servers}, which reads L{CATALOGUE}.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from tlsreply.scenarios import certificate, hostile, protocol, revocation
from tlsreply.scenarios.base import (
    ACCEPT,
    CA_FILE,
    CLIENT_CERTIFICATE_FILE,
    CLIENT_KEY_FILE,
    NAMES,
    OUTCOME_KINDS,
    SERVER_NAME,
    BuiltScenario,
    CatalogueEntry,
    ExpectedOutcome,
    Scenario,
    ScenarioBuilder,
)
from tlsreply.scenarios.certificate import (
    MANY_NAMES_COUNT,
    WRONG_HOST_NAMES,
    manyNames,
)

__all__ = [
    "ACCEPT",
    "CATALOGUE",
    "CA_FILE",
    "CLIENT_CERTIFICATE_FILE",
    "CLIENT_KEY_FILE",
    "MANY_NAMES_COUNT",
    "NAMES",
    "OUTCOME_KINDS",
    "SERVER_NAME",
    "WRONG_HOST_NAMES",
    "BuiltScenario",
    "CatalogueEntry",
    "ExpectedOutcome",
    "Scenario",
    "ScenarioBuilder",
    "manyNames",
]


def _inOrder(*themes: list[CatalogueEntry]) -> Mapping[str, CatalogueEntry]:
    entries: dict[str, CatalogueEntry] = {}
    for theme in themes:
        for entry in theme:
            name = entry.scenario.name
            if name in entries:
                raise RuntimeError(f"scenario {name!r} is defined twice")
            entries[name] = entry
    return MappingProxyType(entries)


#: Every scenario by name: the certificate scenarios, then the protocol
#: ones, then revocation, then the hostile servers.
CATALOGUE: Final[Mapping[str, CatalogueEntry]] = _inOrder(
    certificate.ENTRIES,
    protocol.ENTRIES,
    revocation.ENTRIES,
    hostile.ENTRIES,
)
