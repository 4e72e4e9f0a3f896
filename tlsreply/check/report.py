# -*- test-case-name: tests.test_check -*-
"""
What C{tlsreply check} concludes from its two connections, and how it
says so: text for a person, JSON for a script, and the exit status.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final, TextIO

from tlsreply.check.client import (
    CheckConnectionError,
    ConnectionFacts,
    buildClientContext,
    connectOnce,
)
from tlsreply.check.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CheckCommand,
    CheckOptions,
    CheckUsageError,
    parseArguments,
)

#: How much of the reply is shown (as a Python bytes literal); the byte
#: count is always the whole reply's.
REPLY_PREVIEW: Final = 100

_RESUMPTION_MISSING: Final = (
    "no session resumption: the second connection did a full handshake"
)


@dataclass
class CheckResult:
    """
    Both connections, and what is missing.

    @ivar options: what was checked, and how.
    @ivar first: the first connection.
    @ivar second: the connection that offered the first one's session, or
        C{None} if it failed.
    @ivar secondError: why it failed.
    """

    options: CheckOptions
    first: ConnectionFacts
    second: ConnectionFacts | None
    secondError: str | None = None

    @property
    def verified(self) -> bool:
        """
        Is the certificate trusted, and is it the server's?
        """
        return self.first.chainVerification == self.first.nameVerification == "ok"

    def problems(self) -> list[str]:
        """
        One line for each thing the exit status requires that is missing.
        """
        problems = []
        first = self.first
        if first.certificate is None:
            problems.append("certificate verification failed: the server sent no certificate")
        else:
            if first.chainVerification != "ok":
                problems.append(
                    f"certificate verification failed: {first.chainVerification}"
                    f" (trusting {self._trust()})"
                )
            if first.nameVerification != "ok":
                problems.append(
                    f"certificate verification failed: {first.nameVerification}"
                )
        if not first.replyLength:
            problems.append(_describeNoReply(first, self.options))
        if self.second is None:
            problems.append(
                f"no session resumption: the second connection failed: {self.secondError}"
            )
        elif not self.second.resumed:
            problems.append(_RESUMPTION_MISSING)
        return problems

    def _trust(self) -> str:
        caPath = self.options.caPath
        return str(caPath) if caPath is not None else "the system store"

    def asDict(self) -> dict[str, Any]:
        """
        The facts as JSON values.
        """
        first = self.first
        certificate = first.certificate
        second = self.second
        return {
            "ok": not self.problems(),
            "target": str(self.options.target),
            "address": first.address,
            "serverName": self.options.serverName,
            "tlsVersion": first.tlsVersion,
            "cipher": first.cipher,
            "group": first.group,
            "alpnProtocol": first.alpnProtocol,
            "certificate": None
            if certificate is None
            else {
                "subject": certificate.subject,
                "subjectAltNames": list(certificate.subjectAltNames),
                "issuer": certificate.issuer,
                "sha256": certificate.sha256,
                "notAfter": certificate.notAfter,
            },
            "verification": {
                "ok": self.verified,
                "trust": self._trust(),
                "chain": first.chainVerification,
                "name": first.nameVerification,
            },
            "reply": _replyAsJSON(first),
            "closing": first.closing,
            "closingDetail": first.closingDetail,
            "handshakeSeconds": round(first.handshakeSeconds, 6),
            "resumption": {
                "resumed": bool(second and second.resumed),
                "tlsVersion": second.tlsVersion if second else None,
                "handshakeSeconds": round(second.handshakeSeconds, 6)
                if second
                else None,
                "error": self.secondError,
            },
            "problems": self.problems(),
        }

    def asText(self) -> str:
        """
        The facts for a person, one per line, then one line per problem.
        """
        first = self.first
        options = self.options
        lines = [
            ("target", f"{options.target} ({first.address}), "
             + (f"SNI {options.serverName}" if options.serverName else "no SNI")),
            ("TLS version", first.tlsVersion),
            ("cipher", first.cipher or "none"),
            ("group", first.group or "none reported"),
            ("ALPN", first.alpnProtocol or "none"),
        ]
        certificate = first.certificate
        if certificate is None:
            lines.append(("certificate", "none"))
        else:
            lines += [
                ("subject", certificate.subject or "(empty)"),
                ("SANs", ", ".join(certificate.subjectAltNames) or "none"),
                ("issuer", certificate.issuer),
                ("SHA-256", certificate.sha256),
                ("notAfter", certificate.notAfter),
            ]
        if self.verified:
            verification = f"ok (trusting {self._trust()}; " + (
                f"name {options.serverName})" if options.serverName
                else f"IP address {options.target.address})"
            )
        else:
            verification = "FAILED: " + "; ".join(
                reason for reason in (first.chainVerification, first.nameVerification)
                if reason != "ok"
            )
        lines += [
            ("verification", verification),
            ("reply", f"{_previewReply(first)} ({first.replyLength} bytes)"),
            ("closed with", _describeClosing(first, options.timeout)),
            ("handshake time", _milliseconds(first.handshakeSeconds)),
        ]
        second = self.second
        if second is None:
            resumption = f"FAILED: second connection: {self.secondError}"
        elif second.resumed:
            resumption = (
                f"resumed ({second.tlsVersion}, "
                f"handshake {_milliseconds(second.handshakeSeconds)})"
            )
        else:
            resumption = (
                f"NOT resumed ({second.tlsVersion}, full handshake "
                f"{_milliseconds(second.handshakeSeconds)})"
            )
        lines.append(("resumption", resumption))
        width = max(len(label) for label, _ in lines) + 2
        text = [f"{label + ':':<{width}}{value}" for label, value in lines]
        problems = self.problems()
        text += [f"problem: {problem}" for problem in problems]
        if not problems:
            text.append("OK: certificate verified, reply received, session resumed")
        return "\n".join(text) + "\n"


def _replyAsJSON(facts: ConnectionFacts) -> dict[str, Any]:
    """
    The reply for a JSON reader: text when it is UTF-8, base64 otherwise;
    C{truncated} when only the first L{REPLY_KEPT} bytes were kept.
    """
    reply: dict[str, Any] = {"length": facts.replyLength}
    try:
        reply["text"] = facts.reply.decode("utf-8")
    except UnicodeDecodeError:
        reply["base64"] = base64.b64encode(facts.reply).decode("ascii")
    reply["truncated"] = facts.replyLength > len(facts.reply)
    return reply


def _previewReply(facts: ConnectionFacts) -> str:
    preview = repr(facts.reply[:REPLY_PREVIEW])
    if facts.replyLength > REPLY_PREVIEW:
        preview += "..."
    return preview


def _describeClosing(facts: ConnectionFacts, timeout: float) -> str:
    return {
        "close_notify": "close_notify",
        "tcp-close": "a TCP close without close_notify",
        "reset": "a TCP reset, without close_notify",
        "timeout": f"neither close_notify nor a TCP close within {timeout:g}s",
        "tls-error": f"a TLS error: {facts.closingDetail}",
        "not-read": "tlsreply check's own close_notify, without reading",
    }[facts.closing]


def _describeNoReply(facts: ConnectionFacts, options: CheckOptions) -> str:
    if facts.closing == "timeout":
        problem = f"no reply: the server sent no data within {options.timeout:g}s"
        if options.send:
            return problem + " of the request"
        # An HTTPS server, or any that speaks only when spoken to.
        return problem + "; it may be waiting for a request: try --send TEXT or --http"
    if facts.closing == "not-read":
        return "no reply: not read (closed after the handshake)"
    ending = {
        "close_notify": "sent close_notify",
        "tcp-close": "closed TCP",
        "reset": "reset the connection",
        "tls-error": f"failed with a TLS error ({facts.closingDetail})",
    }[facts.closing]
    return f"no reply: the server sent no data before it {ending}"


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def check(options: CheckOptions) -> CheckResult:
    """
    Make both connections: the second offers the first one's session, and
    reads the reply only if the server closed the first by itself.

    @raise CheckUsageError: if the C{--ca} file cannot be used.
    @raise CheckConnectionError: if the first connection fails; a failing
        second connection is a problem in the result instead, because the
        first one's facts are still worth reporting.
    """
    context = buildClientContext(options)
    first = connectOnce(options, context)
    try:
        # Only the handshake of the second connection counts. A server that
        # did not close the first one by itself (one waiting for a request)
        # would make waiting for its close cost the whole timeout again.
        second: ConnectionFacts | None = connectOnce(
            options, context, first.session, readReply=first.closing != "timeout"
        )
        secondError = None
    except CheckConnectionError as e:
        second, secondError = None, str(e)
    return CheckResult(options, first, second, secondError)


def runCheck(argv: list[str], out: TextIO) -> int:
    """
    Run C{tlsreply check} with the arguments after C{check}, writing
    everything (facts, problems, errors, C{--help}) to C{out}.

    @return: the exit status: L{EXIT_OK}, L{EXIT_FAILED} (a problem, or the
        server could not be reached) or L{EXIT_USAGE} (bad arguments).
    """
    if "-h" in argv or "--help" in argv:
        out.write(f"Usage: tlsreply check {CheckCommand()}")
        return EXIT_OK
    try:
        options = parseArguments(argv)
    except CheckUsageError as e:
        out.write(f"tlsreply check: {e} (see --help)\n")
        return EXIT_USAGE
    try:
        result = check(options)
    except CheckUsageError as e:
        out.write(f"tlsreply check: {e}\n")
        return EXIT_USAGE
    except CheckConnectionError as e:
        if options.json:
            out.write(json.dumps({"ok": False, "target": str(options.target),
                                  "error": str(e)}) + "\n")
        else:
            out.write(f"tlsreply check: {e}\n")
        return EXIT_FAILED
    if options.json:
        out.write(json.dumps(result.asDict(), indent=2) + "\n")
    else:
        out.write(result.asText())
    return EXIT_OK if not result.problems() else EXIT_FAILED
