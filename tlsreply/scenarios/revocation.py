# -*- test-case-name: tests.test_scenarios,tests.test_revocation,tests.test_ocsp_stacks -*-
"""
The catalogue's scenarios about a certificate's status: revoked as a
stapled OCSP response says, revoked as a CRL at its distribution point
says, and a certificate that demands a staple it does not get.

Python's C{ssl} checks none of this by default; each scenario says what a
client must do to see its outcome (L{ExpectedOutcome.requires}).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tlsreply.scenarios._httpfiles import HTTPFiles
from tlsreply.scenarios.base import (
    NAMES,
    BuiltScenario,
    CatalogueEntry,
    refused,
    registrar,
)
from tlsreply.scenarios.ca import TestCA
from tlsreply.scenarios.outcomes import STACK_MESSAGES

#: The name of C{crl-revoked}'s CRL at its distribution point.
CRL_NAME: Final = "crl-revoked.crl"

#: The media type of a DER CRL (RFC 5280, section 4.2.1.13).
CRL_CONTENT_TYPE: Final = "application/pkix-crl"

ENTRIES: list[CatalogueEntry] = []
_scenario = registrar(ENTRIES)


@_scenario(
    "revoked",
    refused(
        "certificate-revoked",
        None,
        requires="checking the stapled OCSP response (openssl s_client -status shows "
        "it); Python's ssl cannot, and accepts",
    ),
    """A certificate from the test CA with a stapled OCSP response, signed
    by the test CA, saying it is revoked. A client that asks for and checks
    the stapled response (openssl s_client -status shows "Cert Status:
    revoked"; gnutls-cli --ocsp, curl --cert-status and Java with
    revocation checking verify it) must refuse it. The leaf is served with
    its issuer, which curl needs to check the staple. Python's ssl does not
    check OCSP at all: it accepts this server, and so does every client
    that ignores stapling. GnuTLS asks for the staple by default, checks
    it, and refuses.""",
    outcomes={
        "gnutls": refused("certificate-revoked", STACK_MESSAGES["gnutls"]["certificate-revoked"]),
    },
)
def _revoked(ca: TestCA, directory: Path) -> BuiltScenario:
    credentials = ca.issueServerCertificate(NAMES)
    # A root issued the leaf: send it too (an intermediate's chain has it).
    chain = credentials.chain or (ca.certificate,)
    response = ca.ocspResponse(credentials, "revoked")
    return BuiltScenario([replace(credentials, chain=chain, ocspResponse=response)])


@_scenario(
    "crl-revoked",
    refused(
        "certificate-revoked",
        "certificate revoked",
        requires="checking CRLs: fetch the CRL from the certificate's distribution "
        "point, load it with load_verify_locations and set VERIFY_CRL_CHECK_LEAF "
        "(openssl verify -crl_check -crl_download does all that); by default Python's "
        "ssl checks none and accepts",
    ),
    f"""A certificate from the test CA whose CRL distribution point is
    http://127.0.0.1:PORT/{CRL_NAME}, an ephemeral port on which the test
    server itself serves (over plain HTTP, as RFC 5280 expects) a CRL
    signed by the test CA that lists the certificate as revoked. A client
    that checks CRLs refuses it; Python's ssl checks none by default and
    accepts it, as most clients do.""",
)
def _crlRevoked(ca: TestCA, directory: Path) -> BuiltScenario:
    files = HTTPFiles()
    distributionPoint = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(files.url(CRL_NAME))],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )
    try:
        credentials = ca.issueServerCertificate(NAMES, extensions=[distributionPoint])
        crl = ca.certificateRevocationList([credentials.certificate])
    except BaseException:
        files.stop()  # the socket, bound already
        raise
    files.add(CRL_NAME, crl.public_bytes(serialization.Encoding.DER), CRL_CONTENT_TYPE)
    return BuiltScenario([credentials], httpFiles=files)


@_scenario(
    "must-staple-no-staple",
    refused(
        "staple-missing",
        None,
        requires="enforcing the certificate's TLS Feature extension (RFC 7633): "
        "Python's ssl cannot, and accepts",
    ),
    """A valid certificate from the test CA with the TLS Feature extension
    (RFC 7633) asking for status_request, "OCSP must-staple", served with
    no OCSP response stapled, even to a client that asks for one. A client
    that enforces must-staple refuses it (Firefox has, with
    MOZILLA_PKIX_ERROR_REQUIRED_TLS_FEATURE_MISSING), as RFC 7633 asks,
    and so does GnuTLS; Python's ssl, OpenSSL's own tools, Node.js, Java,
    Chrome and most libraries ignore the extension and accept.""",
    outcomes={
        "gnutls": refused(
            "staple-missing",
            "The certificate requires the server to include an OCSP status in its "
            "response, but the OCSP status is missing.",
        ),
    },
)
def _mustStapleNoStaple(ca: TestCA, directory: Path) -> BuiltScenario:
    mustStaple = x509.TLSFeature([x509.TLSFeatureType.status_request])
    return BuiltScenario([ca.issueServerCertificate(NAMES, extensions=[mustStaple])])
