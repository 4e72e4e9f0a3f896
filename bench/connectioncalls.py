"""
What single calls on tlsreply's connection path cost, in microseconds
(issue 18): the figures that BENCHMARKS.md and the code's comments give
for accepting a socket, reading what a handshake negotiated, and the
getpid that OpenSSL makes on every random generate.

    .venv/bin/python bench/connectioncalls.py

Medians of several rounds; every figure is per call, on this machine.
"""

from __future__ import annotations

import datetime
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from OpenSSL import SSL  # noqa: E402

from tlsreply import _openssl  # noqa: E402

ROUNDS = 7
ACCEPTS = 300


def _median(measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(ROUNDS))


def perCall(call: Callable[[], object], number: int = 20000) -> float:
    def measure() -> float:
        start = time.perf_counter_ns()
        for _ in range(number):
            call()
        return (time.perf_counter_ns() - start) / number / 1000

    return _median(measure)


def accepting() -> dict[str, float]:
    """
    Accept a queue of loopback connections each way (the close is not
    counted).
    """
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(1024)
    listening.setblocking(False)
    family, kind = int(listening.family), int(listening.type)

    def wrapped() -> socket.socket:
        sock, _ = listening.accept()
        sock.setblocking(False)
        return sock

    def direct() -> socket.socket:
        descriptor, _ = listening._accept()  # type: ignore[attr-defined]
        sock = socket.socket(family, kind, 0, descriptor)
        sock.setblocking(False)
        return sock

    def measure(accept: Callable[[], socket.socket]) -> float:
        clients = []
        for _ in range(ACCEPTS):
            client = socket.socket()
            client.connect(listening.getsockname())
            clients.append(client)
        start = time.perf_counter_ns()
        accepted = [accept() for _ in range(ACCEPTS)]
        elapsed = (time.perf_counter_ns() - start) / ACCEPTS / 1000
        for sock in accepted + clients:
            sock.close()
        return elapsed

    try:
        return {
            "socket.accept() + setblocking": _median(lambda: measure(wrapped)),
            "socket._accept() + socket(fileno) + setblocking": _median(
                lambda: measure(direct)
            ),
        }
    finally:
        listening.close()


def _selfSigned() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def handshakeFacts() -> dict[str, float]:
    """
    Read what a completed TLS 1.2 handshake negotiated, with pyOpenSSL's
    getters and with L{_openssl.negotiated}.
    """
    certificate, key = _selfSigned()
    server = SSL.Context(SSL.TLS_SERVER_METHOD)
    server.use_certificate(certificate)
    server.use_privatekey(key)
    client = SSL.Context(SSL.TLS_CLIENT_METHOD)
    client.set_max_proto_version(SSL.TLS1_2_VERSION)
    serverSide = SSL.Connection(server, None)
    serverSide.set_accept_state()
    clientSide = SSL.Connection(client, None)
    clientSide.set_connect_state()
    clientSide.set_tlsext_host_name(b"localhost")
    for _ in range(4):
        for one, other in ((clientSide, serverSide), (serverSide, clientSide)):
            try:
                one.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                other.bio_write(one.bio_read(65536))
            except SSL.WantReadError:
                pass

    def pyOpenSSL() -> object:
        c = serverSide
        return (
            c.get_protocol_version_name(),
            c.get_cipher_name(),
            c.get_group_name(),
            _openssl.sessionReused(c),
            c.get_servername(),
            c.get_alpn_proto_negotiated(),
            c.get_peer_certificate(as_cryptography=True),
        )

    return {
        "pyOpenSSL's getters (version, cipher, group, resumed, name, ALPN, peer)": perCall(
            pyOpenSSL
        ),
        "_openssl.negotiated": perCall(lambda: _openssl.negotiated(serverSide)),
    }


def main() -> None:
    figures = {"os.getpid() (a system call since glibc 2.25)": perCall(os.getpid, 200000)}
    figures.update(accepting())
    figures.update(handshakeFacts())
    for name, microseconds in figures.items():
        sys.stdout.write(f"{microseconds:7.2f} µs  {name}\n")


if __name__ == "__main__":
    main()
