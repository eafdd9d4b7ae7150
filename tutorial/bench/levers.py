"""Code the performance page's "making it faster" measures: a step's consumer, with one change.

`make bench` mixes these into a step's consumer for its lever variants (tutorial/bench/servers.py);
the page includes them from here, so that what it shows is what was measured.
"""

import gc

from channels.generic.websocket import AsyncWebsocketConsumer


# --8<-- [start:skip]
class SkipTheTrip(AsyncWebsocketConsumer):
    # Before every handler, Channels' dispatch() sends close_old_connections()
    # through the sync worker thread and waits for it: one thread trip per
    # event, so one per delivery in a room. It is the clean-up Django does at
    # the end of every HTTP request, done per event: close the connection once
    # it is older than CONN_MAX_AGE (0 by default: every time), or when an
    # error left it unusable. Django's async ORM (acreate(), aget(), ...)
    # relies on it. chat_message() only forwards an event to the browser, so
    # its events may go straight to it; every other type keeps the trip. List
    # only types whose handlers never touch the database, directly or through
    # a helper. (database_sync_to_async() does the clean-up on its own.)
    DATABASE_FREE = {"chat.message"}

    async def dispatch(self, message):
        if message["type"] in self.DATABASE_FREE:
            await self.chat_message(message)
        else:
            await super().dispatch(message)
# --8<-- [end:skip]


# --8<-- [start:freeze]
def freeze_start_up():
    # Called at the end of mysite/asgi.py, once `application` is built. The
    # objects that exist by then (Django, Channels, the server, your code)
    # live as long as the process, yet every full garbage collection walks
    # them all again, and every delivery due meanwhile waits. gc.freeze()
    # takes them out of the collector's sight; what is made later is
    # collected as before.
    gc.freeze()
# --8<-- [end:freeze]
