# -*- test-case-name: tests.test_clienthello, tests.test_fingerprint -*-
"""
The ClientHello: what a client offered, read before OpenSSL reads it.

Its parts: L{tlsreply.clienthello.offered} (what a client offered, as the
log and the records report it), L{tlsreply.clienthello.parser} (the bytes,
read as the untrusted input they are), L{tlsreply.clienthello.peek} (the
socket path's look at a connection's first bytes),
L{tlsreply.clienthello.fingerprint} (JA4 and JA3) and
L{tlsreply.clienthello.names} (IANA's names of the code points, with
L{tlsreply.clienthello._ciphersuitenames}, the largest registry, apart).
"""
