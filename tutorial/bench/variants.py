"""What `make bench` measures: each variant is a step served one way (or the bare ceiling)."""

import importlib.util
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
]



def available(variants, say=lambda text: None):
    """The variants this machine can serve: Redis ones need redis-server, uvicorn ones uvicorn."""
    if not services.redis_binary():
        say(f"No redis-server, so no Redis variants: {services.HOW_TO_GET_REDIS}.")
        variants = [v for v in variants if not v.redis]
    if importlib.util.find_spec("uvicorn") is None:
        say("No uvicorn, so no uvicorn variants: `make bench-setup` installs it (the bench extra).")
        variants = [v for v in variants if v.server != "uvicorn"]
    return variants
