"""`make bench`: what each way of serving the chat costs, measured side by side in one run.

Each variant is served on loopback and driven by the same load clients:

    04 sync        steps/04-groups, daphne, a sync consumer, the in-memory layer
    05 async       steps/05-async, daphne, an async consumer, the in-memory layer
    06 Redis x1    steps/06-scale-out, one daphne on a Redis channel layer
    06 Redis x2    the same with two daphne processes, the clients split between them
    07 history     steps/07-history, daphne, in-memory like 05, and every room message
                   stored in SQLite before it is sent: 07 beside 05 is what the write costs
    bare           the same room protocol on the bare websockets library (tutorial/bench/bare_chat.py)

and the levers of the performance page's "making it faster", each a step with one change,
measured at N = 100 only:

    05 skip        05 with tutorial/bench/levers.py's SkipTheTrip: chat.message events skip the
                   thread trip that closes stale database connections
    05 freeze      05 with gc.freeze() once the application is loaded
    05 uvicorn     05 served by uvicorn instead of daphne
    06 pubsub      06 (one process) on channels_redis's RedisPubSubChannelLayer
    05 all         05 with the first three together

For N clients in one room it measures: the time for all N to connect (each
has its hello); the latency from send to each delivery, p50 and p99, at a
steady load well below saturation (the same deliveries per second for all);
deliveries per second in a burst from several senders; the servers' CPU time
(daphne or uvicorn, and redis-server, from /proc) per delivered message in that burst;
and lost and duplicated messages, by message id at every member. For a variant with a database, the rows stored
afterwards, to compare with the messages sent. The bursts stay within the channel
layer's capacity (1000 a channel), as the steps' own checks do.

Method (issue 11; what each figure is and why it can be trusted):

- Repeats interleave. A run makes R repeats (--repeats, 3 by default; the tiny run inside
  `make test` makes 1). Each repeat measures every variant at every N once, and the variant
  first repeat goes in the table's order, each later one in a shuffled order (seeded by the
  repeat's number; results.json keeps the orders), so a slow minute on the machine falls on
  different variants in different repeats, and no variant always follows the same one. Each
  server is measured at N = 100 first, on a fresh process, as the levers are. Each
  figure in results.json is {median, min, max} over the repeats; a ratio between two variants is
  computed pair by pair within a repeat (both were measured minutes apart), then its median taken.
- The machine's load is recorded beside each figure. Before and after each phase (the steady
  load, the bursts) the `cpu` line of /proc/stat is read; from the deltas, busy = 1 - (idle +
  iowait) / total is the fraction of all cores that were working, by anyone. Beside it, the
  servers' own CPU (from /proc/<pid>/stat) and the load client's: what is left over is other
  work on the machine, and a row measured while it was large says so.
- The load client must not be the bottleneck. The load comes from K client processes
  (tutorial/bench/client.py, --clients: half the cores, at least 2), the room's members split
  between them;
  each reports its own CPU time, and a row whose busiest client used over 70% of a core during
  the bursts is marked "client-bound" (raise --clients). On a machine with few cores the
  clients and the servers share them: a row during whose bursts over 85% of all cores were busy
  is marked "machine-bound", since its figures are then the machine's limit.
- Latency percentiles come from thousands of samples: the steady phase times every delivery of
  1,000 deliveries a second for 4 s, 4,000 at every N, and p50 and p99 are
  taken over all of them. In a big room they come from fewer messages (40 at N = 100), each
  delivered to every member, so one pause of the server (a garbage collection) moves the p99:
  the gc.freeze() lever shows how much.
- Connecting measures the server, not the kernel's retry timer: every server listens with a
  backlog of 1024 (daphne's default is 50, and a join whose SYN finds the queue full is retried
  a second later), and the kernel's ListenDrops counter is read around every join.
- Loss and duplication are counted by identity. Every message carries a unique id (phase,
  sender, number); each member records the ids it received. Per member, lost = ids sent to the
  room that it never got; duplicated = ids it got more than once. A total would let a duplicate
  hide a loss; identity does not.

    python -m tutorial bench                         # N = 10, 100, 500; writes docs/assets/bench/
    python -m tutorial bench --tiny --out /tmp/b     # a few seconds, to see that it still runs
    python -m tutorial bench --sizes 10 --repeats 2  # quicker, while working on the benchmark
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from ..core import services
from ..core.steps import ROOT
from .measure import Clients, measure
from .plot import plot
from .report import CLIENT_BOUND, MACHINE_BOUND, machine, number, percent, report
from .results import combine
from .servers import serving, stored_rows
from .variants import VARIANTS, Plan, available, in_order, shuffled, sizes_of

OUT = ROOT / "docs" / "assets" / "bench"


def run_all(plan, variants, logs, repeats, clients):
    redis = services.start_redis() if any(v.redis for v in variants) else None
    pool = Clients(clients)
    runs, orders = [], []
    try:
        for repeat in range(repeats):
            order = shuffled(variants, repeat)
            orders.append([variant.key for variant in order])
            for variant in order:
                with serving(variant, redis, logs, plan.backlog) as (ports, pids, database, ca):
                    for n in in_order(sizes_of(variant, plan)):
                        # A room of its own for each N and repeat: with a database, every join's
                        # history query finds the room empty, as it did for the first size.
                        room = f"bench{variant.key}n{n}r{repeat}"
                        result = measure(variant, ports, pids, n, plan, room, pool, ca)
                        result["repeat"] = repeat
                        if database:
                            result["stored"] = stored_rows(database, room)
                        runs.append(result)
                        print(f"[{repeat + 1}/{repeats}] {variant.label:28} N={n:<4} "
                              f"connect {result['connect_s']:6.2f} s  "
                              f"p50 {number(result['p50_ms']):>6} ms  p99 {number(result['p99_ms']):>6} ms  "
                              f"burst {number(result['deliveries_per_s'], 0):>7}/s  "
                              f"cpu {number(result['cpu_us_per_delivery']):>6} µs  lost {result['lost']} "
                              f"dup {result['duplicated']}  busy {percent(result['busy_burst'])} "
                              f"client {number(result['client_cores_burst'], 2)}"
                              + (f"  stored {result['stored']} of {result['sent']}" if database else ""),
                              flush=True)
    finally:
        pool.close()
        if redis:
            redis.stop()
    return runs, orders


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,500", help="clients in the room, comma-separated")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where results go (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="times each variant is measured, interleaved with the others (default 3; --tiny: 1)")
    parser.add_argument("--clients", type=int, default=max(2, (os.cpu_count() or 2) // 2),
                        help="load-client processes sharing the room's members (default: half the "
                             "cores, at least 2)")
    parser.add_argument("--variants", help="only these, comma-separated (default: all), e.g. 05,05freeze")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and loads: only shows that it runs")
    args = parser.parse_args(argv)
    plan = Plan(sizes=[int(size) for size in args.sizes.split(",")])
    if args.tiny:
        plan = Plan(sizes=[3], steady_rate=30, steady_seconds=0.3, burst_deliveries=60, senders=2, silence=2,
                    most_bursts=2)
    if args.repeats is None:
        args.repeats = 1 if args.tiny else 3
    variants = available(VARIANTS, say=print)
    if args.variants:
        variants = [v for v in variants if v.key in args.variants.split(",")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tutorial-bench-") as logs:
        runs, orders = run_all(plan, variants, logs, args.repeats, args.clients)
    results = combine(runs, variants, plan)
    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    # "results": one row per variant and N (what the docs' figures name); "runs": every
    # measurement, one per repeat, so that ratios can be taken within a repeat.
    (args.out / "results.json").write_text(json.dumps({
        "machine": info, "plan": plan.__dict__, "repeats": args.repeats, "clients": args.clients,
        "marks": {"client_bound_cores": CLIENT_BOUND, "machine_bound_busy": MACHINE_BOUND},
        "orders": orders, "results": results, "runs": runs}, indent=1) + "\n")
    (args.out / "results.md").write_text(report(results, plan, info, time.monotonic() - started, runs, args.clients, args.repeats))
    drawn = plot(results, args.out)
    print(f"\nwrote {args.out / 'results.md'}, {args.out / 'results.json'}"
          + (f" and {', '.join(map(str, drawn))}" if drawn
             else " (no plot: matplotlib is not installed; `make bench` installs it)"))
    return 0

