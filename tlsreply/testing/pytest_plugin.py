"""
pytest fixtures for testing TLS clients against a real tlsreply server.

Registered through the C{pytest11} entry point, so after C{pip install
tlsreply} a test can simply ask for it::

    def test_my_client(tlsreply_server):
        reply = my_client.fetch(tlsreply_server.host, tlsreply_server.port,
                                cafile=tlsreply_server.caCertificatePath)
        assert reply == b"test\\n"
        [record] = tlsreply_server.waitForRecords(1)
        assert record.tlsVersion == "TLSv1.3"

    def test_rejects_expired(tlsreply_server_factory):
        server = tlsreply_server_factory(scenario="expired")
        ...

Why a thread and not a subprocess: the server runs on a private reactor
instance (not Twisted's global one) in a daemon thread that starts once per
test session. A new server then takes milliseconds instead of a
Python-and-Twisted start-up per test; the records of its connections are
ordinary Python objects, not a serialisation; and because the global
reactor is never touched, suites that also run trial tests, pytest-twisted
or asyncio keep working. Each server is stopped when its test ends, passed
or failed, and the thread ends with the session.

This module imports nothing heavy until a fixture is used: pytest imports
every plugin at start-up, in every project that has tlsreply installed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tlsreply.connection.records import ConnectionRecord
    from tlsreply.testing import ExpectedOutcome, IssuingCA, TestServer


class ReactorThread:
    """
    A private reactor running in a daemon thread.
    """

    def __init__(self) -> None:
        try:
            from twisted.internet.epollreactor import EPollReactor as Reactor
        except ImportError:  # not Linux
            from twisted.internet.selectreactor import SelectReactor as Reactor
        self.reactor: Any = Reactor()
        self._thread = threading.Thread(
            target=self.reactor.run,
            kwargs={"installSignalHandlers": False},
            name="tlsreply-reactor",
            daemon=True,
        )
        self._thread.start()

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """
        Run C{function} in the reactor thread and wait for its result
        (waiting for a C{Deferred} result too).
        """
        from twisted.internet.threads import blockingCallFromThread

        return blockingCallFromThread(self.reactor, function, *args, **kwargs)

    def stop(self) -> None:
        self.reactor.callFromThread(self.reactor.stop)
        self._thread.join(timeout=10)


class ThreadedTestServer:
    """
    A L{TestServer} running in the reactor thread, with blocking methods.

    What is safe to use from the test's thread is passed to the
    L{TestServer} (L{FORWARDED}: C{host}, C{port}, C{address},
    C{serverName}, C{url()}, C{caCertificatePEM}, C{caCertificatePath},
    C{clientCertificatePath}, C{sslContext()}, C{clientTLSOptions()},
    C{records}, C{scenario}), with C{expectedOutcome}, C{ca},
    L{waitForRecords} and L{stop} of its own. The rest of a L{TestServer}
    (C{whenRecorded}, its service) belongs to the reactor's thread.
    """

    #: The L{TestServer} attributes passed through.
    FORWARDED = frozenset(
        {
            "host",
            "port",
            "address",
            "serverName",
            "url",
            "caCertificatePEM",
            "caCertificatePath",
            "clientCertificatePath",
            "sslContext",
            "clientTLSOptions",
            "records",
            "scenario",
        }
    )

    def __init__(self, server: TestServer, thread: ReactorThread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False

    def __getattr__(self, name: str) -> Any:
        if name in ThreadedTestServer.FORWARDED:
            return getattr(self._server, name)
        raise AttributeError(
            f"the fixture's server has no {name!r} for the test's thread"
            + ("; use waitForRecords" if name == "whenRecorded" else "")
        )

    @property
    def expectedOutcome(self) -> ExpectedOutcome:
        """
        What a correct client sees of this server's scenario (see
        L{TestServer.expectedOutcome}).
        """
        return self._server.expectedOutcome

    @property
    def ca(self) -> IssuingCA:
        """
        The test CA, which issues client and server certificates as files
        (see L{TestServer.ca}); it works from the test's own thread.
        """
        return self._server.ca

    def waitForRecords(self, count: int, timeout: float = 5.0) -> list[ConnectionRecord]:
        """
        Wait until at least C{count} connections have ended (the server
        finishes a connection a moment after the client sees it close), and
        return the first C{count} records, in the order connections ended,
        so that C{first, second = server.waitForRecords(2)} always unpacks.
        L{records} has all of them.

        @raise TimeoutError: if that does not happen within C{timeout}.
        """
        deadline = time.monotonic() + timeout
        while len(self._server.records) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(self._server.records)} connection(s) recorded, "
                    f"expected {count}"
                )
            time.sleep(0.005)
        return list(self._server.records[:count])

    def stop(self) -> None:
        """
        Stop the server (idempotent).
        """
        if not self._stopped:
            self._stopped = True
            self._thread.call(self._server.stop)


@pytest.fixture(scope="session")
def tlsreply_reactor_thread() -> Iterator[ReactorThread]:
    """
    The reactor thread shared by every tlsreply server of the session.
    """
    thread = ReactorThread()
    yield thread
    thread.stop()


@pytest.fixture
def tlsreply_server_factory(
    tlsreply_reactor_thread: ReactorThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ThreadedTestServer]]:
    """
    Start tlsreply servers with custom settings::

        server = tlsreply_server_factory(scenario="tls1.2-only", reply=b"hi\\n",
                                         http=True, alpnProtocols=("h2",))
        server = tlsreply_server_factory(httpStatus=404,
                                         httpHeaders={"X-Reason": "gone"})

    Takes the keyword arguments of L{tlsreply.testing.startTLSReplyServer}
    but C{reactor} and C{directory}, which are the fixtures' own (their
    reactor thread, pytest's temporary folder); every server it started is
    stopped when the test ends.
    """
    from tlsreply.testing import startTLSReplyServer

    started: list[ThreadedTestServer] = []

    def start(**settings: Any) -> ThreadedTestServer:
        own = sorted({"reactor", "directory"} & set(settings))
        if own:
            raise TypeError(
                f"tlsreply_server_factory chooses {' and '.join(own)} itself "
                "(its reactor thread, pytest's temporary folder): drop "
                + ("it" if len(own) == 1 else "them")
            )
        directory: Path = tmp_path_factory.mktemp("tlsreply")
        server = tlsreply_reactor_thread.call(
            lambda: startTLSReplyServer(
                reactor=tlsreply_reactor_thread.reactor, directory=directory, **settings
            )
        )
        threaded = ThreadedTestServer(server, tlsreply_reactor_thread)
        started.append(threaded)
        return threaded

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def tlsreply_server(
    request: pytest.FixtureRequest,
    tlsreply_server_factory: Callable[..., ThreadedTestServer],
) -> ThreadedTestServer:
    """
    A tlsreply server with a valid certificate for C{localhost},
    C{127.0.0.1} and C{::1} from a fresh test CA, replying C{test\\n}.

    Parametrized indirectly, the parameter is a scenario's name or a dict
    of the factory's settings::

        @pytest.mark.parametrize("tlsreply_server", ["expired", "wrong-host"],
                                 indirect=True)
        @pytest.mark.parametrize("tlsreply_server", [{"http": True}], indirect=True)
    """
    setting = getattr(request, "param", None)
    if setting is None:
        return tlsreply_server_factory()
    if isinstance(setting, str):
        return tlsreply_server_factory(scenario=setting)
    if isinstance(setting, dict):
        return tlsreply_server_factory(**setting)
    raise pytest.UsageError(
        "tlsreply_server's parameter is a scenario's name or a dict of "
        f"tlsreply_server_factory settings, not {setting!r}"
    )
