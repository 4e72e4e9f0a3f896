# -*- test-case-name: tests.test_accesslog, tests.test_jsonlog -*-
"""
The logs: one line per connection, and the server log in the format and
place the operator chose.

Its parts: L{tlsreply.logs.access} (the connection log, written through a
buffer) and L{tlsreply.logs.format} (where the server log goes and in which
format, with L{tlsreply.logs._jsonlines}, one JSON object per line, and
L{tlsreply.logs._ownlines}, only the lines tlsreply chose). What a peer
chose is escaped before it gets here (L{tlsreply.connection.peertext}).
"""
