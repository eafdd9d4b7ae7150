"""The consumers: what happens on one WebSocket connection, from connect to disconnect.

A consumer is to a WebSocket what a view is to an HTTP request, except that
it lives as long as the connection does: Channels calls connect() once,
receive() for every frame the browser sends, and disconnect() once at the end.
"""

import json
import logging
import secrets

from asgiref.sync import async_to_sync
from channels.exceptions import StopConsumer
from channels.generic.websocket import WebsocketConsumer

from . import protocol

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


class ChatConsumer(WebsocketConsumer):
    def connect(self):
        # The scope is the connection's request: path, headers, user, and
        # the route's keyword arguments, as a view gets them from urls.py.
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.username = username(self.scope)
        # The browser is waiting for an answer to its handshake. accept()
        # sends "101 Switching Protocols"; until then nothing can be sent.
        # (Closing here instead would refuse the handshake with HTTP 403.)
        self.accept()
        logger.info("connect: %s accepted", self.scope["path"])
        try:
            protocol.check_room_name(self.room_name)
        except protocol.ProtocolError as error:
            # Accepted first so that the browser can be told why: daphne
            # drops close reasons, so the why travels as an event.
            self.send(text_data=error.as_json())
            self.close(code=protocol.BAD_ROOM_NAME)
            # Stop this consumer here: frames the browser sent before it saw
            # the close would otherwise still arrive in receive().
            raise StopConsumer()
        # A group is a named set of channel names that the layer keeps for
        # us. Every connection to this room joins the room's group, so one
        # group_send reaches them all. (protocol.py's room check keeps
        # "chat_" + room inside what a group name allows.)
        self.group_name = f"chat_{self.room_name}"
        async_to_sync(self.channel_layer.group_add)(self.group_name, self.channel_name)
        # With a channel layer configured, each consumer gets a name of its
        # own, self.channel_name, and listens on it: an address inside the
        # layer. Tell the browser, so that the page can show it.
        hello = {
            "user": self.username,  # its own name, for the page to show
            "channel_name": self.channel_name,
        }
        self.send(text_data=json.dumps(hello))

    def receive(self, text_data=None, bytes_data=None):
        # One call per frame: text frames arrive as str, binary ones as bytes.
        try:
            data = protocol.parse_frame(text_data, bytes_data)
        except protocol.ProtocolError as error:
            # A client's mistake is answered, not raised: an exception here
            # would close the connection with 1011 and log a traceback.
            self.send(text_data=error.as_json())
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
        # To everyone in the room, this connection included: the layer
        # sends a copy of the event to each channel in the group.
        # The channel layer's methods are async; async_to_sync lets a sync
        # consumer wait for them.
        async_to_sync(self.channel_layer.group_send)(self.group_name, event)

    def chat_message(self, event):
        # Runs for every "chat.message" event that arrives on this consumer's
        # channel, whoever sent it. Only now does it go down the WebSocket.
        # json.dumps is the server's JSON.stringify; the browser JSON.parse-s it.
        own = event["sender"] == self.channel_name  # each copy is handled by its own consumer
        self.send(
            text_data=json.dumps({"message": event["message"], "user": event["user"], "own": own})
        )

    def disconnect(self, close_code):
        # Called when daphne reports the end of the connection, with the
        # client's close code: the page's socket.close(1000) (1000), tab
        # closed (1001), network gone without a close frame (1006). Clean up
        # here; nothing can be sent any more. Not called if a handler raised
        # (daphne closes with 1011) or the consumer was cancelled.
        logger.info("disconnect: code %s", close_code)
        # Leave the room's group. Forgotten, the layer would go on queueing
        # the room's messages for a channel that nobody reads any more.
        async_to_sync(self.channel_layer.group_discard)(self.group_name, self.channel_name)
