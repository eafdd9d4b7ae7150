from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self):
        # Step 08: import the signal receivers once Django is set up, so that
        # @receiver connects them in every process, whatever it serves first.
        from . import signals  # noqa: F401
