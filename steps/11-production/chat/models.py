"""The chat's one table: every message said to a room, so that a newcomer can read what came before.

Step 07 keeps messages in the database. The consumer stores each one as it is
sent (chat/consumers.py) and reads a room's last HISTORY_LENGTH back to each
connection that joins, as many as fit in HISTORY_BYTES. `python manage.py
migrate` makes the table.
"""

import json

from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

# How many of a room's messages a newcomer is sent: enough to follow the
# conversation.
HISTORY_LENGTH = 50
# The longest message, in characters: far more than a chat line needs, and
# bounded here, where text enters, so that the limit also holds for the admin
# and the shell. What it protects
# is what the server sends: daphne refuses to send a frame over 1 MiB (the
# consumer raises and the socket closes with 1011), so a message must stay
# small enough for every copy sent to the room, and for the history.
MAX_MESSAGE_LENGTH = 4096
# How much history one first frame may carry, in bytes of JSON: well under
# daphne's 1 MiB, with room for the rest of the frame. json.dumps writes each
# character outside ASCII as an escape, 12 bytes for an emoji (\ud83d\ude00),
# so 50 messages of MAX_MESSAGE_LENGTH could need 2.3 MiB: the newest that fit
# are sent.
HISTORY_BYTES = 512 * 1024


class Message(models.Model):
    # A room is only a name (chat/rooms.py's rule), not a row of its own:
    # nothing else is known about a room, so there is nothing to join to.
    # The index makes "this room's newest messages" one cheap lookup.
    room = models.CharField(max_length=94, db_index=True)
    # The name the room saw, as text: anonymous people have no user row to
    # point to, and the name shown then is what history should show again.
    author = models.CharField(max_length=150)
    # max_length on a TextField reaches forms only (every ModelForm, the
    # admin's too); the constraint below makes full_clean() and the
    # database refuse a longer text as well.
    text = models.TextField(max_length=MAX_MESSAGE_LENGTH)
    # Set by the database layer when the row is saved, in UTC (USE_TZ).
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The id grows with every message saved, so it is the order in which
        # they were said; the time could tie when two arrive in one tick.
        ordering = ["id"]
        # Checked by the database itself on every write, so a longer text is
        # refused (IntegrityError) however it comes: the shell, a script, or
        # bulk_create(), none of which validates the field. (SQLite's
        # length() stops at a NUL character; PostgreSQL refuses NUL in text.)
        constraints = [
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("text"), MAX_MESSAGE_LENGTH),
                name="chat_message_text_max_length",
                violation_error_message=f"a message may hold at most {MAX_MESSAGE_LENGTH} characters",
            ),
        ]

    def __str__(self):
        return f"{self.room} {self.author}: {self.text[:40]}"

    def as_event(self):
        """What the browser is sent for this message in a room's history: text fields, and its id."""
        # Step 11: the id too, as live messages carry it (chat/consumers.py), so that a page
        # that reconnects can tell which messages of the history it has shown already.
        return {"id": self.id, "user": self.author, "message": self.text, "sent_at": self.sent_at.isoformat()}


async def room_history(room_name):
    """Up to the room's last HISTORY_LENGTH messages, as many as fit in HISTORY_BYTES, oldest first, in one query.

    Django's async ORM: `async for` runs the query in Django's one thread for
    database work and hands the rows back to the event loop. Newest first with
    a limit is what an index can answer; reversed here, in Python, costs nothing.
    """
    newest = Message.objects.filter(room=room_name).order_by("-id")[:HISTORY_LENGTH]
    return within_budget([message async for message in newest])


def within_budget(newest_first):
    """The newest messages whose events fit in HISTORY_BYTES of JSON, oldest first."""
    kept, size = [], 0
    for message in newest_first:
        # What the first frame will hold for it: json.dumps writes ASCII, so
        # len() counts bytes (2 more for the ", " between two entries).
        size += len(json.dumps(message.as_event())) + 2
        if size > HISTORY_BYTES:
            break  # the older ones stay out too, so the history has no gap
        kept.append(message)
    return kept[::-1]


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
#     return within_budget(list(newest))  # list() runs the query, here, on that thread
