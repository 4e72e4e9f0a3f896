# -*- test-case-name: tests.test_protocol, tests.test_lifecycle, tests.test_endings -*-
"""
A connection, whichever way it came: its addresses, its record, and the
server's bookkeeping of every connection in progress.

Its parts: L{tlsreply.connection.addresses} (peer and listening addresses,
as operators write them), L{tlsreply.connection.peertext} (text a peer
chose, made safe for a log line), L{tlsreply.connection.ending} (how a
connection ended: a kind for the metrics, a text for the log),
L{tlsreply.connection.records} (what a completed handshake negotiated), L{tlsreply.connection.registry} (every
connection of one server, from accept to close, with its deadlines,
L{tlsreply.connection._deadlines}, how far its bytes got,
L{tlsreply.connection.tcpinfo}, and the heap given back after a burst of
handshakes, L{tlsreply.connection._heaptrim}) and L{tlsreply.connection.limits} (the cap
on connections in progress). The transports (L{tlsreply.transport}), the
logs and the metrics count on these; they import none of them.
"""
