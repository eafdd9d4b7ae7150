"""Step 11: the settings a server runs with. mysite/settings.py stays as it was, for your machine.

Everything that differs between your machine and a server comes from the environment, never from
a file in git: the secret key, the host names, the database, Redis. runserver and the in-process
checks keep mysite/settings.py (DEBUG on); a server names this module instead:

    DJANGO_SETTINGS_MODULE=mysite.production daphne --proxy-headers --websocket_timeout -1 mysite.asgi:application

(--proxy-headers: believe nginx's X-Forwarded-For and -Proto; --websocket_timeout -1: no close
after daphne's default 24 hours, which the room page would not retry, as it was chosen.)

`make run STEP=11` starts the whole stack with it (tutorial/core/stack.py), and
`DJANGO_SETTINGS_MODULE=mysite.production python manage.py check --deploy` says what is left to fix.
"""

import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F403 - the project as developed; below, only what a server changes


def required(name, example):
    # A server that starts with a setting missing must stop at once and say which: a default here
    # would run production on a development value (a known key, SQLite, the in-memory layer).
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is not set: production reads it from the environment, e.g. "
                                   f"{name}={example}")
    return value


def listed(name, example):
    return [item.strip() for item in required(name, example).split(",") if item.strip()]


def seconds(name, default):
    value = os.environ.get(name, default).strip()
    if not value.isdigit():
        raise ImproperlyConfigured(f"{name} must be a whole number of seconds, such as {default}; it is {value!r}")
    return int(value)


# Off, always: with DEBUG on, any error page shows visitors your settings, code and SQL.
DEBUG = False
# Signs sessions and CSRF tokens: whoever knows it can log in as anyone.
SECRET_KEY = required("DJANGO_SECRET_KEY", "$(python -c 'import secrets; print(secrets.token_urlsafe(50))')")
# The host names the site answers to. With DEBUG off Django answers any other Host header with
# 400, and Channels' AllowedHostsOriginValidator refuses a WebSocket whose Origin is not one.
ALLOWED_HOSTS = listed("DJANGO_ALLOWED_HOSTS", "chat.example.com")
# A login form's POST carries the page's Origin, which Django compares with the scheme and host the
# request came for: behind nginx, X-Forwarded-Proto and Host (deploy/nginx.conf) make those the
# browser's own. Only a form posted from another origin (another subdomain, say) needs listing.
CSRF_TRUSTED_ORIGINS = [item.strip() for item in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",")
                        if item.strip()]

# nginx ends TLS and talks plain HTTP to daphne, so without this Django would think every request
# came over http (and refuse the login form's https Origin). nginx sets X-Forwarded-Proto on each
# request; trust it only because nothing but nginx can reach daphne (it listens on 127.0.0.1).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# An http:// request that reaches Django anyway is sent to https://. nginx redirects port 80
# itself (deploy/nginx.conf). A probe that asks one process directly, over http, for /healthz is let
# through (it must still send a Host that ALLOWED_HOSTS lists, e.g. curl -H "Host: chat.example.com").
SECURE_SSL_REDIRECT = True
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Cookies only over https: the session cookie is the login, on every WebSocket handshake too.
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# HSTS: browsers that saw the header use only https for this host, for this many seconds. Start
# small, and raise it to a year once https works everywhere: a mistake here locks users out for
# as long. Browsers ignore it on an address such as 127.0.0.1 (make run's stack sets 0 all the same:
# a browser that met it on localhost would then send every http://localhost server to https).
SECURE_HSTS_SECONDS = seconds("DJANGO_HSTS_SECONDS", "3600")
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# check --deploy also asks for SECURE_HSTS_PRELOAD, which asks browser makers to build the rule
# into their browsers, for good: a decision for the owner of a real domain, not a default.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# One URL instead of six settings: postgres://USER:PASSWORD@HOST:PORT/NAME. dj-database-url
# turns it into DATABASES (psycopg 3 is Django's PostgreSQL driver). Several processes write at
# once, which PostgreSQL does row by row where SQLite locks the whole file.
DATABASES = {"default": dj_database_url.parse(required("DATABASE_URL", "postgres://chat:secret@127.0.0.1:5432/chat"))}
# A database that does not answer: give up connecting after 3 s (libpq waits for ever by default),
# so that a query, and /healthz, fail rather than hang.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
# CONN_MAX_AGE stays 0, a connection per request: under ASGI, Django's docs advise against keeping
# them (each request may run on another thread). For many requests, psycopg's pool ("pool": True
# in OPTIONS) is the way.

# Two processes must share their groups (step 06), so Redis is not optional here; settings.py
# has built the Redis layer from this same variable.
required("REDIS_URL", "redis://127.0.0.1:6379/0")

# daphne sends every log record to the console with its time and level, the chat's and Django's
# (a view's traceback too), so the chat's lines go there only (settings.py's own handler would print
# each twice). A request with a Host that is not
# in ALLOWED_HOSTS (a scanner, a misconfigured proxy) gets 400, which the access log shows: Django's
# own report of it, a traceback a request, says nothing more.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"nowhere": {"class": "logging.NullHandler"}},
    "loggers": {
        "chat": {"level": "INFO"},
        "django.security.DisallowedHost": {"handlers": ["nowhere"], "propagate": False},
    },
}

# `manage.py collectstatic` copies every app's static files (the admin's CSS) here, and nginx
# serves them from there: with DEBUG off, Django serves none.
STATIC_ROOT = required("DJANGO_STATIC_ROOT", "/srv/chat/static")
