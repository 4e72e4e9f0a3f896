# -*- test-case-name: tests.test_interop -*-
"""
The interop matrix's Python C{ssl} client: the standard library only, so
that any Python runs it (the project's, and Debian's C{/usr/bin/python3}).

    python pyclient.py CASES.json  ->  JSON on standard output

For each case it connects as a client author's code would: the default
context (C{ssl.create_default_context}) trusting only the case's CA file,
the host name checked, the request sent, the reply read to the end; twice
(offering the first session) where the case asks. It also reports the
facts that decide this Python's outcomes (its OpenSSL, its default
context's minimum version and security level).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
from typing import Any


def connect(case: dict[str, Any], context: ssl.SSLContext, session: Any) -> tuple[bytes, Any, bool, str | None]:
    with socket.create_connection((case["host"], case["port"]), timeout=case["timeout"]) as raw:
        with context.wrap_socket(raw, server_hostname=case["serverName"], session=session) as tls:
            tls.sendall(case["request"].encode())
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
            return data, tls.session, bool(tls.session_reused), tls.version()


def run(case: dict[str, Any]) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=case["caFile"])
    if case.get("maxVersion") == "1.2":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    result: dict[str, Any] = {"id": case["id"], "accepted": False, "error": None, "reply": "",
                              "version": None, "resumed": None}
    session = None
    try:
        for _ in range(2 if case.get("twice") else 1):
            data, session, resumed, version = connect(case, context, session)
            result.update(reply=data.decode("utf-8", "replace")[-200:], resumed=resumed,
                          version=version)
        result["accepted"] = True
    except (OSError, ssl.SSLError) as e:
        result["error"] = re.sub(r" \(_ssl\.c:\d+\)$", "", str(e)) or type(e).__name__
    return result


def facts() -> dict[str, Any]:
    context = ssl.create_default_context()
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "opensslVersion": ssl.OPENSSL_VERSION,
        "opensslVersionInfo": list(ssl.OPENSSL_VERSION_INFO[:3]),
        "minimumVersion": int(context.minimum_version),
        "securityLevel": int(context.security_level),
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    json.dump({"facts": facts(), "results": [run(case) for case in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
