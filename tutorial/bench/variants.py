"""What `make bench` measures: each variant is a step served one way (or the bare ceiling), the
plan of a run (room sizes, loads) and the order the variants and sizes are measured in."""

import importlib.util
import random
from dataclasses import dataclass

from ..core import services


@dataclass
class Variant:
    key: str
    label: str
    step: str | None  # None: the bare websockets server
    processes: int = 1
    redis: bool = False
    database: bool = False  # a fresh, migrated SQLite file for each run (steps 07 on)
    # The levers of the performance page's "making it faster": each is a step with one change.
    lever: bool = False  # measured at the middle N only (100), to keep `make bench` short
    skip_trip: bool = False  # tutorial/bench/levers.py's SkipTheTrip mixed into the step's consumer
    freeze: bool = False  # gc.freeze() once the application is loaded
    server: str = "daphne"  # or "uvicorn"
    layer: str | None = None  # "pubsub": channels_redis's RedisPubSubChannelLayer instead
    # nginx with TLS in front (tutorial/core/services.py's PROXY): the clients join by wss://
    # through it, and its CPU counts with the server's.
    proxy: bool = False
    middle: bool = False  # measured at the middle N only (100), as a lever is


VARIANTS = [
    Variant("04", "04 sync, in-memory", "04"),
    Variant("05", "05 async, in-memory", "05"),
    Variant("06x1", "06 Redis, 1 process", "06", redis=True),
    Variant("06x2", "06 Redis, 2 processes", "06", processes=2, redis=True),
    Variant("07", "07 history, in-memory", "07", database=True),
    Variant("bare", "bare websockets (ceiling)", None),
    Variant("05skip", "05 + skip the trip", "05", lever=True, skip_trip=True),
    Variant("05freeze", "05 + gc.freeze()", "05", lever=True, freeze=True),
    Variant("05uvicorn", "05 on uvicorn", "05", lever=True, server="uvicorn"),
    Variant("06pubsub", "06 pub/sub layer, 1 process", "06", lever=True, redis=True, layer="pubsub"),
    Variant("05all", "05 + all three levers", "05", lever=True, skip_trip=True, freeze=True, server="uvicorn"),
    # What production's proxy and TLS cost: the last step, direct and behind nginx.
    Variant("10", "10 defenses, direct", "10", database=True, middle=True),
    Variant("10nginx", "10 behind nginx with TLS", "10", database=True, middle=True, proxy=True),
]


def available(variants, say=lambda text: None):
    """The variants this machine can serve: Redis ones need redis-server, uvicorn ones uvicorn."""
    if not services.redis_binary():
        say(f"No redis-server, so no Redis variants: {services.HOW_TO_GET_REDIS}.")
        variants = [v for v in variants if not v.redis]
    if not services.nginx_binary():
        say(f"No nginx, so no variant behind it: {services.HOW_TO_GET_NGINX}.")
        variants = [v for v in variants if not v.proxy]
    if importlib.util.find_spec("uvicorn") is None:
        say("No uvicorn, so no uvicorn variants: `make bench-setup` installs it (the bench extra).")
        variants = [v for v in variants if v.server != "uvicorn"]
    return variants


# How many connections the kernel holds for a server before it accepts them. Past it, a client's
# SYN is dropped and it tries again a second later: 500 joins at once against daphne's default
# (Twisted's 50) measured the kernel's retry timer as much as the server. Every server gets this
# one; ListenDrops in /proc/net/netstat says whether any join was dropped anyway.
BACKLOG = 1024


@dataclass
class Plan:
    sizes: list
    steady_rate: int = 1000  # deliveries per second, for every N: the steady load
    steady_seconds: float = 4.0
    backlog: int = BACKLOG  # every server's listen queue (see BACKLOG)
    burst_deliveries: int = 10000  # about this many deliveries a burst...
    burst_most: int = 1000  # ...from at most this many messages (the layer's capacity)
    senders: int = 5
    silence: float = 3.0  # seconds without a delivery after which the rest count as lost
    enough_cpu: float = 0.3  # server CPU seconds that make a count precise enough...
    most_bursts: int = 10  # ...or this many bursts, whichever comes first


def sizes_of(variant, plan):
    """The room sizes a variant is measured at: every one, or for a lever or a `middle` variant
    the middle one (100)."""
    if not (variant.lever or variant.middle):
        return plan.sizes
    return [100 if 100 in plan.sizes else plan.sizes[len(plan.sizes) // 2]]


def in_order(sizes):
    """The order a server is measured at its sizes: the middle one (100) first, on a fresh
    process, as a lever is (a lever is measured at that size only), then the others."""
    middle = 100 if 100 in sizes else sizes[len(sizes) // 2]
    return [middle] + [n for n in sizes if n != middle]


def shuffled(variants, repeat):
    """The variants in the order repeat number `repeat` measures them: the first repeat in the
    table's order, each later one shuffled (seeded by its number, so a run can be repeated),
    so that no variant always comes first, or always right after the same neighbour."""
    if repeat == 0:
        return list(variants)
    order = list(variants)
    random.Random(repeat).shuffle(order)
    return order
