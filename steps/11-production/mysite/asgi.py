"""ASGI entry point: one application that answers both HTTP and WebSocket.

Step 02 routes WebSocket connections by path, as urls.py routes HTTP
requests, and fills the scope with the user and the route's arguments.
Serve it with `python manage.py runserver` or `daphne mysite.asgi:application`.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
# Build Django's HTTP app first: it sets Django up, so that the import of
# the consumer below (which may use models or settings) is safe.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402

# ASGI tells every connection's type in scope["type"]; this router picks
# the application for each, as ROOT_URLCONF picks a view for a path.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Middleware wraps the router like an onion, outermost first:
        # refuse handshakes whose Origin is not in ALLOWED_HOSTS (another
        # site's page cannot use your visitors' cookies), then put the
        # session's user in scope["user"], then pick a consumer by path.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
