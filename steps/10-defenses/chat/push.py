"""Pushes from the rest of Django: sync code that sends to a room's sockets.

Step 09. Until now only a consumer ever sent to a group, and it did so with
`await`. A view, a signal receiver or a management command is plain sync
code with no event loop of its own, so it wraps the layer's coroutine in
asgiref's async_to_sync, which runs it to the end and returns its result.

Whatever sends here reaches the consumers that share its channel layer: in
one `runserver` process, the in-memory layer is shared by its views and its
consumers; a command runs in a process of its own, so it needs Redis.
"""

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from .rooms import ROOM_NAME_RULE, is_valid_room_name

# An announcement goes to everyone in a room at once: keep it a line or two.
MAX_ANNOUNCEMENT = 500


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
    """Send `text` to every socket in the room now, as an announcement; ValueError if it cannot be one."""
    text = check_announcement(room_name, text)
    # "chat.announcement" calls chat_announcement() in each consumer of the
    # group, as "chat.message" calls chat_message(). group_send does not say
    # how many heard it: a room with nobody in it takes it without a word.
    event = {"type": "chat.announcement", "message": text}
    async_to_sync(get_channel_layer().group_send)(group_name(room_name), event)


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
    async_to_sync(get_channel_layer().group_send)(group_name(message.room), event)
