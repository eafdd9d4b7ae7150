"""Settings for the mysite project.

Run this step from the repository root with `make run STEP=NN` (NN is this
folder's number), or from this folder with `python manage.py runserver`.

Step 06 reads REDIS_URL: with it set, every process that uses that Redis
shares one channel layer. One room, two processes, from this folder:
    REDIS_URL=redis://127.0.0.1:6379/0 daphne -p 8001 mysite.asgi:application
    REDIS_URL=redis://127.0.0.1:6379/0 daphne -p 8002 mysite.asgi:application
then open http://127.0.0.1:8001/chat/lobby/ and http://127.0.0.1:8002/chat/lobby/.

Step 07 keeps every room's messages in the database (chat/models.py): run
`python manage.py migrate` once before the server. Both processes above
then share db.sqlite3 as they share Redis.

Step 08 logs people in with Django's own views (mysite/urls.py). Make a user
with `python manage.py createsuperuser`, then log in at /accounts/login/.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# For learning on your own machine only: never deploy this key or DEBUG = True.
SECRET_KEY = "django-insecure-tutorial-key-for-local-use-only"
DEBUG = True
# Empty + DEBUG means localhost, 127.0.0.1 and [::1] are allowed.
ALLOWED_HOSTS = []

INSTALLED_APPS = [
    # daphne must come first: its runserver command replaces Django's, and
    # only daphne's speaks both HTTP and WebSocket (ASGI).
    "daphne",
    "chat",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"
# The entry point daphne's runserver serves: mysite/asgi.py's `application`.
ASGI_APPLICATION = "mysite.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # Step 07: SQLITE_PATH moves the file, e.g. for the checks, which give
        # their servers a fresh one; unset, it is db.sqlite3 in this folder.
        "NAME": os.environ.get("SQLITE_PATH", BASE_DIR / "db.sqlite3"),
        # Every message is now a write, and two server processes may write to
        # one file at once. SQLite lets one writer in at a time; the others
        # wait (5 s by default, the "timeout" option), then fail with
        # "database is locked", and the sender is told (not_saved). Keep that
        # wait short: all of a process's ORM calls take turns on one thread,
        # so while one waits for the lock, every connection's query waits too.
        "OPTIONS": {
            # WAL (write-ahead log): readers never wait for the writer, so a
            # newcomer's history query is not held up by someone's message.
            # It sits in the file, so once is enough; db.sqlite3-wal and
            # db.sqlite3-shm appear beside the database.
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# Step 08: where Django's LoginView and LogoutView send the browser when the
# request says no "next" (the pages' links and forms do say it: the page
# they came from). Without these, login goes to /accounts/profile/, which
# does not exist, and logout to the admin's "logged out" page.
LOGIN_REDIRECT_URL = "/chat/"
LOGOUT_REDIRECT_URL = "/chat/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Show the consumer's lifecycle (connect, receive, disconnect) in the
# runserver console: chat/consumers.py logs each one to the "chat" logger.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"chat": {"handlers": ["console"], "level": "INFO"}},
}

# The channel layer carries messages between consumers, addressed by channel
# name or by group. The in-memory layer lives inside one process: right for
# learning and tests; several processes need a shared one (Redis).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels.layers.InMemoryChannelLayer",
        # capacity: how many messages may wait on one channel for its
        # consumer. Past it, send() raises ChannelFull, and group_send skips
        # that member without a word: the message is lost. The default, 100,
        # goes in a second when a few people in a room type at once (each
        # message queues once per member); 1000 leaves room for such bursts,
        # for a little memory per connection that falls behind.
        "CONFIG": {"capacity": 1000},
    }
}

# Step 06: one process's memory cannot hold a room that spans two server
# processes (two daphnes, or one per machine behind a load balancer): a
# message sent in one never reaches the consumers of the other. Set
# REDIS_URL (e.g. redis://127.0.0.1:6379/0) and the layer lives in Redis
# instead, so every process that uses that Redis shares channels and groups.
# Left unset, the in-memory layer above stays: one process, no Redis needed.
REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # RedisChannelLayer keeps what steps 03 and 04 taught: a channel
            # per consumer, whose messages wait in Redis (up to "expiry", 60 s)
            # until its process reads them, and groups stored in Redis, so
            # that any process can send to any room.
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # Each layer call in flight holds one Redis connection from a
                # pool, and async consumers make their calls side by side: 100+
                # clients joining or leaving at once need 100+ connections.
                # redis-py's pool stops at 100 by default and raises
                # MaxConnectionsError ("Too many connections"): that client's
                # group_add fails (its connection closes with 1011), or its
                # group_discard does, and the group keeps a channel nobody
                # reads, for group_expiry (a day). So allow one per WebSocket a
                # process may serve; each is a socket, so mind `ulimit -n`.
                # socket_timeout: a consumer waits for its next message with
                # a blocking pop that Redis holds open for up to 5 s. redis-py
                # 8 gives up on any read after 5 s by default, so a quiet
                # room's consumers would crash ("Timeout reading from ...")
                # and their sockets close with 1011. A timeout well above
                # those 5 s keeps them open, and still notices a dead Redis.
                "hosts": [{"address": REDIS_URL, "max_connections": 1000, "socket_timeout": 15}],
                # How many messages may wait: in Redis, for all of a process's
                # channels together, then in the process, for each one. Past it,
                # group_send drops the message, saying so only in an INFO log
                # line ("over capacity"); send() raises ChannelFull.
                "capacity": 1000,
            },
        }
    }
    # The other Redis layer: RedisPubSubChannelLayer publishes each message
    # once and Redis pushes it to the processes that subscribed, so it keeps
    # no queues and no groups in Redis and needs few connections. But what
    # nobody listens to right then is gone, with no expiry to wait in, and a
    # consumer that falls behind queues without limit in memory. Its docs
    # still call it beta.
    # CHANNEL_LAYERS = {
    #     "default": {
    #         "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
    #         "CONFIG": {"hosts": [REDIS_URL]},
    #     }
    # }
