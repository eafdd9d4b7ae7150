"""ASGI entry point, as `django-admin startproject` writes it.

This plain Django application answers HTTP only: asked for a WebSocket, it
has nothing to offer. Step 01 replaces it with one that speaks both.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_asgi_application()
