"""
The chart of a run: each server's ratio to nginx per column, as a PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.harness.servers import Server
from bench.harness.settings import BOTTLENECK_MARKS, Options


def drawChart(
    path: Path,
    servers: list[Server],
    medians: dict[str, dict[str, dict[str, Any]]],
    relative: dict[str, dict[str, float | None]],
    options: Options,
) -> str:
    """
    A bar chart (PNG) of each server's ratio to nginx per column, with
    nginx as the line at 1.0. Hatched bars and a † in a column's label mark
    medians where the load generator, not the server, was the bottleneck.
    Returns a note when it cannot be drawn.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
        from matplotlib.patches import Patch
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no chart"
    others = [s for s in servers if not s.skipped and s.name != "nginx" and s.name in relative]
    if not others or "nginx" not in relative:
        return "no chart: it needs nginx and at least one other server"
    columns = options.columns
    figure, axes = pyplot.subplots(figsize=(max(8, 1.6 * len(columns) + 3), 5), dpi=120)
    width = 0.8 / len(others)
    handles: list[Any] = []
    for index, server in enumerate(others):
        values = [relative[server.name][column.key] or 0.0 for column in columns]
        positions = [c + (index - (len(others) - 1) / 2) * width for c in range(len(columns))]
        bars = axes.bar(positions, values, width, color=f"C{index}")
        handles.append(Patch(facecolor=f"C{index}", label=server.title))
        for bar, column in zip(bars, columns, strict=True):
            if medians[server.name][column.key].get("bottleneck", "server") != "server":
                bar.set_hatch("//")
        axes.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=2)
    line = axes.axhline(1.0, color="black", linewidth=1.2, linestyle="--")
    labels = []
    for column in columns:
        label = column.title
        if column.kind == "memory":
            label += "\n(lower is better)"
        elif (mark := BOTTLENECK_MARKS[medians["nginx"][column.key].get("bottleneck", "server")]):
            label += f"\n(nginx not saturated{mark})"
        labels.append(label)
    axes.set_xticks(range(len(columns)), labels, fontsize=8)
    axes.set_ylabel("ratio to nginx (same run)")
    axes.set_title(
        "Handshakes per server-CPU-second and KiB per connection, as a ratio to nginx"
        "\n(hatched: the server's core was not saturated, see the report's †, ‡, §)",
        fontsize=10,
    )
    line.set_label("nginx = 1.0")
    handles += [
        line,
        Patch(facecolor="white", edgecolor="black", hatch="//",
              label="server not saturated"),
    ]
    axes.legend(handles=handles, fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
    return ""
