#!/usr/bin/env python3
# -*- test-case-name: tests.test_fingerprint_captures -*-
"""
Capture real ClientHellos for the fingerprint tests (run once; the result
is fixed test data in C{tests/data/clienthellos/}).

    python scripts/capture_clienthellos.py

A raw TCP server on 127.0.0.1 (no TLS at all) keeps the first bytes each
client sends, up to the end of its ClientHello, and closes. The clients:
curl_cffi's browser profiles (Chrome 120 and 131, Firefox 144, Safari 26:
BoringSSL with each browser's hello), and Python's C{ssl} for the edge
cases (no SNI; a one-character ALPN; an ALPN whose first character is not
alphanumeric). Chrome adds a padding extension to some of its hellos (a
seventeenth extension, another JA4): the files kept are hellos without
it, whose JA4 FoxIO publishes. C{manifest.json} gives each file its JA4 and JA4_r as an
independent implementation computes them, FoxIO's C{ja4plus} package
(never tlsreply's own code), and, for Chrome, FoxIO's published value.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).parent.parent / "tests" / "data" / "clienthellos"

#: FoxIO's published JA4 of Chrome (the JA4 README's example, and
#: ja4db.com's entries for Chrome 120 to 131 on TLS over TCP).
FOXIO_CHROME = "t13d1516h2_8daaf6152771_02713d6af862"


def helloLength(data: bytes) -> int | None:
    """
    How many bytes the records carrying the first handshake message take,
    once they are all in.
    """
    offset, handshake = 0, b""
    while offset + 5 <= len(data):
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        if offset + 5 + length > len(data):
            return None
        handshake += data[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if len(handshake) >= 4 and len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big"):
            return offset
    return None


def capture(connect: Callable[[int], object]) -> bytes:
    """
    The first ClientHello a client sends, as it sent it (its records).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    kept: list[bytes] = []

    def serve() -> None:
        connection, _ = listener.accept()
        data = b""
        with connection:
            while (end := helloLength(data)) is None:
                chunk = connection.recv(65536)
                if not chunk:
                    raise RuntimeError("the client closed before its hello")
                data += chunk
            kept.append(data[:end])

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        connect(port)
    except Exception:  # the server is not TLS: every client fails, after its hello
        pass
    thread.join(10)
    listener.close()
    return kept[0]


def curlCffi(profile: str) -> Callable[[int], object]:
    def connect(port: int) -> object:
        from curl_cffi import requests

        return requests.get(f"https://localhost:{port}/", impersonate=profile, timeout=5)

    return connect


def pythonSSL(serverName: str | None, alpn: list[str] | None) -> Callable[[int], object]:
    def connect(port: int) -> object:
        context = ssl.create_default_context()
        context.check_hostname = serverName is not None
        if alpn:
            context.set_alpn_protocols(alpn)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            return context.wrap_socket(raw, server_hostname=serverName)

    return connect


CLIENTS: dict[str, tuple[str, Callable[[int], object]]] = {
    "chrome120": ("curl_cffi chrome120 impersonation", curlCffi("chrome120")),
    "chrome131": ("curl_cffi chrome131 impersonation", curlCffi("chrome131")),
    "firefox144": ("curl_cffi firefox144 impersonation", curlCffi("firefox144")),
    "safari260": ("curl_cffi safari260 impersonation", curlCffi("safari260")),
    "python-default": ("Python ssl, SNI localhost, no ALPN", pythonSSL("localhost", None)),
    "python-no-sni": ("Python ssl, no server_hostname (no SNI), no ALPN",
                      pythonSSL(None, None)),
    "python-alpn-one-character": ("Python ssl, SNI localhost, ALPN ['h']",
                                  pythonSSL("localhost", ["h"])),
    "python-alpn-not-alphanumeric": ("Python ssl, SNI localhost, ALPN ['*x', 'h2']",
                                     pythonSSL("localhost", ["*x", "h2"])),
}


def _nonAlphanumericALPN(ja4plus: str) -> tuple[str, str]:
    """
    FoxIO's JA4 specification (technical_details/JA4.md, "ALPN Extension
    Value") takes the first and last characters of the hex form of the
    first ALPN value when its first or last byte is not alphanumeric
    (0x30-0x39, 0x41-0x5A, 0x61-0x7A). ja4plus writes printable bytes as
    they are instead, so its value is kept beside the specification's.
    """
    prefix, ciphers, extensions = ja4plus.split("_")
    value = prefix[:8] + "28"
    return "_".join([value, ciphers, extensions]), (
        "The first ALPN value is '*x', bytes 2a 78: '*' (0x2a) is not "
        "alphanumeric, so JA4 takes the first and last characters of its hex "
        "form '2a78': '2' and '8'. The rest is ja4plus's (the ALPN does not "
        "enter the hashes)."
    )


#: The hellos whose JA4 is worked out by hand from FoxIO's specification,
#: where ja4plus does not follow it.
BY_HAND = {"python-alpn-not-alphanumeric": _nonAlphanumericALPN}


def main() -> None:
    from importlib.metadata import version

    import curl_cffi
    import ja4plus  # noqa: F401
    from ja4plus.fingerprinters.ja4 import generate_ja4, get_raw_fingerprint
    from ja4plus.utils.tls_utils import parse_tls_handshake

    OUT.mkdir(parents=True, exist_ok=True)
    hellos: dict[str, dict[str, str | None]] = {}
    manifest = {
        "about": __doc__.strip().splitlines()[0],
        "computedBy": f"ja4plus {version('ja4plus')} (FoxIO's JA4+ package): "
        "generate_ja4 and get_raw_fingerprint of parse_tls_handshake(the file)",
        "capturedWith": f"curl_cffi {curl_cffi.__version__}; Python {sys.version.split()[0]}, "
        f"{ssl.OPENSSL_VERSION}",
        "hellos": hellos,
    }
    for name, (what, connect) in CLIENTS.items():
        data = capture(connect)
        (OUT / f"{name}.bin").write_bytes(data)
        info = parse_tls_handshake(data)
        entry: dict[str, str | None] = {
            "client": what,
            "file": f"{name}.bin",
            "ja4": generate_ja4(info),
            "ja4_r": get_raw_fingerprint(info),
            "ja4_o": generate_ja4(info, original_order=True),
        }
        if name.startswith("chrome"):
            entry["published"] = FOXIO_CHROME
        if name in BY_HAND:
            entry["ja4plus"] = entry["ja4"]
            entry["ja4"], entry["derivation"] = BY_HAND[name](str(entry["ja4"]))
        hellos[name] = entry
        sys.stdout.write(f"{name}: {len(data)} bytes, {entry['ja4']}\n")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
