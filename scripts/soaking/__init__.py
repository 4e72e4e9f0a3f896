"""
The parts of the soak (C{scripts/soak.py}), on top of the benchmark's
harness (L{bench.harness}: processes, C{/proc}, bounded waits):

  - L{scripts.soaking.server}: C{twistd -n tlsreply}, its log read as it
    comes;
  - L{scripts.soaking.clients}: the good and bad client kinds;
  - L{scripts.soaking.phases}: the phases and the server's figures after
    each;
  - L{scripts.soaking.report}: the figures and the verdict.
"""
