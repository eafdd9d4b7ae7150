"""Step 11: GET /healthz, which a load balancer or a deploy script asks whether this process can serve.

A process that is up but cannot reach its database or Redis would take users and fail them, so the
answer covers both: 200 and {"database": "ok", "channel_layer": "ok"}, or 503 with the name of what
failed in place of "ok". A load balancer that asks it (open-source nginx does not ask: it only skips
a process that refuses connections) stops sending that process users; a deploy waits for 200.
"""

import asyncio
import logging

from channels.layers import get_channel_layer
from django.http import JsonResponse

from .models import Message

logger = logging.getLogger(__name__)

# Each of the two questions gets this long, asked side by side: a Redis or a database that hangs
# gives 503 within it, not a probe that waits (load balancers give up after about 5 s).
SECONDS = 2


async def health(request):
    # Both asked at once: an async view may await, like a consumer.
    results = await asyncio.gather(database_answers(), layer_answers(), return_exceptions=True)
    report = {}
    for name, result in zip(["database", "channel_layer"], results):
        # The error's name only: its text may hold an address or a password.
        report[name] = "ok" if result is None else type(result).__name__
        if result is not None:
            logger.warning("health: the %s failed: %r", name, result)  # the whole error, in the log only
    healthy = all(answer == "ok" for answer in report.values())
    return JsonResponse(report, status=200 if healthy else 503)


async def database_answers():
    # A query on the chat's own table: the database is up, and migrated. (The wait ends the answer,
    # not the query's thread: production.py's connect_timeout bounds that.)
    await asyncio.wait_for(Message.objects.aexists(), SECONDS)


async def layer_answers():
    await asyncio.wait_for(round_trip(), SECONDS)


async def round_trip():
    # A message to a channel of its own, and back: what every chat message needs from the layer.
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "health.check"})
    await layer.receive(channel)
