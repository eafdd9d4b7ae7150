"""bench.png and levers.png: the results drawn with matplotlib, when it is installed."""

from .results import median
from .variants import VARIANTS


def plot(results, folder):
    """bench.png: the four measures against N, one line per variant, the range of the repeats
    as error bars; levers.png: step 05 (and 06) beside each lever at the middle N. The paths
    drawn, or [] when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []

    def errors(rows, metric):
        """Median, and how far below and above it the repeats reached."""
        middle = [median(r[metric]) for r in rows]
        low = [m - (r[metric]["min"] if isinstance(r[metric], dict) else m) for m, r in zip(middle, rows)]
        high = [(r[metric]["max"] if isinstance(r[metric], dict) else m) - m for m, r in zip(middle, rows)]
        return middle, [low, high]

    panels = [
        ("connect_s", "connect all N (s)"), ("p99_ms", "p99 latency at steady load (ms)"),
        ("deliveries_per_s", "burst deliveries per second"), ("cpu_us_per_delivery", "server CPU per delivery (µs)"),
    ]
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for axis, (metric, title) in zip(axes.flat, panels):
        for variant in VARIANTS:
            rows = [r for r in results if r["variant"] == variant.key and r[metric] is not None]
            if rows and not variant.lever:
                values, bars = errors(rows, metric)
                axis.errorbar([r["n"] for r in rows], values, yerr=bars, marker="o", capsize=3, label=variant.label)
        axis.set_title(title)
        axis.set_xlabel("clients in the room (N)")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(folder / "bench.png", dpi=110)
    plt.close(figure)
    drawn = [folder / "bench.png"]

    levers = [v.key for v in VARIANTS if v.lever]
    if not any(r["variant"] in levers for r in results):
        return drawn
    n = next(r["n"] for r in results if r["variant"] in levers)
    order = ["05", "05skip", "05freeze", "05uvicorn", "05all", "06x1", "06pubsub"]
    rows = [r for key in order for r in results if r["variant"] == key and r["n"] == n]
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for axis, (metric, title) in zip(axes, [("cpu_us_per_delivery", f"server CPU per delivery at N = {n} (µs)"),
                                            ("p99_ms", f"p99 latency at steady load, N = {n} (ms)")]):
        values, bars = errors(rows, metric)
        axis.barh(range(len(rows)), values, xerr=bars, capsize=3,
                  color=["#888" if r["variant"] in ("05", "06x1") else "#3f51b5" for r in rows])
        axis.set_title(title)
        axis.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), [r["label"] for r in rows])
    axes[0].invert_yaxis()
    figure.tight_layout()
    figure.savefig(folder / "levers.png", dpi=110)
    plt.close(figure)
    return drawn + [folder / "levers.png"]
