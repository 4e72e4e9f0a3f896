"""
The policy options without a server: C{--show-config} prints the
effective settings; every invalid value on the command line ends the
program with one line naming it and a non-zero exit; and L{TLSPolicy},
as embedders make it, checks every field.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

from twisted.internet.ssl import TLSVersion
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from tests.support import captureLogEvents, makeCertificates, temporaryDirectory
from tlsreply import TLSPolicy
from tlsreply.command.tap import Options, makeService
from tlsreply.errors import ConfigurationError

# The command line: --show-config and invalid values.


class ShowConfigTests(SynchronousTestCase):
    """
    C{--show-config} prints the effective settings as JSON and exits 0.
    """

    def test_showConfig(self) -> None:
        """
        The JSON holds the certificate's facts and every TLS setting as it
        will be used, and the exit status is 0.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions([
                "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath),
                "--min-tls", "1.3", "--groups", "X25519:P-384", "--alpn", "h2,http/1.1",
                "--session-timeout", "60", "--session-tickets", "off",
                "--ciphersuites", "TLS_AES_128_GCM_SHA256",
                "--client-ca", str(certificates.caPath), "--verify-client", "optional",
                "--show-config",
            ])
        self.assertEqual(caught.exception.code, 0)
        settings = json.loads(stdout.getvalue())
        [certificate] = settings["certificates"]
        self.assertEqual(certificate["names"], ["localhost", "127.0.0.1", "::1"])
        self.assertEqual(certificate["key"], "ECDSA-P-256")
        tls = settings["tls"]
        self.assertEqual(
            {k: tls[k] for k in ("versions", "groups", "alpn", "sessionCache",
                                 "sessionTimeout", "sessionTickets", "tls13Ciphersuites",
                                 "verifyClient", "clientCA", "earlyData")},
            {
                "versions": "TLSv1.3-TLSv1.3",
                "groups": "X25519:P-384",
                "alpn": "h2,http/1.1",
                "sessionCache": True,
                "sessionTimeout": 60,
                "sessionTickets": False,
                "tls13Ciphersuites": "TLS_AES_128_GCM_SHA256",
                "verifyClient": "optional",
                "clientCA": str(certificates.caPath),
                "earlyData": "refused",
            },
        )

    def test_showConfigOnlyDescribes(self) -> None:
        """
        Without a certificate, C{--show-config} says a development
        certificate would be made, and makes none.
        """
        directory = temporaryDirectory(self)
        previous = Path.cwd()
        os.chdir(directory)
        self.addCleanup(os.chdir, previous)
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions(["--show-config"])
        self.assertEqual(caught.exception.code, 0)
        settings = json.loads(stdout.getvalue())
        self.assertIn("a development certificate, made at start in", settings["certificates"])
        self.assertEqual(list(directory.iterdir()), [])

    def test_showConfigScenarioTimings(self) -> None:
        """
        For a hostile scenario, C{--show-config} gives the timings it will
        serve with, given or default; a timing the scenario does not use
        is C{null}.
        """
        directory = temporaryDirectory(self)
        previous = Path.cwd()
        os.chdir(directory)
        self.addCleanup(os.chdir, previous)
        for arguments, expected in (
            (["--scenario", "slow-reply", "--scenario-byte-delay", "0.5"], (None, 0.5)),
            (["--scenario", "stall-handshake"], (60.0, None)),
            (["--scenario", "renegotiation-request", "--scenario-stall-limit", "3"], (3.0, None)),
            (["--scenario", "expired"], (None, None)),
        ):
            stdout = io.StringIO()
            self.patch(sys, "stdout", stdout)
            with self.assertRaises(SystemExit) as caught:
                Options().parseOptions([*arguments, "--show-config"])
            self.assertEqual(caught.exception.code, 0)
            settings = json.loads(stdout.getvalue())
            self.assertEqual(
                (settings["scenarioStallLimit"], settings["scenarioByteDelay"]), expected, arguments
            )
        self.assertEqual(list(directory.iterdir()), [])


class InvalidValueTests(SynchronousTestCase):
    """
    Every invalid policy value ends the program with one line naming it and
    a non-zero exit status.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self)
        self.certificates = makeCertificates(self.directory)
        self.events = captureLogEvents(self)

    def assertRefused(self, message: str, *arguments: str) -> None:
        """
        Parsing C{arguments} (with the test certificate) and making the
        service exits with a one-line message containing C{message}; as
        the exit code is a message, Python exits with status 1.
        """
        with self.assertRaises(SystemExit) as caught:
            options = Options()
            options.parseOptions([
                "--cert", str(self.certificates.certificatePath),
                "--key", str(self.certificates.keyPath), *arguments,
            ])
            makeService(options, reactor=MemoryReactor())
        code = caught.exception.code
        assert isinstance(code, str), f"exit status {code!r} for {arguments}"
        self.assertTrue(code.startswith("tlsreply: "), code)
        self.assertNotIn("\n", code)
        self.assertIn(message, code)

    def test_versions(self) -> None:
        """
        Versions outside 1.2 and 1.3 (and insecure ones outside 1.0 and
        1.1), and a minimum above the maximum, are refused.
        """
        self.assertRefused(
            "--min-tls: expected 1.2 or 1.3, got '1.1' (TLS 1.0 and 1.1 are insecure: "
            "allow them with --insecure-min-tls)",
            "--min-tls", "1.1",
        )
        self.assertRefused("--max-tls: expected 1.2 or 1.3, got '1.4'", "--max-tls", "1.4")
        self.assertRefused(
            "--insecure-min-tls: expected 1.0 or 1.1, got '1.2'", "--insecure-min-tls", "1.2"
        )
        self.assertRefused(
            "minimum TLS version TLSv1.3 is above the maximum TLSv1.2",
            "--min-tls", "1.3", "--max-tls", "1.2",
        )

    def test_ciphersAndGroups(self) -> None:
        """
        A cipher string or ciphersuites that select nothing, and an unknown
        group, are refused by name.
        """
        self.assertRefused("cipher string 'NOPE' selects no cipher", "--ciphers", "NOPE")
        self.assertRefused(
            "--ciphersuites: unknown TLS 1.3 ciphersuite 'TLS_NOPE_SHA256'",
            "--ciphersuites", "TLS_NOPE_SHA256",
        )
        self.assertRefused("unknown key-exchange group 'P-999'", "--groups", "X25519:P-999")
        self.assertRefused("needs at least one group", "--groups", ":")

    def test_openSSLRefusalsNameTheOption(self) -> None:
        """
        What OpenSSL refuses of a policy option is refused naming the
        option, as every other refused value is, while the options are
        parsed: before anything (a development certificate) is made.
        """
        self.assertRefused(
            "tlsreply: --groups: unknown key-exchange group 'P-999'", "--groups", "P-999"
        )
        self.assertRefused(
            "tlsreply: --ciphers: cipher string 'NOPE' selects no cipher", "--ciphers", "NOPE"
        )
        self.assertRefused(
            "tlsreply: --ciphersuites: unknown TLS 1.3 ciphersuite 'TLS_NOPE_SHA256'",
            "--ciphersuites", "TLS_AES_128_GCM_SHA256:TLS_NOPE_SHA256",
        )
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions(["--groups", "P-999"])
        self.assertEqual(
            caught.exception.code,
            "tlsreply: --groups: unknown key-exchange group 'P-999' (see --help)",
        )

    def test_sessions(self) -> None:
        """
        Session switches take on or off; the timeout a whole number of
        seconds from 1 to a week (in ASCII digits: Python's C{int} would
        take other scripts' digits), and says why not more.
        """
        self.assertRefused("--session-cache: expected on or off, got 'yes'", "--session-cache", "yes")
        self.assertRefused("--session-tickets: expected on or off, got '1'", "--session-tickets", "1")
        for value in ("0", "-1", "1.5", "soon", "\u0663", "\u00b2", "604801", str(2**63)):
            self.assertRefused(
                "--session-timeout: expected a whole number from 1 to 604800",
                "--session-timeout",
                value,
            )
            self.assertRefused(f"got {value!r}", "--session-timeout", value)
        self.assertRefused(
            "(a week at most: TLS 1.3 tickets can say no longer)", "--session-timeout", "604801"
        )

    def test_emptyValues(self) -> None:
        """
        An empty value (C{--port "$PORT"} with nothing in C{$PORT}) is
        refused, naming the option, rather than taken for "not given".
        """
        for option in ("port", "cert-dir", "reply-file", "ciphers", "ciphersuites",
                       "groups", "client-ca", "keylog"):
            self.assertRefused(f"--{option}: expected a value, got ''", f"--{option}", "")

    def test_alpn(self) -> None:
        """
        An empty protocol list, and a protocol name too long for ALPN, are
        refused.
        """
        self.assertRefused("--alpn: needs at least one protocol name", "--alpn", " , ")
        self.assertRefused("bad ALPN protocol name", "--alpn", "h2," + "x" * 256)

    def test_clientCertificates(self) -> None:
        """
        C{--verify-client} takes none, optional or require; asking for
        client certificates needs a client CA, a client CA needs
        verification, and the client CA file must hold certificates.
        """
        self.assertRefused(
            "--verify-client: expected none, optional or require, got 'always'",
            "--verify-client", "always",
        )
        self.assertRefused(
            "verify-client require needs a client CA file (--client-ca)",
            "--verify-client", "require",
        )
        self.assertRefused(
            "--client-ca needs --verify-client optional or require",
            "--client-ca", str(self.certificates.caPath),
        )
        missing = self.directory / "missing.pem"
        self.assertRefused(
            f"client CA file not found: {missing}",
            "--client-ca", str(missing), "--verify-client", "optional",
        )
        notPEM = self.directory / "not.pem"
        notPEM.write_text("hello\n")
        self.assertRefused(
            f"client CA file {notPEM} holds no PEM certificate",
            "--client-ca", str(notPEM), "--verify-client", "require",
        )

    def test_ocspResponse(self) -> None:
        """
        An OCSP response file that is not DER OCSP, or is missing, is
        refused by name.
        """
        bad = self.directory / "bad.ocsp"
        bad.write_bytes(b"not an OCSP response")
        self.assertRefused(
            f"OCSP response file {bad} is not a DER OCSP response",
            "--ocsp-response", str(bad),
        )
        missing = self.directory / "missing.ocsp"
        self.assertRefused(
            f"OCSP response file not found: {missing}", "--ocsp-response", str(missing)
        )

    def test_keyLog(self) -> None:
        """
        A key-log file that cannot be opened is refused with the reason.
        """
        path = self.directory / "no-such-directory" / "keys.log"
        self.assertRefused(
            f"cannot open key-log file {path}: No such file or directory",
            "--keylog", str(path),
        )

    def test_certificateDirectory(self) -> None:
        """
        A certificate folder that is missing, empty, or holds a certificate
        without its key is refused by name.
        """
        missing = self.directory / "missing"
        self.assertRefused(
            f"cannot read certificate directory {missing}", "--cert-dir", str(missing)
        )
        empty = self.directory / "empty"
        empty.mkdir()
        self.assertRefused(
            f"certificate directory {empty} holds no certificate", "--cert-dir", str(empty)
        )
        keyless = self.directory / "keyless"
        keyless.mkdir()
        (keyless / "a.pem").write_bytes(self.certificates.certificatePath.read_bytes())
        self.assertRefused(
            f"certificate {keyless / 'a.pem'} in {keyless} has no key", "--cert-dir",
            str(keyless),
        )


# TLSPolicy, as embedders make it.


class PolicyValidationTests(SynchronousTestCase):
    """
    Every field of a L{TLSPolicy} is checked when the policy is made: a
    mistake is a L{ConfigurationError} naming the field, never a
    C{TypeError} later or silence.
    """

    def assertRefused(self, message: str, **fields: object) -> None:
        with self.assertRaises(ConfigurationError) as caught:
            TLSPolicy(**fields)  # type: ignore[arg-type]
        self.assertIn(message, str(caught.exception))

    def test_eachFieldIsChecked(self) -> None:
        """
        A string for ALPN (a slip for a tuple), a version as text, numbers
        where text belongs, and text where a flag belongs are refused.
        """
        self.assertRefused("TLSPolicy.alpnProtocols: expected a sequence", alpnProtocols="h2")
        self.assertRefused("TLSPolicy.minimumVersion: expected a TLSVersion", minimumVersion="1.3")
        self.assertRefused("TLSPolicy.maximumVersion: expected a TLSVersion", maximumVersion=1.3)
        self.assertRefused("TLSPolicy.groups: expected None or a non-empty", groups=7)
        self.assertRefused("TLSPolicy.tls12Ciphers", tls12Ciphers="")
        self.assertRefused("TLSPolicy.sessionCache: expected True or False", sessionCache="on")
        self.assertRefused("TLSPolicy.sessionTimeout: expected whole seconds", sessionTimeout=1.5)
        self.assertRefused("TLSPolicy.sessionTimeout", sessionTimeout=0)
        self.assertRefused(
            "TLSPolicy.sessionTimeout: expected whole seconds from 1 to 604800 (a week)",
            sessionTimeout=2**63,
        )
        self.assertRefused("TLSPolicy.verifyClient", verifyClient="always")
        self.assertRefused("TLSPolicy.clientCAPath: expected None or a path", clientCAPath=3)
        self.assertRefused(
            "TLSPolicy.insecureMinimumVersion", insecureMinimumVersion=TLSVersion.TLSv1_2
        )
        self.assertRefused("bad ALPN protocol name", alpnProtocols=("h2", ""))

    def test_openSSLIsAskedWhenThePolicyIsMade(self) -> None:
        """
        Cipher strings, TLS 1.3 ciphersuites and groups that OpenSSL would
        refuse are refused when the policy is made, naming the field, not
        later when contexts are built from it: an unknown group or
        ciphersuite by name (OpenSSL would silently drop an unknown
        ciphersuite beside a known one), a cipher string that selects
        nothing.
        """
        self.assertRefused(
            "TLSPolicy.groups: unknown key-exchange group 'P-999'", groups="P-999"
        )
        self.assertRefused(
            "TLSPolicy.groups: unknown key-exchange group 'P-999'", groups="X25519:P-999"
        )
        self.assertRefused("TLSPolicy.groups: needs at least one group", groups=":")
        self.assertRefused(
            "TLSPolicy.tls12Ciphers: cipher string 'NOPE' selects no cipher",
            tls12Ciphers="NOPE",
        )
        self.assertRefused(
            "TLSPolicy.tls13Ciphersuites: unknown TLS 1.3 ciphersuite 'TLS_NOPE'",
            tls13Ciphersuites="TLS_AES_128_GCM_SHA256:TLS_NOPE",
        )
        self.assertRefused(
            "TLSPolicy.tls13Ciphersuites: needs at least one ciphersuite",
            tls13Ciphersuites=":",
        )
        policy = TLSPolicy(
            tls12Ciphers="ECDHE-RSA-AES128-GCM-SHA256:!aNULL",
            tls13Ciphersuites="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
            groups="X25519:P-256",
        )
        self.assertEqual(policy.groups, "X25519:P-256")

    def test_convenientFormsAreAccepted(self) -> None:
        """
        ALPN protocols as a list and paths as strings are taken as such.
        """
        policy = TLSPolicy(alpnProtocols=["h2"], keyLogPath="/tmp/keys")  # type: ignore[arg-type]
        self.assertEqual(policy.alpnProtocols, ("h2",))
        self.assertEqual(policy.keyLogPath, Path("/tmp/keys"))
