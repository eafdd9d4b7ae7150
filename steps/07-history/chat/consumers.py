"""The consumers: what happens on one WebSocket connection, from connect to disconnect.

A consumer is to a WebSocket what a view is to an HTTP request, except that
it lives as long as the connection does: Channels calls connect() once,
receive() for every frame the browser sends, and disconnect() once at the end.

Step 05 writes them as coroutines (async def) on AsyncWebsocketConsumer:
the same chat, but connections no longer wait on each other's handlers.

Step 07 keeps the room's messages in the database (chat/models.py): each one
is stored as it is sent, and a connection that joins is first told up to the
last 50 (as many as fit in HISTORY_BYTES), with Django's async ORM, awaited
like everything else here.
"""

import json
import logging
import secrets

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError

from . import protocol
from .models import MAX_MESSAGE_LENGTH, Message, room_history

logger = logging.getLogger(__name__)


def username(scope):
    # scope["user"] is what request.user is in a view; AuthMiddlewareStack
    # loaded it from the session cookie that came with the handshake.
    user = scope["user"]
    if user.is_authenticated:
        return user.username
    # Nobody logged in: a name of this connection's own (e.g. "anonymous-3f2a"),
    # drawn at random when it connects, so that two windows can be told apart.
    return f"anonymous-{secrets.token_hex(2)}"


# A sync consumer's handlers all run on one worker thread that every
# connection in the process shares (SyncConsumer hands each one to it
# through database_sync_to_async): one slow handler, and every other
# connection waits its turn. An async consumer's handlers are coroutines
# on daphne's event loop instead: whenever one awaits, the others run.
# (Channels still passes each event through that thread for a moment, to
# close stale database connections, but no handler runs or waits there.)
# The price: nothing in them may block, so no time.sleep(), and the ORM
# only through its async methods (acreate, async for) or
# database_sync_to_async (chat/models.py shows both).
class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        # The scope is the connection's request: path, headers, user, and
        # the route's keyword arguments, as a view gets them from urls.py.
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.username = username(self.scope)
        # The browser is waiting for an answer to its handshake. accept()
        # sends "101 Switching Protocols"; until then nothing can be sent.
        # (Closing here instead would refuse the handshake with HTTP 403.)
        # accept(), send() and close() are coroutines here: await each one.
        await self.accept()
        logger.info("connect: %s accepted", self.scope["path"])
        try:
            protocol.check_room_name(self.room_name)
        except protocol.ProtocolError as error:
            # Accepted first so that the browser can be told why: daphne
            # drops close reasons, so the why travels as an event.
            await self.send(text_data=error.as_json())
            await self.close(code=protocol.BAD_ROOM_NAME)
            # Stop this consumer here: frames the browser sent before it saw
            # the close would otherwise still arrive in receive().
            raise StopConsumer()
        # A group is a named set of channel names that the layer keeps for
        # us. Every connection to this room joins the room's group, so one
        # group_send reaches them all. (protocol.py's room check keeps
        # "chat_" + room inside what a group name allows.)
        self.group_name = f"chat_{self.room_name}"
        # The layer's methods are coroutines already: await them as they are,
        # with no async_to_sync and no trip through the worker thread.
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        # The history is read after group_add, never before. A message stored
        # between the two would otherwise be in neither: too late for the
        # query, and sent to the group before this channel was in it. Read
        # after, nothing falls between, and nothing new can overtake it: the
        # room's events wait on this channel until connect() has returned.
        # The price is the other way round: a message stored just before the
        # query may also come as an event. Its id says so (chat_message).
        # room_history() uses the async ORM; a plain Message.objects... call
        # here would raise SynchronousOnlyOperation: Django refuses to block
        # the event loop with a query (docs/steps/07-history.md).
        history = await room_history(self.room_name)
        self.history_ids = {message.id for message in history}
        # With a channel layer configured, each consumer gets a name of its
        # own, self.channel_name, and listens on it: an address inside the
        # layer. Tell the browser, so that the page can show it.
        hello = {
            "user": self.username,  # its own name, for the page to show
            "channel_name": self.channel_name,
            # What was said before, oldest first, in this same first frame, so
            # that it comes before anything new. Text only: the page shows it
            # with textContent, as it shows live messages.
            "history": [message.as_event() for message in history],
        }
        await self.send(text_data=json.dumps(hello))

    async def receive(self, text_data=None, bytes_data=None):
        # One call per frame: text frames arrive as str, binary ones as bytes.
        try:
            data = protocol.parse_frame(text_data, bytes_data)
            if len(data["message"]) > MAX_MESSAGE_LENGTH:
                # Refused before it is stored or sent: the table would refuse
                # it anyway (chat/models.py), and what the server sends must
                # stay under daphne's 1 MiB as much as what it receives.
                detail = f"a message may hold at most {MAX_MESSAGE_LENGTH} characters"
                raise protocol.ProtocolError("too_long", detail)
        except protocol.ProtocolError as error:
            # A client's mistake is answered, not raised: an exception here
            # would close the connection with 1011 and log a traceback.
            await self.send(text_data=error.as_json())
            return
        logger.info("receive: %r", data["message"])
        event = {
            # The layer hands this dict to the receiving consumer, which calls
            # the method the "type" names, dots turned into underscores:
            # "chat.message" runs chat_message(event).
            "type": "chat.message",
            "message": data["message"],
            "user": self.username,
            # Who sent it, so that each receiving consumer can tell its browser
            # whether the message is its own (two tabs may share one user name).
            "sender": self.channel_name,
        }
        # Stored first, sent second: what the room hears is what a
        # newcomer will read. acreate() is Django's async twin of
        # create(): the INSERT runs on Django's thread for database work
        # while this coroutine waits. (The other way to the same end is
        # channels.db.database_sync_to_async around a plain function that
        # calls Message.objects.create(): the docs page shows both.)
        try:
            stored = await Message.objects.acreate(
                room=self.room_name, author=self.username, text=data["message"]
            )
        except DatabaseError:
            # A full disk, a locked or missing table: the sender is told,
            # and nobody else sees a message that history will not have.
            logger.exception("receive: the message was not stored")
            error = protocol.ProtocolError("not_saved", "the message could not be stored, so it was not sent")
            await self.send(text_data=error.as_json())
            return
        # The id travels with the event (never to the browser) so that a
        # joining consumer can tell what its history already showed.
        event["id"] = stored.id
        # To everyone in the room, this connection included: the layer
        # sends a copy of the event to each channel in the group.
        # While this await waits for the layer, this connection's task
        # steps aside and the event loop serves the other connections.
        await self.channel_layer.group_send(self.group_name, event)

    async def chat_message(self, event):
        # Runs for every "chat.message" event that arrives on this consumer's
        # channel, whoever sent it. Only now does it go down the WebSocket.
        # json.dumps is the server's JSON.stringify; the browser JSON.parse-s it.
        if event.get("id") in self.history_ids:
            # The history showed it already: sending it again would show it
            # twice. The ids themselves, not "up to the newest": on a database
            # with several writers (PostgreSQL), a row with a lower id can
            # commit after the read, and it is new to this connection.
            return
        own = event["sender"] == self.channel_name  # each copy is handled by its own consumer
        await self.send(
            text_data=json.dumps({"message": event["message"], "user": event["user"], "own": own})
        )

    async def disconnect(self, close_code):
        # Called when daphne reports the end of the connection, with the
        # client's close code: the page's socket.close(1000) (1000), tab
        # closed (1001), network gone without a close frame (1006). Clean up
        # here; nothing can be sent any more. Not called if a handler raised
        # (daphne closes with 1011) or the consumer was cancelled.
        logger.info("disconnect: code %s", close_code)
        # Leave the room's group. Forgotten, the layer would go on queueing
        # the room's messages for a channel that nobody reads any more.
        await self.channel_layer.group_discard(self.group_name, self.channel_name)
