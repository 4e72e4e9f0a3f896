# -*- test-case-name: tests.test_workers -*-
"""
How many CPUs this process may use, as C{--workers auto} counts them:
C{sched_getaffinity} sees the CPUs a process may run on, not the cgroup v2
CPU quota that a container (Kubernetes' C{limits: cpu}) or a systemd unit
(C{CPUQuota=}) sets, under which more workers than CPUs would only take
turns.
"""

from __future__ import annotations

import math
import os

#: cgroup v2's CPU limit (C{cpu.max}) of this process's cgroup, under
#: L{CGROUP_ROOT}, as C{/proc/self/cgroup} names it.
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_MEMBERSHIP = "/proc/self/cgroup"


def quotaCPUs(cpuMax: str) -> int | None:
    """
    The CPUs a cgroup v2 C{cpu.max} allows, rounded up (C{"150000 100000"},
    1.5 CPUs, is 2): more workers than that would only take turns, each
    throttled for part of every period.

    @param cpuMax: the file's text, C{"QUOTA PERIOD"} in microseconds.
    @return: C{None} for no quota (C{"max ..."}) or text that is not one.
    """
    fields = cpuMax.split()
    if len(fields) != 2 or not all(f.isdigit() for f in fields):
        return None
    quota, period = (int(f) for f in fields)
    if quota == 0 or period == 0:
        return None
    return max(1, math.ceil(quota / period))


def cgroupCPULimit(
    cgroupRoot: str = CGROUP_ROOT, membership: str = CGROUP_MEMBERSHIP
) -> int | None:
    """
    The CPUs this process's cgroup v2 quota allows: the smallest of its
    cgroup's and its ancestors' (a container's limit, Kubernetes' C{limits:
    cpu}, systemd's C{CPUQuota=}), which C{sched_getaffinity} does not see.
    In a container with its own cgroup namespace the cgroup is C{/}, and
    its C{cpu.max} is at the root of the mount.

    @return: C{None} without cgroup v2, or without a quota.
    """
    try:
        with open(membership) as lines:
            # cgroup v2 is the line "0::/path".
            paths = [line[3:].strip() for line in lines if line.startswith("0::")]
    except OSError:
        paths = []
    parts = [p for p in (paths[0] if paths else "/").split("/") if p not in ("", ".", "..")]
    limits = []
    for depth in range(len(parts) + 1):
        try:
            with open(os.path.join(cgroupRoot, *parts[:depth], "cpu.max")) as cpuMax:
                limit = quotaCPUs(cpuMax.read())
        except (OSError, UnicodeDecodeError):
            continue
        if limit is not None:
            limits.append(limit)
    return min(limits, default=None)
