# -*- test-case-name: tests.test_tap,tests.test_scenarioserve -*-
"""
The command line's checks of C{--scenario} and of the options that go
with it, each a one-line refusal naming the option: a scenario brings its
certificates and decides parts of the policy, so C{--cert} or C{--min-tls}
with it would be silently ignored; a hostile scenario's timing
(C{--scenario-stall-limit}, C{--scenario-byte-delay}) given for a
scenario that does not use it would do nothing.

L{tlsreply.command.tap} calls L{checkScenario} while it builds the
L{ServerConfig <tlsreply.config.ServerConfig>}, which checks the same
rules again for an application, in its own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tlsreply.command._values import POLICY_OPTIONS
from tlsreply.errors import ConfigurationError
from tlsreply.scenarios.timings import TIMINGS
from tlsreply.tls.policy import TLSPolicy


def checkScenario(options: Mapping[str, Any], policy: TLSPolicy) -> None:
    """
    Refuse a C{--scenario} that is unknown or that other options
    contradict, and a scenario timing without a scenario that uses it.

    @param options: the parsed command line
        (L{tlsreply.command.tap.Options}).
    @param policy: the policy the command line's options make.
    @raise ConfigurationError: naming the option.
    """
    scenario = options["scenario"]
    if scenario is not None:
        _checkKnownScenario(options, scenario, policy)
    for timing in TIMINGS:
        if options[timing.option] is None:
            continue
        option = f"--{timing.option}"
        if scenario is None:
            raise ConfigurationError(f"{option} needs --scenario {timing.usersText('or')}")
        if scenario not in timing.users:
            raise ConfigurationError(
                f"{option} does nothing for --scenario {scenario} "
                f"(it is for {timing.usersText()}): drop it"
            )


def _checkKnownScenario(options: Mapping[str, Any], scenario: str, policy: TLSPolicy) -> None:
    from tlsreply.scenarios.servers import SCENARIOS, decidedByScenario

    if scenario not in SCENARIOS:
        raise ConfigurationError(
            f"--scenario: unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})"
        )
    if options["certificates"] or options["cert-dir"]:
        given = "--cert" if options["certificates"] else "--cert-dir"
        raise ConfigurationError(f"--scenario brings its own certificates: drop {given}")
    decided = [POLICY_OPTIONS[name] for name in decidedByScenario(policy)]
    if decided:
        them = "it" if len(decided) == 1 else "them"
        raise ConfigurationError(
            f"--scenario decides {' and '.join(decided)} itself: drop {them}"
        )
