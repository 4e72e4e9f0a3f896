# -*- test-case-name: tests.test_credentials, tests.test_wire -*-
"""
TLS configuration: what the server's handshakes are made of, decided before
the first connection.

Its parts: L{tlsreply.tls.policy} (the protocol-level choices, checked
without building anything), L{tlsreply.tls.credentials} (a certificate, key
and chain from PEM files), L{tlsreply.tls.certificatedirectory} (every
certificate of a folder), L{tlsreply.tls.certificates} (making keys and
certificates), L{tlsreply.tls.devcert} (the development certificate),
L{tlsreply.tls.contexts} (OpenSSL contexts from a policy and credentials,
one per server name), L{tlsreply.tls.reload} (swapping them in a running
server) and L{tlsreply.tls.safefiles} (the one way tlsreply writes a file,
a key above all), L{tlsreply.tls.inputfiles} (the one way it reads a file an
operator names: regular files only, never a FIFO). pyOpenSSL's private binding is fenced in
L{tlsreply._openssl}.
"""
