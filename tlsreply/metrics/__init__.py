# -*- test-case-name: tests.test_metrics, tests.test_metricsweb -*-
"""
The metrics (C{--metrics}): counting connections cheaply, and serving the
counts to Prometheus and the probes of load balancers.

Its parts: L{tlsreply.metrics.counting} (what the hot path touches, with
L{tlsreply.metrics._reasons}, a failed handshake's reason in a few fixed
words), L{tlsreply.metrics.web} (C{/metrics}, C{/ready}, C{/live}, with
L{tlsreply.metrics._http}, what a client of the endpoint may ask, and
L{tlsreply.metrics._pacing}, turns for its requests),
L{tlsreply.metrics.multiprocess} (one scrape for every worker) and
L{tlsreply.metrics.collectors} (what a scrape reads from the server's
state). The server the command line runs puts them together in
L{tlsreply.instrumentation}.
"""
