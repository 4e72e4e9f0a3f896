"""
Tests for the one way a server is put together from a L{ServerConfig}
(L{tlsreply.daemon.buildServer}) and the one check of each kind of value
(L{tlsreply.values}): the places that once each did it their own way
stay one.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from twisted.application.service import IServiceCollection
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from tests.support import makeCertificates, temporaryDirectory
from tlsreply import daemon, values
from tlsreply.check.options import _positiveSeconds
from tlsreply.command import _values
from tlsreply.config import ACCESS_LOG_DESTINATIONS, CertificateFiles, ServerConfig
from tlsreply.errors import ConfigurationError
from tlsreply.replies import httpResponse
from tlsreply.service import TLSReplyService
from tlsreply.workers.supervisor import WorkerPool

PACKAGE = Path(__file__).resolve().parent.parent / "tlsreply"


def children(service: Any) -> list[Any]:
    """
    Every service under C{service}, depth first.
    """
    found = []
    if IServiceCollection.providedBy(service):
        for child in service:
            found.append(child)
            found.extend(children(child))
    return found


def served(service: TLSReplyService) -> dict[str, Any]:
    """
    What a listening service serves and how, as plain values: what two
    services built from one configuration must share.
    """
    factory = service.replyFactory
    return {
        "addresses": [description for description, _ in service.endpoints],
        "reply": factory.reply,
        "handshakeTimeout": factory.handshakeTimeout,
        "closeTimeout": factory.closeTimeout,
        "accessLog": type(factory.accessLog),
        "maxConnections": service.limit.maximum,
        "shutdownGrace": service.shutdownGrace,
        "policy": service.policy,
        "metrics": type(factory.metrics),
    }


class BuildServerTests(SynchronousTestCase):
    """
    One process and each worker serve what L{daemon.buildServer} builds.
    """

    def setUp(self) -> None:
        certificates = makeCertificates(temporaryDirectory(self))
        self.config = ServerConfig(
            listen=("tcp:0:interface=127.0.0.1", "tcp:0:interface=::1"),
            certificates=(CertificateFiles(certificates.certificatePath, certificates.keyPath),),
            replyBody=b"gone\n",
            http=True,
            httpStatus=410,
            handshakeTimeout=3.5,
            closeTimeout=1.25,
            shutdownGrace=7.0,
            maxConnections=123,
            accessLog="off",
        )
        self.built: list[int | None] = []
        original = daemon.buildServer

        def recording(*arguments: Any, **keywords: Any) -> TLSReplyService:
            self.built.append(keywords.get("worker"))
            return original(*arguments, **keywords)

        self.patch(daemon, "buildServer", recording)

    def singleServer(self) -> TLSReplyService:
        lifecycle = daemon.buildDaemon(self.config, MemoryReactor())
        [server] = [s for s in children(lifecycle) if isinstance(s, TLSReplyService)]
        return server

    def workerServer(self, number: int) -> TLSReplyService:
        config = ServerConfig(**{**vars(self.config), "workers": 2})
        lifecycle = daemon.buildDaemon(config, MemoryReactor())
        [pool] = [s for s in children(lifecycle) if isinstance(s, WorkerPool)]
        # As a worker runs it: on the contexts the parent built, and on
        # sockets it adopts (here a memory reactor's).
        service = pool.serviceForWorker(
            MemoryReactor(), pool.contexts.current, MemoryReactor(), number
        )
        assert isinstance(service, TLSReplyService)
        return service

    def test_bothGoThroughBuildServer(self) -> None:
        """
        The single process's server and a worker's are both made by
        L{daemon.buildServer}, the worker's with its number.
        """
        self.singleServer()
        self.workerServer(2)
        self.assertEqual(self.built, [None, 2])

    def test_workerServesAsTheProcessDoes(self) -> None:
        """
        A worker's server serves every setting of the configuration as the
        single process's does; only what its log lines call it differs.
        """
        single, worker = self.singleServer(), self.workerServer(2)
        self.assertEqual(served(worker), served(single))
        self.assertEqual(served(single)["reply"], self.config.reply)
        self.assertEqual(served(single)["maxConnections"], 123)
        self.assertEqual((single.label, worker.label), ("tlsreply", "tlsreply worker 2"))


class AccessLogDestinationsTests(SynchronousTestCase):
    """
    L{ACCESS_LOG_DESTINATIONS} is the one list of where the connection log
    can go besides a file.
    """

    def test_onlyTheConfigListsThem(self) -> None:
        """
        No product module but L{tlsreply.config} spells two or more of the
        destinations together in a tuple, list or set: the others read
        the constant, so that a new destination is added in one place.
        """
        names = set(ACCESS_LOG_DESTINATIONS)
        listing = []
        for path in sorted(PACKAGE.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                    spelled = {
                        e.value for e in node.elts if isinstance(e, ast.Constant)
                    } & names
                    if len(spelled) >= 2:
                        listing.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
        self.assertEqual([entry.split(":")[0] for entry in listing], ["config.py"], listing)


class OneCheckTests(SynchronousTestCase):
    """
    The command line's coercers and L{ServerConfig} refuse the same values,
    with the one check of L{tlsreply.values}.
    """

    numbers = [-1, -0.5, 0, 0.25, 1, 2.5, 1e308, math.inf, math.nan]

    def refuses(self, check: Any, value: Any) -> bool:
        try:
            check(value)
        except (ValueError, ConfigurationError):
            return True
        return False

    def test_seconds(self) -> None:
        """
        C{--handshake-timeout} and L{ServerConfig.handshakeTimeout} accept
        the same numbers of seconds.
        """
        coerce = _values.seconds("handshake-timeout")
        for number in self.numbers:
            self.assertEqual(
                self.refuses(coerce, repr(number)),
                self.refuses(lambda n: ServerConfig(handshakeTimeout=n), number),
                number,
            )
        self.assertTrue(self.refuses(coerce, "soon"))

    def test_positiveSeconds(self) -> None:
        """
        C{tlsreply check --timeout} takes what L{values.seconds} takes as
        positive.
        """
        for number in self.numbers:
            self.assertEqual(
                self.refuses(_positiveSeconds, repr(number)),
                self.refuses(lambda n: values.seconds(n, "t", positive=True), number),
                number,
            )
        self.assertTrue(self.refuses(_positiveSeconds, "0"))

    def test_wholeNumbers(self) -> None:
        """
        C{--max-connections} and L{ServerConfig.maxConnections} accept the
        same whole numbers.
        """
        coerce = _values.wholeNumber("max-connections")
        for number in [-1, 0, 1, 2, 10**9]:
            self.assertEqual(
                self.refuses(coerce, str(number)),
                self.refuses(lambda n: ServerConfig(maxConnections=n), number),
                number,
            )

    def test_httpStatus(self) -> None:
        """
        C{--http-status} and L{ServerConfig.httpStatus} (through
        L{httpResponse}) accept the same status codes, and say so alike.
        """
        for status in [99, 100, 200, 410, 599, 600, 999]:
            self.assertEqual(
                self.refuses(_values.httpStatus, str(status)),
                self.refuses(lambda s: ServerConfig(http=True, httpStatus=s), status),
                status,
            )
        error = self.assertRaises(ConfigurationError, httpResponse, b"", 600)
        self.assertEqual(str(error), "HTTP status: expected a status code from 100 to 599, got 600")
