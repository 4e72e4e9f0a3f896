# -*- test-case-name: tests.test_interop -*-
"""
The interop matrix (C{make interop}): every scenario, the default server,
resumption and the plain reply, served by the project's own fixtures,
against real client stacks (OpenSSL's s_client and curl, Python's C{ssl},
Node.js, Java's JSSE, GnuTLS, and BoringSSL through curl_cffi's browser
profiles). Each client's result is held to the outcome its stack is
promised; the table goes to C{docs/interop.md} and C{docs/interop.json}.

  - L{scripts.interop.clients}: the clients, and what each did;
  - L{scripts.interop.matrix}: the rows, their servers, and the judging;
  - L{scripts.interop.report}: the run, the table and the JSON.
"""
