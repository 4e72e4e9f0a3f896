#!/usr/bin/env python3
"""
What acknowledging SNI costs a handshake: the servername callback that
makes OpenSSL answer the client's server_name extension and keep the name
in the session (L{tlsreply._openssl.acknowledgeServerName}).

Two measurements, for three callbacks on otherwise identical contexts:

  - none: no callback (what tlsreply did before);
  - tlsreply: tlsreply's own, a C{cffi} callback that returns "OK";
  - pyopenssl: pyOpenSSL's public C{set_tlsext_servername_callback} with a
    function that does nothing (pyOpenSSL's wrapper finds the connection's
    Python object, then calls the function).

1. The callback alone, per call (C{timeit}, best of 5): each callback
   called through the C function pointer OpenSSL calls, with a real
   connection's C{SSL *}. Called from Python, this includes one call from
   Python into C besides the call from C into Python that a handshake
   makes, so it is an upper bound; a call into a trivial C function
   (C{SSL_get_shutdown}) is given for scale.

2. In-memory handshakes between a pyOpenSSL client and the server's own
   contexts (L{tlsreply.buildServerContexts}), both in this process: the
   variants take turns in every round, the CPU time of this process is
   counted, and each figure is the median over the rounds of the
   microseconds per handshake (client and server together, with the
   Python that moves the bytes); the differences are the median of each
   round's difference to "none". On a shared machine they are noise of a
   few microseconds either way: what the callback costs is in (1).

    .venv/bin/python bench/servername_callback.py [--rounds 15] [--handshakes 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
from collections.abc import Callable

from OpenSSL import SSL
from OpenSSL._util import ffi, lib

from tlsreply import TLSPolicy, buildServerContexts
from tlsreply._openssl import _acceptServerName, sessionReused
from tlsreply.scenarios.ca import TestCA
from tlsreply.tls.credentials import ServerCredentials

SERVER_NAME = b"localhost"


def say(text: str) -> None:
    sys.stdout.write(text + "\n")


def removeCallback(context: SSL.Context) -> None:
    lib.SSL_CTX_set_tlsext_servername_callback(context._context, ffi.NULL)


def publicCallback(context: SSL.Context) -> None:
    context.set_tlsext_servername_callback(lambda connection: None)


def keepCallback(context: SSL.Context) -> None:
    pass


VARIANTS: dict[str, Callable[[SSL.Context], None]] = {
    "none": removeCallback,
    "tlsreply": keepCallback,
    "pyopenssl": publicCallback,
}


#: Marks a connection closed cleanly: OpenSSL makes the session of one
#: freed without it unresumable, as it should after an error.
CLOSED = SSL.SENT_SHUTDOWN | SSL.RECEIVED_SHUTDOWN


def pump(client: SSL.Connection, server: SSL.Connection) -> None:
    """
    Move bytes between the two until both handshakes are done, and mark
    both closed cleanly.
    """
    clientDone = serverDone = False
    while not (clientDone and serverDone):
        for connection, done in ((client, clientDone), (server, serverDone)):
            if done:
                continue
            try:
                connection.do_handshake()
            except SSL.WantReadError:
                pass
            else:
                if connection is client:
                    clientDone = True
                else:
                    serverDone = True
        for source, destination in ((client, server), (server, client)):
            try:
                data = source.bio_read(65536)
            except SSL.WantReadError:
                continue
            destination.bio_write(data)
    client.set_shutdown(CLOSED)
    server.set_shutdown(CLOSED)


def handshakes(
    serverContext: SSL.Context,
    clientContext: SSL.Context,
    count: int,
    session: SSL.Session | None,
) -> float:
    """
    @return: seconds for C{count} handshakes.
    """
    started = time.process_time()
    for _ in range(count):
        client = SSL.Connection(clientContext, None)
        client.set_tlsext_host_name(SERVER_NAME)
        if session is not None:
            client.set_session(session)
        client.set_connect_state()
        server = SSL.Connection(serverContext, None)
        server.set_accept_state()
        pump(client, server)
        if session is not None and not sessionReused(server):
            raise SystemExit("a handshake that should have resumed did not")
    return time.process_time() - started


def clientContextFor(version: int) -> SSL.Context:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(version)
    context.set_max_proto_version(version)
    context.set_verify(SSL.VERIFY_NONE)
    return context


def primedSession(serverContext: SSL.Context, clientContext: SSL.Context) -> SSL.Session:
    client = SSL.Connection(clientContext, None)
    client.set_tlsext_host_name(SERVER_NAME)
    client.set_connect_state()
    server = SSL.Connection(serverContext, None)
    server.set_accept_state()
    pump(client, server)
    session = client.get_session()
    assert session is not None
    return session


def callbackCosts(credentials: ServerCredentials) -> None:
    """
    Print what one call of each callback costs, called through its C
    function pointer with a real connection.
    """
    contexts = buildServerContexts(credentials, TLSPolicy())
    ours = contexts.contextForHandshake(SERVER_NAME.decode())
    public = buildServerContexts(credentials, TLSPolicy()).contextForHandshake(
        SERVER_NAME.decode()
    )
    publicCallback(public)
    publicWrapper = public._tlsext_servername_callback
    assert publicWrapper is not None
    connection = SSL.Connection(ours, None)
    ssl = connection._ssl
    alert = ffi.new("int *")
    calls = {
        "tlsreply": lambda: _acceptServerName(ssl, alert, ffi.NULL),
        "pyopenssl": lambda: publicWrapper(ssl, alert, ffi.NULL),
        "C call, for scale": lambda: lib.SSL_get_shutdown(ssl),
    }
    number = 200_000
    say("one call of the callback, µs (timeit, best of 5, called from Python)")
    for name, call in calls.items():
        if name != "C call, for scale" and call() != 0:
            raise SystemExit(f"the {name} callback did not return OK")
        best = min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6
        say(f"  {name:18} {best:6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--handshakes", type=int, default=400)
    arguments = parser.parse_args()
    credentials = TestCA().issueServerCertificate(["localhost"])
    callbackCosts(credentials)
    columns = {
        "resumed TLS 1.2": (SSL.TLS1_2_VERSION, True),
        "full TLS 1.3": (SSL.TLS1_3_VERSION, False),
    }
    for column, (version, resumed) in columns.items():
        contexts = {}
        for name, configure in VARIANTS.items():
            context = buildServerContexts(credentials, TLSPolicy()).contextForHandshake(
                SERVER_NAME.decode()
            )
            configure(context)
            contexts[name] = context
        clientContext = clientContextFor(version)
        sessions = {
            name: primedSession(context, clientContext) if resumed else None
            for name, context in contexts.items()
        }
        perRound: dict[str, list[float]] = {name: [] for name in contexts}
        count = arguments.handshakes if resumed else arguments.handshakes // 4
        for _ in range(arguments.rounds):
            for name, context in contexts.items():
                seconds = handshakes(context, clientContext, count, sessions[name])
                perRound[name].append(seconds / count * 1e6)
        say(f"{column}: µs per handshake (both sides), median of {arguments.rounds} rounds")
        for name, values in perRound.items():
            line = f"  {name:10} {statistics.median(values):8.2f}"
            if name != "none":
                differences = [a - b for a, b in zip(values, perRound["none"], strict=True)]
                line += f"   {statistics.median(differences):+6.2f} against none"
            say(line)


if __name__ == "__main__":
    main()
