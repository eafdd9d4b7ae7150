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

Step 08 asks who is talking. Names come from the logged-in user (Django's own
login page, mysite/urls.py); a room whose name starts with "members_" is for
logged-in users only; a socket lives no longer than the session it was opened
with (a logout ends it at once, through the session's group and
chat/signals.py; anything else that ends a session, within
SESSION_CHECK_SECONDS); and every socket of a user joins that user's group,
so that a direct message can reach every tab of theirs.

Step 09 lets the rest of Django speak to the room: chat_announcement() relays
what a view or a command sends (chat/push.py), and a Message saved anywhere
but here reaches the room through chat/signals.py.

Step 10 expects clients that misbehave, on purpose or not: a flood of frames
(protocol.FrameBudget), a send that crosses the client's close (send()), a
consumer that ends without disconnect() (__call__), and a path that no route
matches (NoRouteConsumer). chat/protocol.py answers the frames themselves.

Step 11 sends each stored message's id to the browser, live and in the history, so that a page
that reconnects after a restart can merge what it missed without showing anything twice.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from importlib import import_module

from autobahn.exception import Disconnected
from channels.db import aclose_old_connections
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import aget_user, get_user_model
from django.db import DatabaseError
from django.http import HttpRequest

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


# Which rooms need a login: a rule anyone can read in the room's name, rather
# than a list hidden in the server. "members_lobby" is for members; "lobby" is
# open to all. (The underscore is inside chat/rooms.py's rule already.)
MEMBERS_ONLY_PREFIX = "members_"


def is_members_only(room_name):
    return room_name.startswith(MEMBERS_ONLY_PREFIX)


def user_group(user):
    # Every socket of one user, in every room, every tab and every browser,
    # joins this group, so that one group_send reaches them all (send_direct).
    # The id, not the username: group names allow only ASCII letters, digits,
    # "-", "_" and ".", and a username may hold "@" or "+" (or "é").
    return f"user_{user.pk}"


def session_group(session_key):
    # Every socket opened with one session (one browser's login: its tabs and
    # rooms) joins this group, so that a logout there ends those sockets and
    # no others: the same user, logged in on a phone, chats on. Hashed, since
    # the key is as good as a password and Redis shows group names to anyone
    # who can list its keys.
    return "session_" + hashlib.sha256(session_key.encode()).hexdigest()


# A session can end without a logout: a password changed (Django then logs
# out the user's other sessions), an account deactivated, a session expired
# or deleted on the server. No signal says so, so each logged-in socket asks
# again this often, and ends within this many seconds of the session. The
# price: two small queries (the session's row, the user's) per socket per
# period, on the one thread Django's async ORM runs every query on.
SESSION_CHECK_SECONDS = 5


async def still_logged_in(session_key, user):
    """Would an HTTP request that brought this session cookie now be this user's?"""
    # The question Django's AuthenticationMiddleware asks for every request,
    # asked afresh: aget_user() reads the session from its store (deleted or
    # expired: nobody), checks that the account may still log in (is_active)
    # and that the session was made with the user's current password.
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # aget_user() gives a session made with an old SECRET_KEY (one listed in
    # SECRET_KEY_FALLBACKS) a new key. No response here could carry that key
    # to the browser, which would be logged out: leave that to the next request.
    request.session.acycle_key = keep_the_key
    return (await aget_user(request)).pk == user.pk


async def keep_the_key():
    pass


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
        # The user as AuthMiddlewareStack loaded it, once, from the session
        # cookie of the handshake. It is never read again for this socket:
        # log out in another tab and this stays the logged-in user. That is
        # what the session's group and watch_the_session() below are for.
        self.user = self.scope["user"]
        # The browser is waiting for an answer to its handshake. accept()
        # sends "101 Switching Protocols"; until then nothing can be sent.
        # (Closing here instead would refuse the handshake with HTTP 403.)
        # accept(), send() and close() are coroutines here: await each one.
        await self.accept()
        logger.info("connect: %s accepted", self.scope["path"])
        # Step 10: one flood budget per connection. A consumer instance lives
        # exactly as long as its connection, so its attributes are
        # per-connection state.
        self.budget = protocol.FrameBudget()
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
        if is_members_only(self.room_name) and not self.user.is_authenticated:
            # Refused after accept(), like a bad room name, so that the page
            # can say why and link to the login page. Closed before the
            # consumer joins any group: an anonymous socket hears nothing here.
            error = protocol.ProtocolError("login_required", "this room is for logged-in users: log in first")
            await self.send(text_data=error.as_json())
            await self.close(code=protocol.LOGIN_REQUIRED)
            raise StopConsumer()
        if self.user.is_authenticated:
            # Joined first, before the room: from here on, a logout in this
            # session reaches this socket, and a direct message to this user.
            self.session_key = self.scope["session"].session_key
            self.session_group_name = session_group(self.session_key)
            await self.channel_layer.group_add(self.session_group_name, self.channel_name)
            self.user_group_name = user_group(self.user)
            await self.channel_layer.group_add(self.user_group_name, self.channel_name)
            self.watch_the_session()
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

    def watch_the_session(self):
        # A task of its own, beside the consumer, that sleeps between checks.
        # Whatever ends the consumer (a close, a handler that raised, daphne
        # cancelling it), its task is done, and that cancels the watcher too:
        # nothing keeps querying for a socket that is gone.
        watcher = asyncio.create_task(self.check_the_session())
        asyncio.current_task().add_done_callback(lambda _: watcher.cancel())

    async def check_the_session(self):
        why = "this session no longer logs you in (a logout, a new password, a deactivated account, or an expiry)"
        while True:
            await asyncio.sleep(SESSION_CHECK_SECONDS)  # read at each wait: a change applies at once
            try:
                # Channels does this before each handler; this task is none.
                await aclose_old_connections()
                if await still_logged_in(self.session_key, self.user):
                    continue
                # The same event a logout sends, through this socket's own
                # channel, so that session_ended() runs in turn with the other
                # handlers, never in the middle of one.
                await self.channel_layer.send(self.channel_name, {"type": "session.ended", "why": why})
                return
            except Exception as error:  # noqa: BLE001 - whatever failed, the check must go on
                # The database, the session store or the layer failed, not
                # the session: one line, and ask again next time. A check
                # that died here would let this socket outlive its session.
                logger.warning("session check failed (%s: %s); again in %s s", type(error).__name__, error,
                               SESSION_CHECK_SECONDS)

    async def receive(self, text_data=None, bytes_data=None):
        # One call per frame: text frames arrive as str, binary ones as bytes.
        try:
            self.budget.spend()
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
        to = data.get("to")
        event = {
            # The layer hands this dict to the receiving consumer, which calls
            # the method the "type" names, dots turned into underscores:
            # "chat.message" runs chat_message(event).
            "type": "chat.message",
            "message": data["message"],
            "user": self.username,
            "direct": bool(to),
            # Who sent it, so that each receiving consumer can tell its browser
            # whether the message is its own (two tabs may share one user name).
            "sender": self.channel_name,
        }
        if to:
            # A direct message is between two users: it is not stored, or the
            # room's history would show it to everyone who joins later.
            await self.send_direct(to, event)
        else:
            # Stored first, sent second: what the room hears is what a
            # newcomer will read. Django's async ORM runs the INSERT on its
            # thread for database work while this coroutine waits. (The other
            # way to the same end is channels.db.database_sync_to_async around
            # a plain function that calls Message.objects.create(): the docs
            # page shows both.)
            stored = Message(room=self.room_name, author=self.username, text=data["message"])
            # Step 09: chat/signals.py pushes every new Message to its room,
            # except one a consumer sends itself, below: this mark says so.
            # So the row is made first and saved with asave(), the async twin
            # of save(), where acreate() would save it before it is marked.
            stored.sent_by_consumer = True
            try:
                await stored.asave()
            except DatabaseError:
                # A full disk, a locked or missing table: the sender is told,
                # and nobody else sees a message that history will not have.
                logger.exception("receive: the message was not stored")
                error = protocol.ProtocolError("not_saved", "the message could not be stored, so it was not sent")
                await self.send(text_data=error.as_json())
                return
            # The id travels with the event so that a joining consumer can
            # tell what its history already showed, and (step 11) on to the
            # browser, which tells the same after it reconnects.
            event["id"] = stored.id
            # To everyone in the room, this connection included: the layer
            # sends a copy of the event to each channel in the group.
            # While this await waits for the layer, this connection's task
            # steps aside and the event loop serves the other connections.
            await self.channel_layer.group_send(self.group_name, event)

    async def send_direct(self, to, event):
        # "to" is a username, and the message goes to that user's group
        # (user_group()), so it reaches every tab the user has open, in any
        # room, in any process on Redis. The browser names a person; channel
        # and group names stay on the server, where no client can forge one.
        if not self.user.is_authenticated:
            # An anonymous name is drawn per tab and has no group: nobody
            # could answer it, so anonymous tabs neither send nor receive these.
            detail = "direct messages are between logged-in users: log in first"
            await self.send(text_data=protocol.ProtocolError("bad_recipient", detail).as_json())
            return
        # One query, for the id that the group is named after. Only a user
        # who exists and may log in: a made-up name, or a deactivated
        # account, gets an answer, and no group is made.
        recipient = None
        if isinstance(to, str):
            recipient = await get_user_model().objects.only("pk").filter(username=to, is_active=True).afirst()
        if recipient is None:
            detail = f'"to" must be the username of an active user: there is none named {str(to)[:40]!r}'
            await self.send(text_data=protocol.ProtocolError("bad_recipient", detail).as_json())
            return
        # Who sent it, by user: every tab of the sender's shows it as sent.
        event["from_user"] = self.user.pk
        await self.channel_layer.group_send(user_group(recipient), event)
        if recipient.pk != self.user.pk:
            # The sender's copy, through the sender's own group: every tab of
            # theirs shows the conversation.
            await self.channel_layer.group_send(self.user_group_name, event)

    async def send(self, text_data=None, bytes_data=None, close=False):
        # A consumer also sends when another connection tells it to
        # (chat_message, session_ended), so a send can cross its own client's
        # close frame on the wire. Once that close has begun, daphne refuses
        # to send (autobahn's Disconnected; Channels issue 1820) and the
        # consumer would crash with a traceback. No one is left to read it.
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Disconnected:
            pass

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
        if event["direct"] and self.user.is_authenticated and event.get("from_user") == self.user.pk:
            own = True  # a direct message this user sent, from this tab or another of theirs
        said = {"message": event["message"], "user": event["user"], "direct": event["direct"], "own": own}
        if "id" in event:
            # Step 11: a stored message's id, the same as in the history. A direct message is not
            # stored (send_direct), so it has none, and is never in a history.
            said["id"] = event["id"]
        await self.send(text_data=json.dumps(said))

    async def chat_announcement(self, event):
        # Step 09: sent by the rest of Django (a view, a command: chat/push.py),
        # not by any connection. It gets a key of its own, "announcement",
        # rather than a "user" name, which a person could sign up with.
        await self.send(text_data=json.dumps({"announcement": event["message"]}))

    async def session_ended(self, event):
        # A "session.ended" event: sent to this session's group by
        # chat/signals.py when the user logged out in this browser (this
        # process or another: Redis carries it), or to this channel by
        # check_the_session(). The socket was opened with a session that no
        # longer logs anyone in, so it ends too: the page is told why, then
        # the close code, as for a room that needs a login.
        error = protocol.ProtocolError("session_ended", f"{event['why']}; log in again")
        await self.send(text_data=error.as_json())
        await self.close(code=protocol.LOGIN_REQUIRED)
        # Leave the groups and stop now, not at disconnect(): a frame the
        # browser sent before it saw the close must not be said, or stored,
        # in the name of a user who has logged out.
        await self.leave_groups()
        raise StopConsumer()

    async def leave_groups(self):
        # Leaving a group one is not in does nothing, so this may run twice.
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
        if hasattr(self, "user_group_name"):
            await self.channel_layer.group_discard(self.user_group_name, self.channel_name)
            await self.channel_layer.group_discard(self.session_group_name, self.channel_name)

    async def disconnect(self, close_code):
        # Called when daphne reports the end of the connection, with the
        # client's close code: the page's socket.close(1000) (1000), tab
        # closed (1001), network gone without a close frame (1006). Clean up
        # here; nothing can be sent any more. Not called if a handler raised
        # (daphne closes with 1011) or the consumer was cancelled.
        logger.info("disconnect: code %s", close_code)
        # Leave the room's group. Forgotten, the layer would go on queueing
        # the room's messages for a channel that nobody reads any more.
        # Step 08: and the session's and the user's groups, through leave_groups().
        await self.leave_groups()

    async def __call__(self, scope, receive, send):
        # The consumer's ASGI entry point: the coroutine daphne runs for the
        # connection, with Channels' connect/receive/disconnect loop inside.
        # disconnect() runs only when that loop reads the end of the
        # connection. If a handler raises, or daphne cancels the consumer,
        # it never does, and the group would keep a channel that nobody
        # reads (for a day, on Redis). So leave the room here too. (This
        # method is async in every consumer, so it awaits the layer itself.)
        try:
            await super().__call__(scope, receive, send)
        except BaseException:  # an exception, or asyncio's CancelledError
            # If the layer itself is what failed, this may fail too: then
            # the first error is the one to see, so let this one go.
            with contextlib.suppress(Exception):
                await self.leave_groups()
            raise


class NoRouteConsumer(AsyncWebsocketConsumer):
    """The catch-all route: says that nothing lives at this path, then closes with 4404."""

    async def connect(self):
        await self.accept()
        error = protocol.ProtocolError("no_route", f"no WebSocket route for {self.scope['path']}")
        await self.send(text_data=error.as_json())
        await self.close(code=protocol.NO_ROUTE)
