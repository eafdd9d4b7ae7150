"""WebSocket URLs: what urls.py is to views, this list is to consumers.

URLRouter tries the patterns in order, as Django does with urlpatterns, and
puts the named groups of the one that matches into scope["url_route"].
"""

from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    # as_asgi() is to a consumer what as_view() is to a class-based view:
    # it builds one consumer instance per connection. [^/]+ lets any one
    # path segment through ("café", "my room"), so that the consumer can
    # answer every bad name the same way: chat/rooms.py's rule, and 4400.
    re_path(r"^ws/chat/(?P<room_name>[^/]+)/$", consumers.ChatConsumer.as_asgi()),
    # Last, and matching any path: without it, a path that matches nothing
    # makes URLRouter raise ValueError, a traceback and a bare failed handshake.
    re_path(r"", consumers.NoRouteConsumer.as_asgi()),
]
