"""ASGI entry point: one application that answers both HTTP and WebSocket.

Step 01 sends every WebSocket connection, whatever its path, to one
consumer. Step 02 adds routing. Serve it with `python manage.py runserver`
or `daphne mysite.asgi:application`.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
# Build Django's HTTP app first: it sets Django up, so that the import of
# the consumer below (which may use models or settings) is safe.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from chat.consumers import ChatConsumer  # noqa: E402

# ASGI tells every connection's type in scope["type"]; this router picks
# the application for each, as ROOT_URLCONF picks a view for a path.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # as_asgi() is to a consumer what as_view() is to a class-based view:
        # it builds one consumer instance per connection.
        "websocket": ChatConsumer.as_asgi(),
    }
)
