# -*- test-case-name: tests.test_outcomes,tests.test_scenarios -*-
"""
What a client sees of a scenario: an L{ExpectedOutcome}, for a strictly
correct client and for each TLS stack that clients are built on.

A scenario states one outcome for a strictly correct client (the standards'
answer, worded as Python's C{ssl} reports it) and, for each stack in
L{STACKS}, what that stack does by default: trusting only the test CA,
connecting to C{localhost} with its host name checked, configured no
further. Stacks differ (GnuTLS still speaks TLS 1.0; Java, Node and
BoringSSL accept an RSA 1024-bit key; every stack falls back to the common
name), and a client author needs to know what the stack under their client
does, not only what it should do. C{make interop} proves every entry
against the real stacks (C{docs/interop.md}).

A scenario's per-stack outcomes are derived from its correct outcome, so a
new scenario states only where a stack differs (L{stackOutcomes}): a
refusal keeps its kind, worded as each stack words it (L{STACK_MESSAGES});
what the correct outcome C{requires} beyond a default client (checking
revocation, say), a default client does not do, and accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final, Literal, TypedDict, get_args

#: What an outcome is about: C{"accept"}, or why a correct client refuses.
OutcomeKind = Literal[
    "accept",
    "certificate-expired",
    "certificate-not-yet-valid",
    "hostname-mismatch",
    "self-signed",
    "untrusted-root",
    "unknown-issuer",
    "weak-signature",
    "weak-key",
    "certificate-revoked",
    "staple-missing",
    "client-certificate-required",
    "protocol-version",
    "handshake-failure",
    "truncated",
    "connection-reset",
    "timeout",
    "alert",
    "connection-closed",
    "renegotiation",
]
OUTCOME_KINDS: Final[tuple[str, ...]] = get_args(OutcomeKind)

#: The TLS stacks a scenario states its outcome for: OpenSSL (its
#: command-line tools, curl, and everything else on libssl), Python's
#: C{ssl} (as it runs here, see L{tlsreply.scenarios.pythonssl}), Node.js,
#: Java's JSSE, GnuTLS, and BoringSSL (Chrome, and curl_cffi's browser
#: impersonations).
ClientStack = Literal["openssl", "python-ssl", "node", "java", "gnutls", "boringssl"]
STACKS: Final[tuple[ClientStack, ...]] = get_args(ClientStack)

#: How L{ExpectedOutcome.describe} names the strictly correct client's
#: outcome beside the stacks'.
CORRECT: Final = "correct"


class OutcomeDescription(TypedDict):
    """
    An L{ExpectedOutcome} as plain values, for JSON.
    """

    accepted: bool
    kind: str
    message: str | None
    requires: str | None


@dataclass(frozen=True)
class ExpectedOutcome:
    """
    What a client sees of a scenario.

    For a scenario's correct outcome (L{Scenario.expectedOutcome
    <tlsreply.scenarios.base.Scenario.expectedOutcome>}), "a correct
    client" is concrete: Python's C{ssl.create_default_context()} trusting
    only the test CA, connecting to C{localhost}, presenting no client
    certificate, and configured as L{requires} says where the standards ask
    for more than that. For a stack's outcome (L{Scenario.outcomes
    <tlsreply.scenarios.base.Scenario.outcomes>}), the client is that
    stack's, configured as C{make interop} runs it.

    @ivar accepted: whether it completes the handshake and receives the
        reply.
    @ivar kind: C{"accept"}, or what the refusal is about: one of
        L{OUTCOME_KINDS}.
    @ivar message: the error text the client reports (a part of it that is
        the same on every run): for the correct outcome, Python's C{ssl}'s,
        exactly (OpenSSL's verification message for a refused certificate,
        the exception's C{verify_message}; Python's own for a hostname
        mismatch; OpenSSL's reason for a TLS alert, C{"tlsv1 alert protocol
        version"}); each also appears in C{str(error)}. C{None} when the
        client accepts, or when it cannot check what the scenario is about
        (C{revoked}: Python's C{ssl} does not check OCSP).
    @ivar requires: what a client must do beyond its defaults to see this
        outcome, in words (checking CRLs, not falling back to the common
        name); C{None} when the default client sees it as it is.
    """

    accepted: bool
    kind: OutcomeKind
    message: str | None = None
    requires: str | None = None

    @property
    def summary(self) -> str:
        """
        One line: C{"accept"}, the message, or (without a message) the kind.
        """
        if self.accepted:
            return "accept"
        return self.message or self.kind

    def describe(self) -> OutcomeDescription:
        """
        This outcome as plain values, for C{tlsreply scenarios --json}.
        """
        return {
            "accepted": self.accepted,
            "kind": self.kind,
            "message": self.message,
            "requires": self.requires,
        }


#: The outcome of a scenario that a correct client accepts: the handshake
#: completes and the reply arrives.
ACCEPT: Final = ExpectedOutcome(True, "accept")


def refused(kind: OutcomeKind, message: str | None, requires: str | None = None) -> ExpectedOutcome:
    """
    The outcome of a scenario that a client refuses.
    """
    return ExpectedOutcome(False, kind, message, requires)


#: The hostname mismatch message of Python's C{ssl}.
PYTHON_HOSTNAME_MISMATCH: Final = "Hostname mismatch, certificate is not valid for 'localhost'."

#: How each stack words a refusal of each kind, where every refusal of
#: that kind is worded the same (a part of the text that every run has):
#: what a scenario's stack outcome says unless the scenario says
#: otherwise. A kind missing here has no stable wording: the scenario
#: states it, or the outcome has no message. Python's C{ssl} words them as
#: the correct outcome does.
STACK_MESSAGES: Final[Mapping[ClientStack, Mapping[str, str]]] = MappingProxyType(
    {
        # OpenSSL's verification messages (s_client's "verify error", curl's
        # "SSL certificate problem") and its reasons for alerts.
        "openssl": {
            "certificate-expired": "certificate has expired",
            "certificate-not-yet-valid": "certificate is not yet valid",
            "self-signed": "self-signed certificate",
            "untrusted-root": "self-signed certificate in certificate chain",
            "unknown-issuer": "unable to get local issuer certificate",
            "weak-signature": "CA signature digest algorithm too weak",
            "weak-key": "EE certificate key too weak",
            "client-certificate-required": "tlsv13 alert certificate required",
            "handshake-failure": "sslv3 alert handshake failure",
        },
        "python-ssl": {},
        # Node's error.message: OpenSSL's words, its own for a name.
        "node": {
            "certificate-expired": "certificate has expired",
            "certificate-not-yet-valid": "certificate is not yet valid",
            "hostname-mismatch": "Hostname/IP does not match certificate's altnames",
            "self-signed": "self-signed certificate",
            "untrusted-root": "self-signed certificate in certificate chain",
            "unknown-issuer": "unable to verify the first certificate",
            "weak-signature": "CA signature digest algorithm too weak",
            "client-certificate-required": "tlsv13 alert certificate required",
            "protocol-version": "tlsv1 alert protocol version",
            "handshake-failure": "sslv3 alert handshake failure",
        },
        # The SSLHandshakeException's text (its cause's, for PKIX).
        "java": {
            "certificate-expired": "validity check failed",
            "certificate-not-yet-valid": "validity check failed",
            "hostname-mismatch": "No subject alternative DNS name matching localhost found",
            "self-signed": "unable to find valid certification path to requested target",
            "untrusted-root": "unable to find valid certification path to requested target",
            "unknown-issuer": "unable to find valid certification path to requested target",
            "protocol-version": "Received fatal alert: protocol_version",
            "handshake-failure": "Received fatal alert: handshake_failure",
            "client-certificate-required": "Received fatal alert: certificate_required",
        },
        # gnutls-cli's verification status, or the alert it received.
        "gnutls": {
            "certificate-expired": "The certificate chain uses expired certificate.",
            "certificate-not-yet-valid": "The certificate chain uses not yet valid certificate.",
            "hostname-mismatch": "The name in the certificate does not match the expected.",
            "self-signed": "The certificate issuer is unknown.",
            "untrusted-root": "The certificate issuer is unknown.",
            "unknown-issuer": "The certificate issuer is unknown.",
            "weak-signature": "The certificate chain uses insecure algorithm.",
            "certificate-revoked": "The certificate chain is revoked.",
            "client-certificate-required": "Received alert [116]: Certificate is required",
            "handshake-failure": "Received alert [40]: Handshake failed",
        },
        # curl's messages on BoringSSL (curl_cffi): OpenSSL's older words
        # for verification ("self signed", no hyphen), BoringSSL's codes.
        "boringssl": {
            "certificate-expired": "certificate has expired",
            "certificate-not-yet-valid": "certificate is not yet valid",
            "hostname-mismatch": "no alternative certificate subject name matches target",
            "self-signed": "unable to get local issuer certificate",
            "untrusted-root": "self signed certificate in certificate chain",
            "unknown-issuer": "unable to get local issuer certificate",
            "client-certificate-required": "TLSV1_ALERT_CERTIFICATE_REQUIRED",
            "protocol-version": "TLSV1_ALERT_PROTOCOL_VERSION",
        },
    }
)


def stackOutcomes(
    correct: ExpectedOutcome,
    differences: Mapping[ClientStack, ExpectedOutcome] | None = None,
    pythonSSL: ExpectedOutcome | None = None,
) -> Mapping[ClientStack, ExpectedOutcome]:
    """
    Every stack's outcome of a scenario whose strictly correct outcome is
    C{correct}.

    A stack named in C{differences} has that outcome. Every other stack
    refuses as the correct client does, worded as it words that kind
    (L{STACK_MESSAGES}), unless the correct outcome C{requires} more than
    a default client does: then it accepts. Python's C{ssl} words its
    refusals as C{correct} does (it is the correct outcome's wording).

    @param pythonSSL: Python's C{ssl} outcome where it depends on the
        Python and OpenSSL running (L{tlsreply.scenarios.pythonssl}), as a
        difference.
    """
    differences = dict(differences or {})
    if pythonSSL is not None:
        differences["python-ssl"] = pythonSSL
    unknown = set(differences) - set(STACKS)
    if unknown:
        raise ValueError(f"unknown client stacks {sorted(unknown)}: known are {STACKS}")
    outcomes: dict[ClientStack, ExpectedOutcome] = {}
    for stack in STACKS:
        if stack in differences:
            outcomes[stack] = differences[stack]
        elif correct.accepted or correct.requires is not None:
            outcomes[stack] = ACCEPT
        elif stack == "python-ssl":
            outcomes[stack] = correct
        else:
            outcomes[stack] = replace(correct, message=STACK_MESSAGES[stack].get(correct.kind))
    return MappingProxyType(outcomes)
