"""Ordinary Django views: they only serve the pages; the chat runs over the WebSocket."""

from django.shortcuts import render

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
