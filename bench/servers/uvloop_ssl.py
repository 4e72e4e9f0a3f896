#!/usr/bin/env python3
"""
uvloop with the standard library's C{ssl}: an asyncio TLS reply server, the
benchmark's (C{bench/run.py}) example of a Python server whose
per-connection path is mostly C (libuv's loop, uvloop's SSL protocol, the
interpreter's OpenSSL binding).

The protocol writes the reply and closes; the SSL transport sends
close_notify after the reply. The context is an C{ssl.SSLContext} at the
standard library's server defaults (TLS 1.2 and 1.3, session cache and
tickets on), with the certificate loaded once. Listens on 127.0.0.1 only;
SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
from typing import cast

import uvloop


class ReplyOnce(asyncio.Protocol):
    """
    Write the reply, then close (after close_notify).
    """

    reply = b"test\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's SSL transport has write() but is no WriteTransport subclass.
        writer = cast(asyncio.WriteTransport, transport)
        writer.write(self.reply)
        writer.close()


async def serve(port: int, context: ssl.SSLContext) -> None:
    """
    Listen until SIGTERM or SIGINT.
    """
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set_result, None)
    server = await loop.create_server(
        ReplyOnce, "127.0.0.1", port, ssl=context, backlog=511
    )
    async with server:
        await stop


def main() -> None:
    """
    Parse the command line, build the context, serve.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True, help="PEM certificate")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--reply", default="test\n")
    arguments = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(arguments.cert, arguments.key)
    ReplyOnce.reply = arguments.reply.encode("utf-8")
    uvloop.run(serve(arguments.port, context))


if __name__ == "__main__":
    main()
