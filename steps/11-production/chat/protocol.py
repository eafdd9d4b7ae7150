"""What a client may send, and the answer to each mistake.

A client sends one JSON object per text frame: {"message": "some text"}.
It may add "to": a username, for a direct message to that user.

A frame that breaks the rule gets an error event, and the connection stays
open:
    {"error": "<code>", "detail": "<what to fix>"}
with these codes:
    binary_frame          a binary frame; this chat speaks text frames only
    empty_frame           a text frame with nothing (or only spaces) in it
    too_big               a frame over MAX_FRAME_BYTES
    too_fast              more frames than FrameBudget allows; that frame
                          was dropped, unsent
    not_json              text that json.loads cannot parse
    too_deep              JSON nested deeper than Python's parser can go,
                          e.g. [[[[...]]]] two thousand levels deep
    not_an_object         JSON that is not an object, e.g. [1, 2] or "hi"
    missing_message       an object with no "message" key
    message_not_a_string  "message" is a number, a list, null, ...
    empty_message         "message" is "" or only spaces
    bad_unicode           "message" holds a lone surrogate ("\\ud800"): JSON
                          allows the escape, but it is no character, and
                          Redis's encoding cannot carry it
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
    4404 no_route         no WebSocket route matches the path
4401, as HTTP's 401, means "log in first" (4403, like 403, would be
"logged in, and still no"):
    4401 login_required   the room is for logged-in users, and nobody is
    4401 session_ended    the session this socket was opened with is over:
                          a logout in this browser, or, within
                          SESSION_CHECK_SECONDS, a new password, a
                          deactivated account, an expiry

Above daphne's own limit (1 MiB) the frame never reaches the consumer:
daphne drops the connection without a close frame, so the client sees 1006.
"""

import json
import time

from django.conf import settings

from .rooms import ROOM_NAME_RULE, is_valid_room_name

# A chat line needs little; 4 KiB is far under daphne's 1 MiB and under the
# 64 KB that the OWASP WebSocket cheat sheet suggests at most.
MAX_FRAME_BYTES = 4 * 1024

BAD_ROOM_NAME = 4400
LOGIN_REQUIRED = 4401
NO_ROUTE = 4404


class ProtocolError(Exception):
    """A mistake by the client, with the code and words it will be shown."""

    def __init__(self, code, detail):
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def as_json(self):
        return json.dumps({"error": self.code, "detail": self.detail})


class FrameBudget:
    """Flood control for one connection: a token bucket.

    Each frame spends a token; tokens come back at `per_second`, and at most
    `burst` are saved up. A person who pastes a few lines at once never
    notices; a script that sends thousands is told too_fast for each frame
    over the budget, which then goes nowhere, so one connection cannot make
    the server fan a flood out to a whole room. settings.CHAT_FRAME_BUDGET =
    (per_second, burst) changes the numbers; None turns the limit off.
    """

    def __init__(self):
        self.limit = getattr(settings, "CHAT_FRAME_BUDGET", (10, 30))
        self.tokens = self.limit[1] if self.limit else 0
        self.checked = time.monotonic()

    def spend(self):
        if self.limit is None:
            return
        per_second, burst = self.limit
        now = time.monotonic()
        self.tokens = min(burst, self.tokens + (now - self.checked) * per_second)
        self.checked = now
        if self.tokens < 1:
            limit = f"at most {per_second} frames a second, {burst} at once"
            raise ProtocolError("too_fast", f"{limit}; this one was dropped")
        self.tokens -= 1


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
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        raise ProtocolError("not_json", f"the frame is not JSON: {error}") from None
    except RecursionError:
        # json.loads recurses once per [ or {: a few thousand of them, well
        # inside 4 KiB, exhaust Python's stack. Not a JSONDecodeError!
        raise ProtocolError("too_deep", "the JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("not_an_object", 'send a JSON object: {"message": "..."}')
    if "message" not in data:
        raise ProtocolError("missing_message", 'the object needs a "message" key')
    if not isinstance(data["message"], str):
        raise ProtocolError("message_not_a_string", '"message" must be a string')
    if not data["message"].strip():
        raise ProtocolError("empty_message", '"message" must not be blank')
    try:
        data["message"].encode("utf-8")
    except UnicodeEncodeError:
        detail = '"message" holds a lone surrogate such as \\ud800, which is no character'
        raise ProtocolError("bad_unicode", detail) from None
    return data


def check_room_name(room_name):
    """Raise ProtocolError unless room_name can be part of a group name."""
    if not is_valid_room_name(room_name):
        raise ProtocolError("bad_room_name", ROOM_NAME_RULE)
