"""
The harness that C{bench/run.py} (the benchmark) and C{scripts/soak.py}
(the soak) share: starting and stopping processes, reading them from
C{/proc}, bounded waits, and the benchmark's rows, cells and report.

  - L{bench.harness.settings}: the benchmark's constants, columns and options;
  - L{bench.harness.processes}: processes started in their own session and
    always stopped, output read with deadlines or by a thread, bounded
    waits, the descriptor limit, progress lines;
  - L{bench.harness.procfs}: a process tree's CPU time, memory and
    descriptors, and each core's busy and stolen time, from C{/proc};
  - L{bench.harness.tools}: the load generator, nginx, the run's
    certificates;
  - L{bench.harness.servers}: the rows (nginx, tlsreply, the reference
    servers), a server started on a free port, the byte-exact check;
  - L{bench.harness.measuring}: one cell, rate or memory;
  - L{bench.harness.reporting}: medians, ratios, tables, notes, the JSON;
  - L{bench.harness.chart}: the PNG chart.

Nothing here imports C{tlsreply}: the benchmark measures it from the
outside, through C{twistd}, as it measures nginx (C{tests/test_bench.py}
checks it).
"""
