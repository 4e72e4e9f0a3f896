# -*- test-case-name: tests.test_workers -*-
"""
C{--workers N}: one parent that binds and supervises, N workers that serve.

Its parts: L{tlsreply.workers.supervisor} (the parent, its workers and their
replacement), L{tlsreply.workers._sockets} (the listening sockets, bound
once in the parent and adopted by each worker) and
L{tlsreply.workers._cpulimit} (how many CPUs C{--workers auto} counts).
"""
