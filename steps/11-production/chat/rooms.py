"""What a room name may be: one rule, for the index page, the room page and the socket.

A room becomes part of a URL now, and from step 04 on part of a channel-layer
group name, "chat_<room>". Group names may hold only ASCII letters, digits,
"-", "_" and "." and must be shorter than 100 characters, so a room name is
1 to 94 letters, digits or underscores. Anything else is refused where it is
typed, with this rule's words, rather than failing later in a way that
explains nothing.
"""

import re

# Written as a plain regex so that the index page can use it as is, in its
# <input pattern="...">, and the browser checks the name before sending it.
ROOM_NAME_REGEX = "[A-Za-z0-9_]{1,94}"
ROOM_NAME_RULE = "a room name is 1 to 94 ASCII letters, digits or underscores"


def is_valid_room_name(room_name):
    return re.fullmatch(ROOM_NAME_REGEX, room_name) is not None
