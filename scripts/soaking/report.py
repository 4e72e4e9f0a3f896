"""
The soak's report: the server's figures at every point, what the clients
saw, and the verdict.
"""

from __future__ import annotations

import statistics
import time

from bench.harness.processes import say
from scripts.soaking.clients import GOOD_KINDS, MIX
from scripts.soaking.phases import Soak


def percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:+.1f}%" if whole else "n/a"


def report(soak: Soak, exitStatus: int | None) -> int:
    """
    Print the figures and the verdict.

    @return: the process exit status.
    """
    say()
    say("figures (server process)")
    say(f"  {'point':<44} {'time s':>7} {'connections':>11} {'descriptors':>11} {'VmRSS KiB':>11}")
    for shot in soak.snapshots:
        say(
            f"  {shot.label:<44} {shot.at:7.1f} {shot.connections:11,} "
            f"{shot.descriptors:11,} {shot.rss:11,}"
        )
    say()
    base = soak.phases.get("baseline")
    mixed = soak.phases.get("mixed")
    if base is not None and base.results:
        rate, median, p99, resumed, attempts = soak.goodFigures(base)
        say(
            f"good clients, baseline (good only, {soak.sizes.workers} workers): "
            f"{len(base.good())} in {base.wall:.2f}s = {rate:.1f}/s; latency median "
            f"{median:.1f} ms, p99 {p99:.1f} ms; resumed {resumed}/{attempts}"
        )
        if mixed is not None and mixed.results:
            mRate, mMedian, mP99, mResumed, mAttempts = soak.goodFigures(mixed)
            goodShare = 100 * sum(MIX[k] for k in GOOD_KINDS) / sum(MIX.values())
            say(
                f"good clients, mixed phase: {len(mixed.good())} in {mixed.wall:.2f}s = "
                f"{mRate:.1f}/s ({mRate / rate:.2f}x baseline rate; good clients are "
                f"{goodShare:.0f}% of the mix); "
                f"latency median {mMedian:.1f} ms ({mMedian / median:.2f}x baseline), "
                f"p99 {mP99:.1f} ms ({mP99 / p99:.2f}x); resumed {mResumed}/{mAttempts}"
            )
            kinds = mixed.byKind()
            say(
                f"mixed phase: {len(mixed.results)} results in {mixed.wall:.2f}s "
                f"({len(mixed.results) / mixed.wall:.1f} connections/s): "
                + ", ".join(
                    f"{kind} {sum(r.ok for r in rs)}/{len(rs)}" for kind, rs in sorted(kinds.items())
                )
                + f"; truncated hellos cut by the server's handshake timeout "
                f"{mixed.cutByServer}/{mixed.silent}"
            )
    burst = soak.phases.get("burst")
    if burst is not None and burst.results:
        times = sorted(r.seconds for r in burst.results)
        served = sum(r.ok for r in burst.results)
        say(
            f"burst: {served}/{len(burst.results)} served in {burst.wall:.2f}s; per client "
            f"median {statistics.median(times):.3f}s, slowest {times[-1]:.3f}s; "
            f"{sum(t >= 1.0 for t in times)} took 1 s or more (a SYN dropped by a full "
            "listen backlog is retried after 1 s)"
        )
    with soak.server.lock:
        lines, outcomes = soak.server.connectionLines, dict(soak.server.outcomes)
        errors = list(soak.server.errorLines)
    made = soak.clients.connections
    say(
        f"server log: {lines:,} connection lines for {made:,} connections made; "
        f"replied {outcomes.get('replied to', 0):,}, handshake failed "
        f"{outcomes.get('handshake failed with', 0):,}; error/traceback lines: {len(errors)}"
    )
    for reason, count in soak.server.reasons().most_common(12):
        say(f"  {count:7,}  {reason}")
    if lines != made:
        soak.failures.append(f"server logged {lines} connections, the script made {made}")
    if errors:
        soak.failures.append(f"server logged {len(errors)} error lines, first: {errors[0]}")

    reference = next((s for s in soak.snapshots if s.label == "after warm-up"), None)
    end = soak.snapshots[-1] if soak.snapshots else None
    if reference is not None and end is not None:
        moved = end.rss - reference.rss
        peak = end.peak
        say(
            f"server descriptors: after warm-up {reference.descriptors}, at the end "
            f"{end.descriptors}: {'equal' if end.descriptors == reference.descriptors else 'DIFFERENT'}"
        )
        say(
            f"server memory (VmRSS): after warm-up {reference.rss:,} KiB, at the end "
            f"{end.rss:,} KiB, moved {moved:+,} KiB ({percent(moved, reference.rss)})"
            + (f"; peak (VmHWM) {peak:,} KiB" if peak else "")
        )
        if end.descriptors != reference.descriptors:
            soak.failures.append(
                f"server descriptors at the end {end.descriptors} != after warm-up "
                f"{reference.descriptors}"
            )
    else:
        soak.failures.append("no post-warm-up figures")
    say(f"server exit status after SIGTERM: {exitStatus}")
    if exitStatus != 0:
        soak.failures.append(f"server exit status {exitStatus} after SIGTERM")
    for note in soak.notes:
        say(f"note: {note}")
    for failure in soak.failures:
        say(f"FAILED: {failure}")
    say(f"result: {'PASS' if not soak.failures else 'FAIL'} ({time.monotonic() - soak.started:.1f}s)")
    return 0 if not soak.failures else 1
