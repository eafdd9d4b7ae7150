"""What a client may send, and the answer to each mistake.

All input checking lives here, written once in step 01 and unchanged in the
steps after it, so that their diffs show only their new concept.

A client sends one JSON object per text frame: {"message": "some text"}.

Mistakes in a frame get an error event and the connection stays open:
    {"error": "<code>", "detail": "<what to fix>"}
with these codes:
    binary_frame          a binary frame; this chat speaks text frames only
    empty_frame           a text frame with nothing (or only spaces) in it
    too_big               a frame over MAX_FRAME_BYTES
    not_json              text that json.loads cannot parse
    not_an_object         JSON that is not an object, e.g. [1, 2] or "hi"
    missing_message       an object with no "message" key
    message_not_a_string  "message" is a number, a list, null, ...
    empty_message         "message" is "" or only spaces
    bad_recipient         "to" is not a valid channel name (step 03 on)
    recipient_busy        the recipient's channel is full (step 03 on)

Mistakes in the connection itself get an error event, then a close with an
application code (4000-4999 belong to applications; the browser shows them
as CloseEvent.code). Daphne does not pass a close reason on, so the event
just before the close is where the client learns why.
    4400 bad_room_name    the room cannot be a channel-layer group name
    4404 no_route         no WebSocket route matches the path (step 02 on)

Above daphne's own limit (1 MiB) the frame never reaches the consumer:
daphne drops the connection without a close frame, so the client sees 1006.
"""

import json
import re

# A chat line needs little; 4 KiB is far under daphne's 1 MiB and under the
# 64 KB that the OWASP WebSocket cheat sheet suggests at most.
MAX_FRAME_BYTES = 4 * 1024

# Channels group names must be ASCII letters, digits, "-", "_" or "." and
# shorter than 100 characters. Step 04 names a room's group "chat_<room>",
# so a room may have at most 100 - 1 - len("chat_") = 94 characters.
ROOM_NAME_PATTERN = re.compile(r"[A-Za-z0-9_]{1,94}")

BAD_ROOM_NAME = 4400
NO_ROUTE = 4404


class ProtocolError(Exception):
    """A mistake by the client, with the code and words it will be shown."""

    def __init__(self, code, detail):
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def as_json(self):
        return json.dumps({"error": self.code, "detail": self.detail})


def parse_frame(text_data=None, bytes_data=None):
    """Return the frame's JSON object, or raise ProtocolError saying what is wrong."""
    if text_data is None:
        raise ProtocolError("binary_frame", "send text frames of JSON, not binary frames")
    if len(text_data.encode()) > MAX_FRAME_BYTES:
        raise ProtocolError("too_big", f"a frame may hold at most {MAX_FRAME_BYTES} bytes")
    if not text_data.strip():
        raise ProtocolError("empty_frame", 'the frame was empty; send {"message": "..."}')
    try:
        data = json.loads(text_data)
    except json.JSONDecodeError as error:
        raise ProtocolError("not_json", f"the frame is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ProtocolError("not_an_object", 'send a JSON object: {"message": "..."}')
    if "message" not in data:
        raise ProtocolError("missing_message", 'the object needs a "message" key')
    if not isinstance(data["message"], str):
        raise ProtocolError("message_not_a_string", '"message" must be a string')
    if not data["message"].strip():
        raise ProtocolError("empty_message", '"message" must not be blank')
    return data


def check_room_name(room_name):
    """Raise ProtocolError unless room_name can be part of a group name (used from step 02 on)."""
    if not ROOM_NAME_PATTERN.fullmatch(room_name):
        raise ProtocolError(
            "bad_room_name",
            "a room name is 1 to 94 ASCII letters, digits or underscores",
        )
