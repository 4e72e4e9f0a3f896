#!/usr/bin/env python3
"""
Bare Twisted: the least a Twisted TLS reply server can be, as a yardstick
for tlsreply's own overhead in the benchmark (C{bench/run.py}).

C{TLSMemoryBIOFactory} over a plain TCP port, with Twisted's
C{CertificateOptions} and, as tlsreply has them, the session cache and
session tickets on (Twisted's default has both off, which would make the
resumed columns meaningless). The protocol writes the reply and calls
C{loseConnection}, which sends close_notify once the reply is out. No
logging, no timeouts, no connection cap, no C{TCP_NODELAY}: Twisted's
defaults, so that what tlsreply adds on top is what the benchmark shows.

Listens on 127.0.0.1 only; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from OpenSSL import crypto
from twisted.internet import reactor
from twisted.internet.interfaces import IReactorCore, IReactorTCP
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.protocols.tls import TLSMemoryBIOFactory


class ReplyOnce(Protocol):
    """
    Write the reply, then close (after close_notify, which the TLS layer
    sends once the reply is written).
    """

    reply = b"test\n"

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.reply)
        self.transport.loseConnection()


def main() -> None:
    """
    Parse the command line, build the TLS context once, listen, run.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True, help="PEM certificate")
    parser.add_argument("--key", type=Path, required=True, help="PEM private key")
    parser.add_argument("--reply", default="test\n")
    arguments = parser.parse_args()

    certificate = x509.load_pem_x509_certificate(arguments.cert.read_bytes())
    key = load_pem_private_key(arguments.key.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        parser.error("--key: an RSA or ECDSA key is required")
    options = CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(key),
        certificate=crypto.X509.from_cryptography(certificate),
        enableSessions=True,
        enableSessionTickets=True,
    )
    ReplyOnce.reply = arguments.reply.encode("utf-8")
    factory = TLSMemoryBIOFactory(options, False, Factory.forProtocol(ReplyOnce))
    tcp = cast(IReactorTCP, reactor)
    tcp.listenTCP(
        arguments.port,
        factory,  # type: ignore[arg-type]
        backlog=511,
        interface="127.0.0.1",
    )
    cast(IReactorCore, reactor).run()


if __name__ == "__main__":
    main()
