"""
The twistd/twist plugin for tlsreply.

Deliberately one lazy C{ServiceMaker}: nothing from C{tlsreply} (and so no
reactor) is imported until twistd asks for the options, so that
C{twistd --reactor=...} still chooses the reactor.
"""

from twisted.application.service import ServiceMaker

tlsreply = ServiceMaker(
    "tlsreply",  # name
    "tlsreply.command.tap",  # module with Options and makeService
    "A TLS reply server: handshake, fixed reply, close_notify, close.",
    "tlsreply",  # tapname: twistd -n tlsreply
)
