"""Ordinary Django views: they only serve the pages; the chat runs over the WebSocket.

Step 11 adds health(), which a load balancer or a deploy script asks whether a process can serve.
"""

import asyncio
import logging

from channels.layers import get_channel_layer
from django.http import JsonResponse
from django.shortcuts import render

from .models import Message
from .rooms import ROOM_NAME_REGEX, ROOM_NAME_RULE, is_valid_room_name


def index(request):
    return render(request, "chat/index.html", {"pattern": ROOM_NAME_REGEX, "rule": ROOM_NAME_RULE})


def room(request, room_name):
    if not is_valid_room_name(room_name):
        # A hand-typed URL such as /chat/my%20room/: say which names work,
        # on the page that asks for one, instead of a room that cannot chat.
        context = {"pattern": ROOM_NAME_REGEX, "rule": ROOM_NAME_RULE, "refused": room_name}
        return render(request, "chat/index.html", context, status=400)
    return render(request, "chat/room.html", {"room_name": room_name})


logger = logging.getLogger(__name__)


async def health(request):
    """GET /healthz: 200 and {"database": "ok", "channel_layer": "ok"} when this process can reach
    both, else 503 and the name of what failed, so that nginx or a load balancer stops sending it
    users, and a deploy waits for it. The error's name only: its text may hold a password."""
    checks = {"database": database_answers(), "channel_layer": layer_answers()}
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    report = {}
    for name, result in zip(checks, results):
        report[name] = "ok" if result is None else type(result).__name__
        if result is not None:
            logger.warning("health: %s failed: %r", name, result)
    healthy = all(answer == "ok" for answer in report.values())
    return JsonResponse(report, status=200 if healthy else 503)


async def database_answers():
    # A query on the chat's own table: the database is up, and migrated.
    await asyncio.wait_for(Message.objects.aexists(), 2)


async def layer_answers():
    # A message to a channel of its own, and back: what every chat message needs from Redis.
    layer = get_channel_layer()
    channel = await asyncio.wait_for(layer.new_channel(), 2)
    await asyncio.wait_for(layer.send(channel, {"type": "health.check"}), 2)
    await asyncio.wait_for(layer.receive(channel), 2)
