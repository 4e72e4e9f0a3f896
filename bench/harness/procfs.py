"""
What a server uses, read from C{/proc}: the CPU time, memory and
descriptors of a process or of its whole tree (nginx's workers,
tlsreply's), and each core's busy and stolen time.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path


def processTree(root: int) -> list[int]:
    """
    C{root} and all its descendants (nginx's worker, tlsreply's workers),
    from the parent links in C{/proc/*/stat}.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain anything.
        fields = text[text.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


_TICK = os.sysconf("SC_CLK_TCK")


def processCPU(pid: int) -> float:
    """
    CPU seconds used by one process, all its threads: the nanosecond
    counters of C{/proc/PID/task/*/schedstat} where the kernel has them,
    else C{utime + stime} from C{/proc/PID/stat} (clock ticks, 10 ms).
    """
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/schedstat") as file:
                total += int(file.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def treeCPU(root: int) -> float:
    """
    CPU seconds of a server: the sum over its process and descendants.
    """
    return sum(processCPU(pid) for pid in processTree(root))


@dataclass(frozen=True)
class CoreTimes:
    """
    One core's time from C{/proc/stat}, in clock ticks.
    """

    busy: int
    steal: int
    total: int


def coreTimes() -> dict[int, CoreTimes]:
    """
    Busy, stolen (by the hypervisor) and total time of every core: over a
    window, they tell whether other processes shared the server's core.
    """
    cores: dict[int, CoreTimes] = {}
    with suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            # user nice system idle iowait irq softirq steal (guest is in user)
            ticks = [int(value) for value in values[:8]]
            total = sum(ticks)
            steal = ticks[7] if len(ticks) > 7 else 0
            cores[int(name[3:])] = CoreTimes(total - ticks[3] - ticks[4] - steal, steal, total)
    return cores



def processMemory(pid: int) -> dict[str, int]:
    """
    C{VmRSS} (resident now) and C{VmHWM} (the peak) of one process, in KiB.

    @raise OSError: if the process is gone.
    """
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    return figures


def processDescriptors(pid: int) -> int:
    """
    Open descriptors of one process.

    @raise OSError: if the process is gone.
    """
    return len(os.listdir(f"/proc/{pid}/fd"))


def treeRSS(root: int) -> int:
    """
    Resident memory of a server in KiB, summed over its processes (shared
    pages count once per process, which cancels out in a difference).
    """
    total = 0
    for pid in processTree(root):
        with suppress(OSError):
            total += processMemory(pid).get("VmRSS", 0)
    return total


def treePeakRSS(root: int) -> int:
    """
    The peak resident memory of a server in KiB (C{VmHWM}, each process's
    highest RSS so far), summed over its processes.
    """
    total = 0
    for pid in processTree(root):
        with suppress(OSError):
            total += processMemory(pid).get("VmHWM", 0)
    return total


def treeDescriptors(root: int) -> int:
    """
    Open descriptors of a server, summed over its processes.
    """
    total = 0
    for pid in processTree(root):
        with suppress(OSError):
            total += processDescriptors(pid)
    return total
