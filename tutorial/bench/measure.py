"""One measurement of a room: the load clients join it, send to it and count what arrives,
while /proc says what the servers, the clients and the whole machine did meanwhile."""

import contextlib
import multiprocessing
import os
import statistics
import time
from pathlib import Path

from . import client as bench_client

TICKS = os.sysconf("SC_CLK_TCK")


def listen_drops():
    """Connection attempts the kernel dropped because a listen queue was full, since boot."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split()))["ListenDrops"])
    return 0


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
    """How busy the machine was between start() and stop(): `machine` is the fraction of all its
    cores that were working, by anyone (the servers, the load clients, someone else's tests)."""

    def start(self):
        self.ticks = machine_ticks()
        return self

    def stop(self):
        total, idle = (after - before for after, before in zip(machine_ticks(), self.ticks))
        # /proc/stat counts in 10 ms ticks: a phase shorter than a few ticks has no busy fraction.
        self.machine = 1 - idle / total if total >= 10 else None
        return self


class Clients:
    """K load-client processes (tutorial/bench/client.py), asked the same thing at once."""

    def __init__(self, k):
        context = multiprocessing.get_context("spawn")  # not fork: nothing of this process's state
        self.pipes, self.processes = [], []
        for index in range(k):
            mine, theirs = context.Pipe()
            process = context.Process(target=bench_client.serve, args=(theirs, index, k), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    def ask(self, command, timeout=120, **arguments):
        """Every client's answer, in client order; raises with the client's traceback if one failed."""
        for pipe in self.pipes:
            pipe.send((command, arguments))
        answers = []
        for index, pipe in enumerate(self.pipes):
            if not pipe.poll(timeout):
                raise RuntimeError(f"load client {index} did not finish {command!r} in {timeout} s")
            answer = pipe.recv()
            if "error" in answer:
                raise RuntimeError(f"load client {index} failed in {command!r}:\n{answer['error']}")
            answers.append(answer)
        return answers

    def close(self):
        for pipe, process in zip(self.pipes, self.processes):
            with contextlib.suppress(OSError):
                pipe.send(("quit", {}))
            process.join(5)
            if process.is_alive():
                process.kill()


def busiest(answers):
    """The CPU of the busiest client over a phase, in cores: near 1.0, it set the pace."""
    return max(answer["cpu"] / max(answer["wall"], 1e-9) for answer in answers)


def measure(variant, ports, pids, n, plan, room, clients, ca=None):
    started, dropped = time.perf_counter(), listen_drops()
    clients.ask("join", ports=ports, room=room, n=n, silence=plan.silence, ca=str(ca) if ca else None)
    connect_seconds = time.perf_counter() - started
    dropped = listen_drops() - dropped
    try:
        clients.ask("warm")
        # Steady load: the same deliveries per second at every N, one sender at a time.
        per_second = max(1.0, plan.steady_rate / n)
        messages = max(1, round(per_second * plan.steady_seconds))
        steady_load = Load().start()
        answers = clients.ask("steady", start=time.perf_counter() + 0.05, per_second=per_second,
                              messages=messages, n=n)
        steady_load.stop()
        latencies = sorted(latency for answer in answers for latency in answer["latencies"])
        client_steady = busiest(answers)
        sent = [f"steady {number}" for number in range(messages)]

        # Bursts: several senders at once, as fast as they can. /proc counts CPU time in
        # ticks (10 ms), so a fast server gets more bursts, until its CPU time is enough to count.
        senders = min(plan.senders, n)
        each = max(1, min(plan.burst_most, max(plan.burst_deliveries // n, senders)) // senders)
        burst_seconds = received = 0
        client_cpu = [0.0] * len(clients.pipes)
        client_wall = [0.0] * len(clients.pipes)
        burst_load = Load().start()
        # The servers' CPU is read before the first burst and after each: each reading is good to a
        # tick (10 ms), so one difference over all the bursts, not a sum of one per burst.
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        for repeat in range(plan.most_bursts):
            start = time.perf_counter()
            answers = clients.ask("burst", repeat=repeat, senders=senders, each=each,
                                  expected=(repeat + 1) * senders * each)
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
            sent += [f"burst {repeat}.{index}.{number}" for index in range(senders) for number in range(each)]
            burst_received = sum(answer["burst"] for answer in answers)
            burst_seconds += max(max(answer["last"] for answer in answers) - start, 1e-9)
            for index, answer in enumerate(answers):
                client_cpu[index] += answer["cpu"]
                client_wall[index] += answer["wall"]
            complete = burst_received - received == senders * each * n
            received = burst_received
            if cpu >= plan.enough_cpu or not complete:
                break
        burst_load.stop()
        tallies = clients.ask("tally", sent=sent)
    finally:
        clients.ask("leave")
        time.sleep(0.1)  # the servers' disconnect()s run after the close handshakes
    expected = len(sent) * n
    return {
        "variant": variant.key, "label": variant.label, "n": n,
        "connect_s": connect_seconds,
        # Joins whose first SYN the kernel dropped (a full listen queue, anyone's on the machine):
        # each waited for a retry, a second later, so connect_s then measures the kernel's timer.
        "listen_drops": dropped,
        "steady_messages": messages, "steady_rate": messages * n / plan.steady_seconds,
        "steady_samples": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None,
        "burst_messages": senders * each, "burst_senders": senders, "bursts": repeat + 1,
        "deliveries_per_s": received / burst_seconds,
        "cpu_us_per_delivery": 1e6 * cpu / received if received else None,
        # The same CPU time per message posted: a delivery's cost times N, plus what a
        # message costs once whatever the room's size (from step 07, its INSERT).
        "cpu_us_per_message": 1e6 * cpu / ((repeat + 1) * senders * each),
        "sent": 1 + len(sent),  # the warm-up, and the steady and burst messages
        # By identity, at every member (client.py): a member that got one message twice
        # and another never shows 1 lost and 1 duplicated, not 0.
        "lost": sum(tally["lost"] for tally in tallies),
        "duplicated": sum(tally["duplicated"] for tally in tallies),
        "expected": expected,
        # How busy the machine was (fraction of all its cores) and the busiest load client (in
        # cores) during each phase: a figure measured on a busy machine, or with a client near
        # a full core, says more about them than about the server.
        "busy_steady": steady_load.machine, "busy_burst": burst_load.machine,
        "client_cores_steady": client_steady,
        "client_cores_burst": max(c / max(w, 1e-9) for c, w in zip(client_cpu, client_wall)),
    }

