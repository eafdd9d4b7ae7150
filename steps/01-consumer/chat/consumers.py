"""The consumer: what happens on one WebSocket connection, from connect to disconnect.

A consumer is to a WebSocket what a view is to an HTTP request, except that
it lives as long as the connection does: Channels calls connect() once,
receive() for every frame the browser sends, and disconnect() once at the end.
"""

import json
import logging

from channels.generic.websocket import WebsocketConsumer

from . import protocol

logger = logging.getLogger(__name__)


class ChatConsumer(WebsocketConsumer):
    def connect(self):
        # The browser is waiting for an answer to its handshake. accept()
        # sends "101 Switching Protocols"; until then nothing can be sent.
        # (Closing here instead would refuse the handshake with HTTP 403.)
        self.accept()
        logger.info("connect: %s accepted", self.scope["path"])

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
        # json.dumps is the server's JSON.stringify; the browser JSON.parse-s it.
        self.send(text_data=json.dumps({"message": data["message"]}))

    def disconnect(self, close_code):
        # Called when daphne reports the end of the connection, with the
        # client's close code: the page's socket.close(1000) (1000), tab
        # closed (1001), network gone without a close frame (1006). Clean up
        # here; nothing can be sent any more. Not called if a handler raised
        # (daphne closes with 1011) or the consumer was cancelled.
        logger.info("disconnect: code %s", close_code)
