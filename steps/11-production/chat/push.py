"""Pushes from the rest of Django: sync code that sends to a room's sockets.

Step 09. Until now only a consumer ever sent to a group, and it did so with
`await`. A view, a signal receiver or a management command is plain sync
code with no event loop of its own, so it wraps the layer's coroutine in
asgiref's async_to_sync, which runs it to the end and returns its result.

Whatever sends here reaches the consumers that share its channel layer: in
one `runserver` process, the in-memory layer is shared by its views and its
consumers; a command runs in a process of its own, so it needs Redis.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from redis.exceptions import RedisError

from .rooms import ROOM_NAME_RULE, is_valid_room_name

logger = logging.getLogger(__name__)

# An announcement goes to everyone in a room at once: keep it a line or two.
MAX_ANNOUNCEMENT = 500

# A push rides on a request that has its own job: a logout, a save in the
# admin, a form. That job must not fail because the layer is down (Redis
# refuses at once), nor wait for a hung Redis (redis-py would wait out its
# socket_timeout, 15 s in mysite/settings.py). Two seconds, then give up.
PUSH_TIMEOUT = 2


class PushFailed(Exception):
    """The layer did not take the event within PUSH_TIMEOUT; send_to_group logged why."""


def send_to_group(group, event):
    """group_send from sync code, given PUSH_TIMEOUT: PushFailed, logged in one line, if it fails."""

    async def send():
        await asyncio.wait_for(get_channel_layer().group_send(group, event), PUSH_TIMEOUT)

    try:
        async_to_sync(send)()
    except (OSError, RedisError) as error:  # refused, reset, or timed out (TimeoutError is an OSError)
        cause = f"{type(error).__name__}: {error}".rstrip(": ")
        # One line, with the cause and no traceback: the caller decides what the user is told.
        logger.warning("push to %s did not go out (%s)", group, cause)
        raise PushFailed(cause) from None


def group_name(room_name):
    # The same name the consumers join in connect(): "chat_" + the room.
    return f"chat_{room_name}"


def layer_is_in_memory():
    """True when this process's layer lives in its own memory, out of other processes' reach."""
    return isinstance(get_channel_layer(), InMemoryChannelLayer)


def check_announcement(room_name, text):
    """The text as it will be sent, or ValueError saying why it cannot be."""
    if not is_valid_room_name(room_name):
        raise ValueError(f"there is no room {room_name!r}: {ROOM_NAME_RULE}")
    text = text.strip()
    if not text or len(text) > MAX_ANNOUNCEMENT:
        raise ValueError(f"an announcement is 1 to {MAX_ANNOUNCEMENT} characters")
    return text


def announce(room_name, text):
    """Send `text` to every socket in the room now, as an announcement; ValueError if it cannot be
    one, PushFailed if the layer did not take it."""
    text = check_announcement(room_name, text)
    # "chat.announcement" calls chat_announcement() in each consumer of the
    # group, as "chat.message" calls chat_message(). group_send does not say
    # how many heard it: a room with nobody in it takes it without a word.
    event = {"type": "chat.announcement", "message": text}
    send_to_group(group_name(room_name), event)


def push_message(message):
    """Send a stored Message to its room, as the consumers send what a socket said (chat/signals.py)."""
    event = {
        "type": "chat.message",
        "message": message.text,
        "user": message.author,
        "direct": False,
        # No connection sent it, so it is nobody's own ("own" compares this
        # with each receiving consumer's channel name).
        "sender": None,
        # As from the consumer: a newcomer whose history already has this id
        # skips the live copy.
        "id": message.id,
    }
    try:
        send_to_group(group_name(message.room), event)
    except PushFailed:
        # The row is stored, and every newcomer's history shows it: only the
        # live copy is lost, and the log says so. The admin's save succeeds.
        pass
