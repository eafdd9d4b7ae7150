"""WebSocket URLs: what urls.py is to views, this list is to consumers.

URLRouter tries the patterns in order, as Django does with urlpatterns, and
puts the named groups of the one that matches into scope["url_route"].
"""

from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    # as_asgi() is to a consumer what as_view() is to a class-based view:
    # it builds one consumer instance per connection. \w+ lets any letter
    # through, "café" too; the consumer checks what a group name allows.
    re_path(r"^ws/chat/(?P<room_name>\w+)/$", consumers.ChatConsumer.as_asgi()),
    re_path(r"^ws/whoami/$", consumers.WhoAmIConsumer.as_asgi()),
    # Last, and matching any path: without it, a path that matches nothing
    # makes URLRouter raise ValueError, a traceback and a bare failed handshake.
    re_path(r"", consumers.NoRouteConsumer.as_asgi()),
]
