"""The chat's one table: every message said to a room, so that a newcomer can read what came before.

Step 07 keeps messages in the database. The consumer stores each one as it is
sent (chat/consumers.py) and reads a room's last HISTORY_LENGTH back to each
connection that joins. `python manage.py migrate` makes the table.
"""

from django.db import models

# How many of a room's messages a newcomer is sent: enough to follow the
# conversation, few enough for one small frame (50 x 4 KiB at the very most).
HISTORY_LENGTH = 50


class Message(models.Model):
    # A room is only a name (chat/rooms.py's rule), not a row of its own:
    # nothing else is known about a room, so there is nothing to join to.
    # The index makes "this room's newest messages" one cheap lookup.
    room = models.CharField(max_length=94, db_index=True)
    # The name the room saw, as text: anonymous people have no user row to
    # point to, and the name shown then is what history should show again.
    author = models.CharField(max_length=150)
    text = models.TextField()
    # Set by the database layer when the row is saved, in UTC (USE_TZ).
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The id grows with every message saved, so it is the order in which
        # they were said; the time could tie when two arrive in one tick.
        ordering = ["id"]

    def __str__(self):
        return f"{self.room} {self.author}: {self.text[:40]}"

    def as_event(self):
        """What the browser is sent for this message in a room's history: text fields only."""
        return {"user": self.author, "message": self.text, "sent_at": self.sent_at.isoformat()}


async def room_history(room_name):
    """The room's last HISTORY_LENGTH messages, oldest first, read in one query.

    Django's async ORM: `async for` runs the query in Django's one thread for
    database work and hands the rows back to the event loop. Newest first with
    a limit is what an index can answer; reversed here, in Python, costs nothing.
    """
    newest = Message.objects.filter(room=room_name).order_by("-id")[:HISTORY_LENGTH]
    return [message async for message in newest][::-1]


# The other way to the same query: Channels' database_sync_to_async, the way
# from before Django's async ORM, and still the one for sync code you already
# have (a helper your views share, a transaction.atomic() block). It runs a
# plain function on the same database thread, and around each call closes
# connections older than CONN_MAX_AGE, as Django does after each request:
#
# from channels.db import database_sync_to_async
#
# @database_sync_to_async
# def room_history(room_name):
#     newest = Message.objects.filter(room=room_name).order_by("-id")[:HISTORY_LENGTH]
#     return list(newest)[::-1]  # list() runs the query, here, on that thread
