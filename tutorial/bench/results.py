"""The rows of results.json: each variant and N, its repeats combined into {median, min, max}."""

import statistics

from .variants import sizes_of

# What a row keeps of its repeats: settings stay as they are, counts add up (lost, duplicated,
# rows stored: one over all repeats is as bad as one in each), and measurements become
# {median, min, max}, which tutorial/site/figures.py reads as the median.
SETTINGS = {"variant", "label", "n", "steady_messages", "steady_rate", "burst_messages", "burst_senders"}
COUNTS = {"lost", "duplicated", "expected", "stored", "sent", "listen_drops"}


def spread(values):
    """{median, min, max} of a figure's repeats, and "values": each repeat's, in repeat order, None
    where a repeat had none, so that tutorial/site/figures.py can pair two figures repeat by repeat."""
    known = [value for value in values if value is not None]
    if not known:
        return None
    return {"median": statistics.median(known), "min": min(known), "max": max(known), "values": list(values)}


def median(value):
    """A figure as one number: the median of a {median, min, max}, or the value itself."""
    return value["median"] if isinstance(value, dict) else value


def combine(runs, variants, plan):
    """One row per variant and N, from its runs (one a repeat), in the table's order."""
    rows = []
    for variant in variants:
        for n in sizes_of(variant, plan):
            mine = [run for run in runs if run["variant"] == variant.key and run["n"] == n]
            if not mine:
                continue
            row = {"repeats": len(mine)}
            for key in mine[0]:
                if key == "repeat":
                    continue
                if key in SETTINGS:
                    row[key] = mine[0][key]
                elif key in COUNTS:
                    row[key] = sum(run[key] for run in mine)
                else:
                    row[key] = spread([run[key] for run in mine])
            rows.append(row)
    return rows
