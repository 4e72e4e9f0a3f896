# -*- test-case-name: tests.test_wire, tests.test_proxywire -*-
"""
The transports: how the bytes of a connection reach the reply protocol,
from accept to TLS.

Its parts: L{tlsreply.transport.listening} (tlsreply's own listening ports
and their accept loop), L{tlsreply.transport.tlssocket} (the lean path: TLS
directly on the accepted socket, driven by one epoll instance,
L{tlsreply.transport._poller}), L{tlsreply.transport.tlsmemory} (TLS over
memory BIOs, for any Twisted stream endpoint),
L{tlsreply.transport.proxyheader} (the PROXY header of C{haproxy:} ports)
and L{tlsreply.transport._lingering} (a socket read to its end after a
failed handshake, so that the client reads the alert, not a reset).
"""
