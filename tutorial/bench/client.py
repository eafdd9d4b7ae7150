"""One of `make bench`'s load-client processes: it holds its share of a room's members.

tutorial/bench/measure.py's Clients starts K of these (`python -m tutorial bench --clients K`)
and drives them through a pipe, one command at a time, all K at once: join, warm, steady, burst,
tally, leave. Client number `index` holds the members whose number i has i % K == index, and
sends for them: a member is both a connection and, for some phases, a sender. Several processes,
so that the load client is not what sets the pace: a Python process reading WebSocket frames
tops out near one core.

Every message carries its identity as its first two words ("steady 17", "burst 2.1.40"), and
each member keeps the set of identities it received: lost and duplicated are counted by
identity, at every member. A steady message also carries its send time (time.perf_counter(),
one monotonic clock for every process on the machine), so each delivery's latency is measured
where it arrives.
"""

import asyncio
import contextlib
import gc
import json
import ssl
import time
import traceback
from dataclasses import dataclass, field


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
    """Record what one member receives; `seen` is its set of message identities."""
    with contextlib.suppress(Exception):
        async for frame in ws:
            now = time.perf_counter()
            words = json.loads(frame).get("message", "").split()
            kind = words[0] if words else ""
            if kind in ("steady", "burst"):
                identity = " ".join(words[:2])
                if identity in seen:
                    counts.duplicated += 1
                    continue
                seen.add(identity)
            if kind == "steady":
                counts.latencies.append(now - float(words[2]))
                counts.steady += 1
            elif kind == "burst":
                counts.burst += 1
                counts.last_burst = now
            else:
                counts.warm += 1
            counts.changed.set()


async def wait_for(counts, attribute, expected, silence):
    """Wait until `expected` have arrived, or until none has for `silence` seconds."""
    while getattr(counts, attribute) < expected:
        counts.changed.clear()
        try:
            await asyncio.wait_for(counts.changed.wait(), silence)
        except asyncio.TimeoutError:
            return


class Client:
    def __init__(self, index, k):
        self.index, self.k = index, k

    def mine(self, numbers):
        return [i for i in numbers if i % self.k == self.index]

    async def join(self, ports, room, n, silence, ca=None):
        """n members join the room, over the ports in turn; by wss://, trusting `ca`, if it is given."""
        import websockets

        tls = ssl.create_default_context(cafile=ca) if ca else None
        scheme = "s" if ca else ""

        async def join(i):
            port = ports[i % len(ports)]
            ws = await websockets.connect(f"ws{scheme}://127.0.0.1:{port}/ws/chat/{room}/",
                                          origin=f"http{scheme}://127.0.0.1:{port}", ssl=tls,
                                          open_timeout=60, compression=None, ping_interval=None)
            await asyncio.wait_for(ws.recv(), 60)  # the hello: this member is in the room now
            return i, ws

        self.silence = silence
        self.members = dict(await asyncio.gather(*(join(i) for i in self.mine(range(n)))))
        self.counts = Counts()
        self.seen = {i: set() for i in self.members}
        self.readers = [asyncio.create_task(read(ws, self.counts, self.seen[i])) for i, ws in self.members.items()]
        return {}

    async def warm(self):
        # One message first, not measured: the first of anything is slow (imports, caches).
        if 0 in self.members:
            await self.members[0].send(json.dumps({"message": "warm up"}))
        await wait_for(self.counts, "warm", len(self.members), self.silence)
        return {}

    async def steady(self, start, per_second, messages, n):
        """Message number m goes from member m % n at start + m / per_second; then wait for all."""
        for number in range(messages):
            sender = number % n
            if sender in self.members:
                await asyncio.sleep(max(0.0, start + number / per_second - time.perf_counter()))
                await self.members[sender].send(json.dumps({"message": f"steady {number} {time.perf_counter():.9f}"}))
        await wait_for(self.counts, "steady", messages * len(self.members), self.silence)
        latencies, self.counts.latencies = self.counts.latencies, []
        return {"latencies": latencies}

    async def burst(self, repeat, senders, each, expected):
        """Members 0..senders-1 each send `each` messages at once, as fast as they can; then wait
        until this client's members have `expected` burst messages each, counted since the join."""

        async def send(i):
            for number in range(each):
                await self.members[i].send(json.dumps({"message": f"burst {repeat}.{i}.{number}"}))

        await asyncio.gather(*(send(i) for i in self.mine(range(senders))))
        await wait_for(self.counts, "burst", expected * len(self.members), self.silence)
        return {"burst": self.counts.burst, "last": self.counts.last_burst}

    async def tally(self, sent):
        """Lost: for each member, the identities sent to the room that it never got."""
        sent = set(sent)
        return {"lost": sum(len(sent - seen) for seen in self.seen.values()), "duplicated": self.counts.duplicated}

    async def leave(self):
        await asyncio.gather(*(ws.close() for ws in self.members.values()), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.members, self.seen, self.readers = {}, {}, []
        return {}


def serve(pipe, index, k):
    """The process's loop: a command from the pipe, run to its end, its answer back, with the CPU
    time this process used for it (so that measure.py can tell when the client set the pace)."""
    import websockets  # noqa: F401  (imported before the freeze below, not during a phase)

    # The client's own garbage collections would show as latency: keep what start-up made out
    # of their way, as the gc.freeze() lever does for the server.
    gc.freeze()
    loop = asyncio.new_event_loop()
    client = Client(index, k)
    while True:
        command, arguments = pipe.recv()
        if command == "quit":
            break
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            answer = loop.run_until_complete(getattr(client, command)(**arguments))
        except Exception:
            answer = {"error": traceback.format_exc()}
        answer.update(cpu=time.process_time() - cpu, wall=time.perf_counter() - wall)
        pipe.send(answer)
    loop.close()
