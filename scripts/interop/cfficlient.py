# -*- test-case-name: tests.test_interop -*-
"""
The interop matrix's BoringSSL clients: curl_cffi's browser
impersonations (Chrome's, Firefox's and Safari's ClientHellos on the
BoringSSL that curl_cffi bundles).

    python cfficlient.py CASES.json PROFILE...  ->  JSON on standard output

Each case is fetched over HTTPS as the browser profile would, trusting
only the case's CA file (curl's CAINFO), C{localhost} resolved to the
case's address; twice on one handle (whose session cache offers the
first session) where the case asks.
"""

from __future__ import annotations

import json
import re
import sys
from io import BytesIO
from typing import Any

import curl_cffi
from curl_cffi import Curl, CurlError, CurlOpt


def run(case: dict[str, Any], profile: str) -> dict[str, Any]:
    result: dict[str, Any] = {"id": case["id"], "accepted": False, "error": None, "reply": "",
                              "version": None, "resumed": None}
    curl = Curl()
    try:
        curl.impersonate(profile)
        url = f"https://{case['serverName']}:{case['port']}/"
        curl.setopt(CurlOpt.RESOLVE, [f"{case['serverName']}:{case['port']}:{case['host']}"])
        curl.setopt(CurlOpt.CAINFO, case["caFile"])
        curl.setopt(CurlOpt.TIMEOUT_MS, int(case["timeout"] * 1000))
        curl.setopt(CurlOpt.HTTP09_ALLOWED, 1)
        if case.get("maxVersion") == "1.2":
            curl.setopt(CurlOpt.SSLVERSION, (1 << 16) * 6 + 6)  # TLSv1.2, max TLSv1.2
        for _ in range(2 if case.get("twice") else 1):
            body = BytesIO()
            curl.setopt(CurlOpt.URL, url)
            curl.setopt(CurlOpt.WRITEDATA, body)
            curl.perform()
            result["reply"] = body.getvalue().decode("utf-8", "replace")[-200:]
        result["accepted"] = True
    except CurlError as e:
        text = str(e)
        found = re.search(r"curl: (\(\d+\) .*?)(?:\. See https://curl\.se.*)?$", text, re.DOTALL)
        result["error"] = found.group(1) if found else text
    finally:
        curl.close()
    return result


def main() -> None:
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = {profile: [run(case, profile) for case in cases] for profile in sys.argv[2:]}
    json.dump({"version": curl_cffi.__version__,
               "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
