"""Step 11: GET /healthz, which a load balancer or a deploy script asks whether this process can serve.

A process that is up but cannot reach its database or Redis would take users and fail them, so the
answer covers both: 200 and {"database": "ok", "channel_layer": "ok"}, or 503 with the name of what
failed in place of "ok", so that nginx or a load balancer stops sending it users, and a deploy waits.
"""

import asyncio
import logging

from channels.layers import get_channel_layer
from django.http import JsonResponse

from .models import Message

logger = logging.getLogger(__name__)

# Each question gets this long: a Redis or a database that hangs gives 503, not a probe that waits.
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
    # A query on the chat's own table: the database is up, and migrated.
    await asyncio.wait_for(Message.objects.aexists(), SECONDS)


async def layer_answers():
    # A message to a channel of its own, and back: what every chat message needs from the layer.
    layer = get_channel_layer()
    channel = await asyncio.wait_for(layer.new_channel(), SECONDS)
    await asyncio.wait_for(layer.send(channel, {"type": "health.check"}), SECONDS)
    await asyncio.wait_for(layer.receive(channel), SECONDS)
