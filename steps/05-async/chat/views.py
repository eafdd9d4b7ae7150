"""Ordinary Django views: they only serve the pages; the chat runs over the WebSocket."""

from django.shortcuts import render


def index(request):
    return render(request, "chat/index.html")


def room(request, room_name):
    return render(request, "chat/room.html", {"room_name": room_name})
