"""Settings for the mysite project.

Run this step from the repository root with `make run STEP=NN` (NN is this
folder's number), or from this folder with `python manage.py runserver`.
"""

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
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
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
    }
}
