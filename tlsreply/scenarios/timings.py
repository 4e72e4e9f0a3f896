# -*- test-case-name: tests.test_hostilescenarios,tests.test_tap -*-
"""
The hostile servers' timings by every name each goes by (a
L{HostileSettings <tlsreply.scenarios.misbehaving.HostileSettings>} field, a
L{ServerConfig <tlsreply.config.ServerConfig>} field, a command-line option)
and the scenarios that use each: one table, which the command line, the
configuration and C{--show-config} read.

Kept apart from the scenario catalogue (L{tlsreply.scenarios.hostile}),
whose import brings in the test CA and the hostile servers: the command
line and every configuration check the timings, scenario or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class HostileTiming:
    """
    One timing of the hostile servers, by every name it goes by: a timing
    given for a scenario that does not use it would do nothing, so
    L{ServerConfig <tlsreply.config.ServerConfig>} and the command line
    refuse it.

    @ivar setting: its L{HostileSettings
        <tlsreply.scenarios.misbehaving.HostileSettings>} field, also the
        keyword of the fixtures and the trial helper.
    @ivar config: its L{ServerConfig <tlsreply.config.ServerConfig>} field.
    @ivar option: its command-line option, without the dashes.
    @ivar users: the scenarios whose server uses it.
    """

    setting: str
    config: str
    option: str
    users: tuple[str, ...]

    def usersText(self, conjunction: str = "and") -> str:
        """
        L{users} for a message: C{"slow-reply"}, C{"stall-handshake, ...
        and renegotiation-request"}.
        """
        *others, last = self.users
        return f"{', '.join(others)} {conjunction} {last}" if others else last


#: Every timing of the hostile servers.
TIMINGS: Final = (
    HostileTiming(
        "stallLimit", "scenarioStallLimit", "scenario-stall-limit",
        ("stall-handshake", "stall-after-handshake", "renegotiation-request"),
    ),
    HostileTiming("byteDelay", "scenarioByteDelay", "scenario-byte-delay", ("slow-reply",)),
)
