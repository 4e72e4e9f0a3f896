# -*- test-case-name: tests.test_scenarios, tests.test_outcomes -*-
"""
The scenarios: a local badssl, deliberately broken or unusual TLS servers
made on the fly from a test CA, and what a correct client sees of each. The
server serves one (C{tlsreply serve --scenario NAME}), C{tlsreply scenarios}
lists them, and the test toolkit (L{tlsreply.testing}) starts them for
tests.

Its parts: L{tlsreply.scenarios.servers} (C{SCENARIOS}, and a scenario's
server built from its entry), L{tlsreply.scenarios.catalogue} (every
scenario, in order, from the theme modules
L{tlsreply.scenarios.certificate}, L{tlsreply.scenarios.protocol},
L{tlsreply.scenarios.revocation} and L{tlsreply.scenarios.hostile}, where
new ones are added; the hostile ones are served by
L{tlsreply.scenarios.misbehaving}, which writes TLS records itself with
L{tlsreply.scenarios._tlsrecords}, with the timings of
L{tlsreply.scenarios.timings}),
L{tlsreply.scenarios.base} (what a scenario is made of),
L{tlsreply.scenarios.outcomes} (what a client sees, for each TLS stack, with
L{tlsreply.scenarios.pythonssl} for the Python running),
L{tlsreply.scenarios.ca} (the test CA, with L{tlsreply.scenarios._sha1} and
L{tlsreply.scenarios._sha1probe} for SHA-1 signatures) and
L{tlsreply.scenarios._httpfiles} (a CRL served over HTTP). It never imports
the test toolkit.
"""
