# -*- test-case-name: tests.test_clienthello,tests.test_devcert -*-
"""
TLS without a socket: Python's C{ssl} over memory BIOs, for tests that need
TLS bytes (a client's first flight) or a whole handshake (a certificate
checked, a session to resume) without a server.
"""

from __future__ import annotations

import ssl


def firstFlight(
    context: ssl.SSLContext,
    serverName: str | None = "localhost",
    session: ssl.SSLSession | None = None,
) -> bytes:
    """
    What a Python C{ssl} client sends first: its ClientHello, as TLS
    records.
    """
    client = context.wrap_bio(
        ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname=serverName,
        session=session,
    )
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def clientHello(serverName: str = "localhost") -> bytes:
    """
    The first flight of a default Python C{ssl} client that verifies
    nothing: a real ClientHello in one TLS record.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return firstFlight(context, serverName)


def handshakeInMemory(
    clientContext: ssl.SSLContext,
    serverContext: ssl.SSLContext,
    serverName: str,
    session: ssl.SSLSession | None = None,
) -> ssl.SSLObject:
    """
    Run a TLS handshake between a Python C{ssl} client and server over
    memory BIOs, then let the client read what the server sent after it
    (TLS 1.3 tickets).

    @return: the client's side, whose C{session} can be offered again.
    @raise ssl.SSLError: if either side fails it (a client that does not
        trust the server's certificate raises
        C{ssl.SSLCertVerificationError}).
    """
    toServer, toClient = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = clientContext.wrap_bio(
        toClient, toServer, server_hostname=serverName, session=session
    )
    server = serverContext.wrap_bio(toServer, toClient, server_side=True)
    done = {client: False, server: False}
    for _ in range(20):
        for end in (client, server):
            if not done[end]:
                try:
                    end.do_handshake()
                    done[end] = True
                except ssl.SSLWantReadError:
                    pass
        if all(done.values()):
            break
    else:
        raise ssl.SSLError("the handshake did not complete in memory")
    try:
        client.read()  # the tickets, which arrive after the handshake
    except ssl.SSLWantReadError:
        pass
    return client
