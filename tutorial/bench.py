"""`make bench`: what each way of serving the chat costs, measured side by side in one run.

Each variant is served on loopback and driven by this one load client:

    04 sync        steps/04-groups, daphne, a sync consumer, the in-memory layer
    05 async       steps/05-async, daphne, an async consumer, the in-memory layer
    06 Redis x1    steps/06-scale-out, one daphne on a Redis channel layer
    06 Redis x2    the same with two daphne processes, the clients split between them
    07 history     steps/07-history, daphne, in-memory like 05, and every room message
                   stored in SQLite before it is sent: 07 beside 05 is what the write costs
    bare           the same room protocol on the bare websockets library (tutorial/bare_chat.py)

For N clients in one room it measures: the time for all N to connect (each
has its hello); the latency from send to each delivery, p50 and p99, at a
steady load well below saturation (the same deliveries per second for all);
deliveries per second in a burst from several senders; the servers' CPU time
(daphne and redis-server, from /proc) per delivered message in that burst;
and lost and duplicated messages, by message id at every member. For a variant with a database, the rows stored
afterwards, to compare with the messages sent. The bursts stay within the channel
layer's capacity (1000 a channel), as the steps' own checks do.

Method (issue 11; what each figure is and why it can be trusted):

- Repeats interleave. A run makes R repeats (--repeats, 3 by default; the tiny run inside
  `make test` makes 1). Each repeat measures every variant at every N once, and the variant
  order is rotated by one each repeat (04 05 06x1 ... then 05 06x1 ... 04), so a slow minute on
  the machine falls on different variants in different repeats instead of on one of them. Each
  figure in results.json is {median, min, max} over the repeats; a ratio between two variants is
  computed pair by pair within a repeat (both were measured minutes apart), then its median taken.
- The machine's load is recorded beside each figure. Before and after each phase (the steady
  load, the bursts) the `cpu` line of /proc/stat is read; from the deltas, busy = 1 - (idle +
  iowait) / total is the fraction of all cores that were working, by anyone. Beside it, the
  servers' own CPU (from /proc/<pid>/stat) and the load client's: what is left over is other
  work on the machine, and a row measured while it was large says so.
- The load client must not be the bottleneck. The load comes from K client processes (the room's
  members split between them); each reports its own CPU time, and a phase where a client used
  over 70% of a core is marked "client-bound". K is fixed per run (--clients), and the check
  says when to raise it; on a 2-core machine, a row whose busy fraction is near 1 is marked
  "machine-bound" instead.
- Latency percentiles come from thousands of samples: the steady phase runs until every variant
  has at least a few thousand timed deliveries (p99 from 40 sends would be decided by one garbage
  collection); p50 and p99 are taken over all of them.
- Loss and duplication are counted by identity. Every message carries a unique id (phase,
  sender, number); each member records the ids it received. Per member, lost = ids sent to the
  room that it never got; duplicated = ids it got more than once. A total would let a duplicate
  hide a loss; identity does not.

    python -m tutorial.bench                         # N = 10, 100, 500; writes docs/assets/bench/
    python -m tutorial.bench --tiny --out /tmp/b     # a few seconds, to see that it still runs
    python -m tutorial.bench --sizes 10 --repeats 2  # quicker, while working on the benchmark
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from . import services
from .steps import ROOT, find
from .wire import free_port, stop, wait_for_port

OUT = ROOT / "docs" / "assets" / "bench"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Variant:
    key: str
    label: str
    step: str | None  # None: the bare websockets server
    processes: int = 1
    redis: bool = False
    database: bool = False  # a fresh, migrated SQLite file for each run (steps 07 on)


VARIANTS = [
    Variant("04", "04 sync, in-memory", "04"),
    Variant("05", "05 async, in-memory", "05"),
    Variant("06x1", "06 Redis, 1 process", "06", redis=True),
    Variant("06x2", "06 Redis, 2 processes", "06", processes=2, redis=True),
    Variant("07", "07 history, in-memory", "07", database=True),
    Variant("bare", "bare websockets (ceiling)", None),
]


@dataclass
class Plan:
    sizes: list
    steady_rate: int = 1000  # deliveries per second, for every N: the steady load
    steady_seconds: float = 4.0
    burst_deliveries: int = 20000  # about this many deliveries a burst...
    burst_most: int = 1000  # ...from at most this many messages (the layer's capacity)
    senders: int = 5
    silence: float = 3.0  # seconds without a delivery after which the rest count as lost
    enough_cpu: float = 0.5  # server CPU seconds that make a count precise enough...
    most_bursts: int = 10  # ...or this many bursts, whichever comes first


# ---------------------------------------------------------------- the servers


def cpu_seconds(pid):
    """User + system CPU time of a process, all its threads included, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime and stime, fields 14 and 15


def machine_ticks():
    """(all ticks, idle ticks) of every core together, from the `cpu` line of /proc/stat.

    The fields are user, nice, system, idle, iowait, irq, softirq, steal (guest time is already
    inside user). Waiting for a disk counts as idle here: the core could have run something else.
    """
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4]


class Load:
    """How busy the machine and this load client were between start() and stop(), as fractions.

    `machine`: of all cores, 1.0 is every core working (by anyone: the servers, the client,
    someone else's test suite). `client`: this process's CPU, in cores; near 1.0 means the load
    client, not the server, set the pace.
    """

    def start(self):
        self.ticks, self.cpu, self.wall = machine_ticks(), time.process_time(), time.perf_counter()
        return self

    def stop(self):
        total, idle = (after - before for after, before in zip(machine_ticks(), self.ticks))
        wall = max(time.perf_counter() - self.wall, 1e-9)
        # /proc/stat counts in 10 ms ticks: a phase shorter than a few ticks has no busy fraction.
        self.machine = 1 - idle / total if total >= 10 else None
        self.client = (time.process_time() - self.cpu) / wall
        return self


def fresh_database(variant, env, logs):
    """A new SQLite file with the step's tables, so that no run reads rows of an earlier one."""
    path = Path(logs) / f"{variant.key}.sqlite3"
    for old in Path(logs).glob(f"{path.name}*"):  # the file, and its -wal and -shm
        old.unlink()
    env["SQLITE_PATH"] = str(path)
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
                          cwd=find(variant.step).folder, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"manage.py migrate failed for {variant.label}:\n{(done.stdout + done.stderr)[-2000:]}")
    return path


def stored_rows(database, room):
    """How many messages the room has in the database: one row for each message it was sent."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute("SELECT COUNT(*) FROM chat_message WHERE room = ?", [room]).fetchone()[0]


@contextlib.contextmanager
def serving(variant, redis, logs):
    """Start the variant's server processes; yield (ports, pids whose CPU counts, database or None);
    stop them."""
    processes, ports = [], []
    (Path(logs) / "bench_settings.py").write_text("from mysite.settings import *  # noqa\n"
                                                  "CHAT_FRAME_BUDGET = None\n")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "SQLITE_PATH")}
    if variant.step is None:
        env["PYTHONPATH"] = str(ROOT)
    else:
        # The step's own settings, with the per-connection frame budget lifted:
        # the bursts measure the server's fan-out, not the flood control.
        env.update(DJANGO_SETTINGS_MODULE="bench_settings", PYTHONPATH=f"{logs}:{find(variant.step).folder}")
        if variant.redis:
            env["REDIS_URL"] = redis.url
    database = fresh_database(variant, env, logs) if variant.database else None
    try:
        for index in range(variant.processes):
            port = free_port()
            if variant.step is None:
                command, cwd = [sys.executable, "-m", "tutorial.bare_chat", str(port)], ROOT
            else:
                # daphne drops a handshake that takes over 5 s (--websocket_connect_timeout).
                # On a busy machine, 500 joins at once can take longer; the benchmark waits
                # as long as its client does (60 s) and reports the time instead of dying.
                command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                           "--websocket_connect_timeout", "60", "mysite.asgi:application"]
                cwd = find(variant.step).folder
            log_path = Path(logs) / f"{variant.key}-{index}.log"
            with open(log_path, "w") as log:
                process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
            processes.append(process)
            if not wait_for_port(port, process):
                raise RuntimeError(f"the server did not start:\n{Path(log_path).read_text()[-2000:]}")
            ports.append(port)
        pids = [process.pid for process in processes] + ([redis.process.pid] if variant.redis else [])
        yield ports, pids, database
    finally:
        for process in processes:
            stop(process)


# ---------------------------------------------------------------- the load client


@dataclass
class Counts:
    latencies: list = field(default_factory=list)
    warm: int = 0
    steady: int = 0  # first arrivals only: a duplicate does not count towards what is expected
    burst: int = 0
    duplicated: int = 0
    last_burst: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def read(ws, counts, seen):
    """Record what one client receives, by identity: `seen` is this member's set of message ids.

    A message's text starts with its id ("steady 17 <send time>", "burst 2.1.40"): the phase
    and the numbers, unique in the run. An id seen before is a duplicate, and is counted as one.
    """
    with contextlib.suppress(Exception):
        async for frame in ws:
            now = time.perf_counter()
            text = json.loads(frame).get("message", "")
            words = text.split()
            if words[:1] in (["steady"], ["burst"]):
                identity = " ".join(words[:2])
                if identity in seen:
                    counts.duplicated += 1
                    continue
                seen.add(identity)
            if words[:1] == ["steady"]:
                counts.latencies.append(now - float(words[2]))
                counts.steady += 1
            elif words[:1] == ["burst"]:
                counts.burst += 1
                counts.last_burst = now
            else:
                counts.warm += 1
            counts.changed.set()


def missing(members, sent):
    """Deliveries expected and never received: for each member, the ids sent that it did not get."""
    return sum(len(sent - seen) for seen in members)


async def wait_for(counts, attribute, expected, silence):
    """Wait until `expected` have arrived, or until none has for `silence` seconds."""
    while getattr(counts, attribute) < expected:
        counts.changed.clear()
        try:
            await asyncio.wait_for(counts.changed.wait(), silence)
        except asyncio.TimeoutError:
            return


async def measure(variant, ports, pids, n, plan, room):
    import websockets

    async def join(index):
        port = ports[index % len(ports)]
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/chat/{room}/", origin=f"http://127.0.0.1:{port}",
                                      open_timeout=60, compression=None, ping_interval=None)
        json.loads(await asyncio.wait_for(ws.recv(), 60))  # the hello: this client is in the room now
        return ws

    started = time.perf_counter()
    clients = await asyncio.gather(*(join(index) for index in range(n)))
    connect_seconds = time.perf_counter() - started
    counts = Counts()
    members = [set() for _ in clients]  # the ids each member received
    readers = [asyncio.create_task(read(ws, counts, seen)) for ws, seen in zip(clients, members)]
    try:
        # One message first, not measured: the first of anything is slow (imports, caches).
        await clients[0].send(json.dumps({"message": "warm up"}))
        await wait_for(counts, "warm", n, plan.silence)
        # Steady load: the same deliveries per second at every N, one sender at a time.
        per_second = max(1.0, plan.steady_rate / n)
        messages = max(1, round(per_second * plan.steady_seconds))
        steady_load = Load().start()
        start = time.perf_counter()
        for number in range(messages):
            await asyncio.sleep(max(0.0, start + number / per_second - time.perf_counter()))
            sender = clients[number % n]
            await sender.send(json.dumps({"message": f"steady {number} {time.perf_counter():.9f}"}))
        await wait_for(counts, "steady", messages * n, plan.silence)
        steady_load.stop()
        sent = {f"steady {number}" for number in range(messages)}
        latencies = sorted(counts.latencies)

        # Bursts: several senders at once, as fast as they can. /proc counts CPU time in
        # ticks (10 ms), so a fast server gets more bursts, until its CPU time is enough to count.
        senders = min(plan.senders, n)
        each = max(1, min(plan.burst_most, max(plan.burst_deliveries // n, senders)) // senders)
        expected = cpu = burst_seconds = 0
        burst_load = Load().start()
        for repeat in range(plan.most_bursts):
            expected += senders * each * n
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            start = time.perf_counter()

            sent |= {f"burst {repeat}.{index}.{number}" for index in range(senders) for number in range(each)}

            async def burst(index, ws):
                for number in range(each):
                    await ws.send(json.dumps({"message": f"burst {repeat}.{index}.{number}"}))

            await asyncio.gather(*(burst(index, ws) for index, ws in enumerate(clients[:senders])))
            await wait_for(counts, "burst", expected, plan.silence)
            cpu += sum(cpu_seconds(pid) for pid in pids) - cpu_before
            burst_seconds += max(counts.last_burst - start, 1e-9)
            if cpu >= plan.enough_cpu or counts.burst < expected:
                break
        burst_load.stop()
        lost = missing(members, sent)
    finally:
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.sleep(0.3)  # the servers' disconnect()s run after the close handshakes
    return {
        "variant": variant.key, "label": variant.label, "n": n,
        "connect_s": connect_seconds,
        "steady_messages": messages, "steady_rate": messages * n / plan.steady_seconds,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None,
        "burst_messages": senders * each, "burst_senders": senders, "bursts": repeat + 1,
        "deliveries_per_s": counts.burst / burst_seconds,
        "cpu_us_per_delivery": 1e6 * cpu / counts.burst if counts.burst else None,
        # The same CPU time per message posted: a delivery's cost times N, plus what a
        # message costs once whatever the room's size (from step 07, its INSERT).
        "cpu_us_per_message": 1e6 * cpu / ((repeat + 1) * senders * each),
        "sent": 1 + messages + (repeat + 1) * senders * each,  # warm-up, steady and burst messages
        # By identity (see read()): a member that got one message twice and another never
        # shows 1 lost and 1 duplicated, not 0.
        "lost": lost,
        "duplicated": counts.duplicated,
        "expected": messages * n + expected,
        # How busy the machine was (fraction of all its cores) and this load client (in cores)
        # during each phase: a figure measured on a busy machine, or with the client near a
        # full core, says more about them than about the server.
        "busy_steady": steady_load.machine, "busy_burst": burst_load.machine,
        "client_cores_steady": steady_load.client, "client_cores_burst": burst_load.client,
    }


# ---------------------------------------------------------------- the report


def machine():
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ["Django", "channels", "daphne", "channels-redis", "redis", "websockets", "Twisted"]:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    redis_version = "none"
    if services.redis_binary():
        done = subprocess.run([services.redis_binary(), "--version"], capture_output=True, text=True)
        redis_version = done.stdout.split()[2].removeprefix("v=") if done.returncode == 0 else "?"
    versions["redis-server"] = redis_version
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "versions": versions}


def number(value, digits=1):
    return "n/a" if value is None else f"{value:,.{digits}f}"


def percent(fraction):
    return "n/a" if fraction is None else f"{100 * fraction:.0f}%"


CLIENT_BOUND = 0.7  # cores of the load client's own CPU, above which it set the pace
MACHINE_BOUND = 0.9  # fraction of all cores busy, above which the machine did


def bound(row):
    """What limited a row's bursts, when it was not the server: words for the table, or ""."""
    client, busy = median(row["client_cores_burst"]), median(row["busy_burst"])
    if client is not None and client > CLIENT_BOUND:
        return " (client-bound)"
    if busy is not None and busy > MACHINE_BOUND:
        return " (machine-bound)"
    return ""


def ratio(runs, key_a, key_b, n, metric):
    """A / B pair by pair within each repeat (both measured minutes apart), as {median, min, max}."""
    pairs = []
    for repeat in sorted({run["repeat"] for run in runs}):
        a = next((r for r in runs if (r["variant"], r["n"], r["repeat"]) == (key_a, n, repeat)), None)
        b = next((r for r in runs if (r["variant"], r["n"], r["repeat"]) == (key_b, n, repeat)), None)
        if a and b and a[metric] and b[metric]:
            pairs.append(a[metric] / b[metric])
    return spread(pairs)


def ranged(value, digits=1, unit=""):
    """A median with its range when there is one: "1.85x (1.58-2.11)"."""
    if value is None or not isinstance(value, dict):
        return number(value, digits) + (unit if value is not None else "")
    text = f"{number(value['median'], digits)}{unit}"
    if len(value["values"]) > 1:
        text += f" ({number(value['min'], digits)}-{number(value['max'], digits)})"
    return text


def report(results, plan, info, seconds, runs):
    lines = [
        "| variant | N | connect all N (s) | p50 (ms) | p99 (ms) | burst deliveries/s | "
        "server CPU per delivery (µs) | lost, duplicated | machine busy, client cores (burst) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['n']} | {ranged(r['connect_s'], 2)} | {ranged(r['p50_ms'])} | "
            f"{ranged(r['p99_ms'])} | {ranged(r['deliveries_per_s'], 0)} | {ranged(r['cpu_us_per_delivery'])} | "
            f"{r['lost']}, {r['duplicated']} of {r['expected']:,} | "
            f"{percent(median(r['busy_burst']))}, {number(median(r['client_cores_burst']), 2)}{bound(r)} |"
        )
    middle = 100 if 100 in plan.sizes else plan.sizes[len(plan.sizes) // 2]
    checks = [
        ("05 async vs 04 sync, burst deliveries/s", ratio(runs, "05", "04", middle, "deliveries_per_s"), "x"),
        ("05 async vs bare, CPU per delivery", ratio(runs, "05", "bare", middle, "cpu_us_per_delivery"), "x"),
        ("06 Redis, 2 processes vs 1, burst deliveries/s",
         ratio(runs, "06x2", "06x1", middle, "deliveries_per_s"), "x"),
        ("07 history vs 05, burst deliveries/s", ratio(runs, "07", "05", middle, "deliveries_per_s"), "x"),
        ("07 history vs 05, CPU per delivery", ratio(runs, "07", "05", middle, "cpu_us_per_delivery"), "x"),
    ]
    lines += ["", f"At N = {middle}:", ""]
    lines += [f"- {name}: {ranged(value, 2, unit)}" for name, value, unit in checks]
    p99 = {r["variant"]: median(r["p99_ms"]) for r in results if r["n"] == middle}
    lines.append("- p99 latency at the steady load: " + ", ".join(
        f"{variant.label} {number(p99.get(variant.key))} ms" for variant in VARIANTS if variant.key in p99))
    lines.append(f"- lost, all variants and sizes: {sum(r['lost'] for r in results)}, duplicated "
                 f"{sum(r['duplicated'] for r in results)}, "
                 f"of {sum(r['expected'] for r in results):,} deliveries")
    stored = [r for r in results if "stored" in r]
    if stored:
        lines.append(f"- rows stored, all sizes: {sum(r['stored'] for r in stored):,} "
                     f"of {sum(r['sent'] for r in stored):,} messages sent")
    lines += [
        "",
        f"Steady load: {plan.steady_rate} deliveries per second for every N ({plan.steady_seconds:g} s, one "
        f"sender at a time), after one unmeasured message. Bursts: {plan.senders} senders at once, about "
        f"{plan.burst_deliveries:,} deliveries from at most {plan.burst_most} messages (the channel layer's "
        f"capacity), repeated (at most {plan.most_bursts} times) until the servers have used "
        f"{plan.enough_cpu:g} s of CPU, so that /proc's 10 ms ticks can count it. Server CPU: the daphne "
        "processes (and redis-server for 06) during the bursts; 07's SQLite runs inside daphne, so its "
        "CPU is counted too. Lost and duplicated: by message id, at every member. Machine busy: the "
        "fraction of all cores working during the bursts, from /proc/stat; client cores: the load "
        "client's own CPU over the same time. One load client (one Python process) drives every variant, so the ceiling's "
        "deliveries per second are as much the client's limit as the server's.",
        "",
        f"Machine: {info['cpus']} CPUs, {info['cpu_model']}; {info['system']}; Python {info['python']}; "
        + ", ".join(f"{name} {version}" for name, version in info["versions"].items())
        + f". The whole run took {seconds:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def plot(results, path):
    """The four measures against N, one line per variant; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [
        ("connect_s", "connect all N (s)"), ("p99_ms", "p99 latency at steady load (ms)"),
        ("deliveries_per_s", "burst deliveries per second"), ("cpu_us_per_delivery", "server CPU per delivery (µs)"),
    ]
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for axis, (metric, title) in zip(axes.flat, panels):
        for variant in VARIANTS:
            points = [(r["n"], median(r[metric])) for r in results
                      if r["variant"] == variant.key and r[metric] is not None]
            if points:
                axis.plot(*zip(*points), marker="o", label=variant.label)
        axis.set_title(title)
        axis.set_xlabel("clients in the room (N)")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# ---------------------------------------------------------------- the run


def rotated(variants, repeat):
    """The variants in the order repeat number `repeat` measures them: shifted by one each time,
    so that no variant is always the one measured first, or right after the heaviest."""
    shift = repeat % len(variants)
    return variants[shift:] + variants[:shift]


# What a row keeps of its repeats: settings stay as they are, counts add up (lost, duplicated,
# rows stored: one over all repeats is as bad as one in each), and measurements become
# {median, min, max}, which docs_bench reads as the median.
SETTINGS = {"variant", "label", "n", "steady_messages", "steady_rate", "burst_messages", "burst_senders"}
COUNTS = {"lost", "duplicated", "expected", "stored", "sent"}


def spread(values):
    values = [value for value in values if value is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def median(value):
    """A figure as one number: the median of a {median, min, max}, or the value itself."""
    return value["median"] if isinstance(value, dict) else value


def combine(runs, variants, sizes):
    """One row per variant and N, from its runs (one a repeat), in the table's order."""
    rows = []
    for variant in variants:
        for n in sizes:
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


async def run_all(plan, variants, logs, repeats=1):
    redis = services.start_redis() if any(v.redis for v in variants) else None
    runs = []
    try:
        for repeat in range(repeats):
            for variant in rotated(variants, repeat):
                with serving(variant, redis, logs) as (ports, pids, database):
                    for n in plan.sizes:
                        # A room of its own for each N and repeat: with a database, every join's
                        # history query finds the room empty, as it did for the first size.
                        room = f"bench{variant.key}n{n}r{repeat}"
                        result = await measure(variant, ports, pids, n, plan, room)
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
        if redis:
            redis.stop()
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,500", help="clients in the room, comma-separated")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where results go (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="times each variant is measured, interleaved with the others (default 3; --tiny: 1)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and loads: only shows that it runs")
    args = parser.parse_args(argv)
    plan = Plan(sizes=[int(size) for size in args.sizes.split(",")])
    if args.tiny:
        plan = Plan(sizes=[3], steady_rate=30, steady_seconds=0.3, burst_deliveries=60, senders=2, silence=2,
                    most_bursts=2)
    if args.repeats is None:
        args.repeats = 1 if args.tiny else 3
    variants = VARIANTS
    if not services.redis_binary():
        print(f"No redis-server, so no Redis variants: {services.HOW_TO_GET_REDIS}.")
        variants = [v for v in VARIANTS if not v.redis]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tutorial-bench-") as logs:
        runs = asyncio.run(run_all(plan, variants, logs, args.repeats))
    results = combine(runs, variants, plan.sizes)
    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    # "results": one row per variant and N (what the docs' figures name); "runs": every
    # measurement, one per repeat, so that ratios can be taken within a repeat.
    (args.out / "results.json").write_text(json.dumps({"machine": info, "plan": plan.__dict__,
                                                       "repeats": args.repeats, "results": results,
                                                       "runs": runs}, indent=1) + "\n")
    (args.out / "results.md").write_text(report(results, plan, info, time.monotonic() - started, runs))
    drawn = plot(results, args.out / "bench.png")
    print(f"\nwrote {args.out / 'results.md'}, {args.out / 'results.json'}"
          + (f" and {drawn}" if drawn else " (no plot: matplotlib is not installed; `make bench` installs it)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
