"""What a client may send, and the answer to each mistake.

A client sends one JSON object per text frame: {"message": "some text"}.
It may add "to": a username, for a direct message to that user.

A frame that breaks the rule gets an error event, and the connection stays
open:
    {"error": "<code>", "detail": "<what to fix>"}
with these codes:
    binary_frame          a binary frame; this chat speaks text frames only
    not_json              text that json.loads cannot parse
    not_an_object         JSON that is not an object, e.g. [1, 2] or "hi"
    missing_message       an object with no "message" key
    message_not_a_string  "message" is a number, a list, null, ...
    empty_message         "message" is "" or only spaces
    too_long              "message" is longer than MAX_MESSAGE_LENGTH
                          characters (chat/models.py); it was not sent
    not_saved             the database could not store the message, so it
                          was sent to nobody; try again
    bad_recipient         "to" names no user, or the sender is not logged in

A mistake in the connection itself gets an error event, then a close with
an application code (4000-4999 belong to applications; the browser shows
them as CloseEvent.code). Daphne passes no close reason on, so the event
just before the close is where the client learns why:
    4400 bad_room_name    the room cannot be a channel-layer group name
4401, as HTTP's 401, means "log in first" (4403, like 403, would be
"logged in, and still no"):
    4401 login_required   the room is for logged-in users, and nobody is
    4401 session_ended    the session this socket was opened with is over:
                          a logout in this browser, or, within
                          SESSION_CHECK_SECONDS, a new password, a
                          deactivated account, an expiry
"""

import json

from .rooms import ROOM_NAME_RULE, is_valid_room_name

BAD_ROOM_NAME = 4400
LOGIN_REQUIRED = 4401


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
    try:
        data = json.loads(text_data)
    except ValueError as error:  # json.JSONDecodeError is a ValueError
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
    """Raise ProtocolError unless room_name can be part of a group name."""
    if not is_valid_room_name(room_name):
        raise ProtocolError("bad_room_name", ROOM_NAME_RULE)
