"""`python manage.py announce lobby "text"`: an announcement from a shell or a cron job (step 09).

Exit status: 0 sent; 2 a bad room name or text; 3 the in-memory layer, which
cannot reach another process; 4 the channel layer (Redis) could not be reached.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from chat.push import PushFailed, announce, check_announcement, group_name, layer_is_in_memory


class Command(BaseCommand):
    help = "Send an announcement to every socket in a chat room (needs REDIS_URL)."

    def add_arguments(self, parser):
        parser.add_argument("room", help="the room's name, e.g. lobby")
        parser.add_argument("text", help="what to announce, in quotes")

    def handle(self, room, text, **options):
        try:
            text = check_announcement(room, text)
        except ValueError as error:
            raise CommandError(str(error), returncode=2) from None
        # This command is a process of its own. With the in-memory layer, its
        # layer is a fresh one in its own memory: the group has no members
        # here, so group_send would succeed and reach nobody. Say so instead.
        if layer_is_in_memory():
            raise CommandError(
                "the channel layer is in-memory (InMemoryChannelLayer), which lives inside one process: "
                "this command's own, where no socket is connected, so nobody would hear it. "
                "Set REDIS_URL to the Redis that the server uses (step 06).",
                returncode=3,
            )
        try:
            announce(room, text)
        except PushFailed as error:
            raise CommandError(
                f"the channel layer at REDIS_URL={settings.REDIS_URL} could not be reached ({error}); "
                "is Redis running?",
                returncode=4,
            ) from None
        self.stdout.write(f"sent to {group_name(room)}")
