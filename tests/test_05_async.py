"""Step 05, async consumers: the same chat, with handlers that run on the event loop and wait on nobody.

There is no browser check of its own here: the page cannot tell a sync
consumer from an async one, and the checks of the steps before (browser ones
included) run on this step too, so the chat still works as it did.
"""

import ast
import asyncio
import contextlib
import inspect
import json
import threading

import pytest
from conftest import ORIGIN, STEP, TIMEOUT, receive_json

HANDLERS = ["connect", "receive", "chat_message", "disconnect"]


@contextlib.contextmanager
def explained():
    """Turn the two errors of a half-async consumer into hints: async_to_sync or the ORM on the loop."""
    from django.core.exceptions import SynchronousOnlyOperation

    try:
        yield
        return
    except SynchronousOnlyOperation as error:
        hint = (f"a handler queried the database on the event loop ({error}): put the query in a function "
                "decorated with channels.db.database_sync_to_async and await it (chat/consumers.py)")
    except RuntimeError as error:
        if "AsyncToSync" not in str(error):
            raise
        hint = ("async_to_sync cannot wait on the event loop's own thread: in an async consumer, write "
                "`await self.channel_layer.group_send(...)` (and group_add, group_discard, send) directly "
                "(chat/consumers.py)")
    # Failed outside the except, so that the report shows the hint, not the consumer's insides.
    pytest.fail(hint)


def test_chat_consumer_is_an_async_websocket_consumer():
    from channels.generic.websocket import AsyncWebsocketConsumer

    from chat.consumers import ChatConsumer

    assert issubclass(ChatConsumer, AsyncWebsocketConsumer), (
        "ChatConsumer should subclass AsyncWebsocketConsumer (chat/consumers.py): a WebsocketConsumer "
        "runs every connection's handlers on one shared worker thread"
    )


@pytest.mark.parametrize("method", HANDLERS)
def test_every_handler_is_a_coroutine_function(method):
    from channels.generic.websocket import AsyncWebsocketConsumer

    from chat.consumers import ChatConsumer

    assert issubclass(ChatConsumer, AsyncWebsocketConsumer), (
        "ChatConsumer should subclass AsyncWebsocketConsumer (chat/consumers.py): a sync consumer calls its "
        "handlers without awaiting them, so an `async def` handler there never runs"
    )
    assert inspect.iscoroutinefunction(getattr(ChatConsumer, method)), (
        f"ChatConsumer.{method} should be `async def` (chat/consumers.py): an AsyncWebsocketConsumer awaits "
        "its handlers"
    )


def test_consumers_no_longer_need_async_to_sync():
    from chat import consumers

    code = ast.parse(inspect.getsource(consumers))
    names = {node.id for node in ast.walk(code) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(code) if isinstance(node, ast.Attribute)}
    names |= {alias.name for node in ast.walk(code) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert "async_to_sync" not in names, (
        "chat/consumers.py still names async_to_sync: an async consumer awaits the channel layer's coroutines "
        "directly, `await self.channel_layer.group_send(...)`, and async_to_sync would fail on the event "
        "loop's thread; remove the calls and the import"
    )


async def test_handlers_run_on_the_event_loop_thread(connect, monkeypatch):
    from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

    # Every frame a consumer sends goes through its base class's send(): note the thread it runs on.
    threads = set()
    for base in (WebsocketConsumer, AsyncWebsocketConsumer):
        real = base.send

        def noted(self, *args, real=real, **kwargs):
            threads.add(threading.current_thread().name)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(base, "send", noted)
    with explained():
        communicator = await connect()
        await communicator.send_to(text_data=json.dumps({"message": "which thread?"}))
        await receive_json(communicator, "receive() should answer through the room: `await "
                                         "self.channel_layer.group_send(...)`, and `await self.send(...)` in "
                                         "chat_message(); a coroutine that nobody awaits never runs "
                                         "(chat/consumers.py)")
    elsewhere = threads - {threading.current_thread().name}
    assert not elsewhere, (
        f"connect() and chat_message() sent from the thread {sorted(elsewhere)}, not from the event loop's: a "
        "WebsocketConsumer's handlers go through one worker thread that every connection shares; make "
        "ChatConsumer an AsyncWebsocketConsumer (chat/consumers.py)"
    )


def held_at(gate, application):
    """ASGI middleware: everything this connection sends waits until `gate` is set.

    While it waits, the consumer's handler is busy, as one awaiting a slow
    query or a slow client would be.
    """

    async def app(scope, receive, send):
        async def send_when_open(message):
            await gate.wait()
            await send(message)

        return await application(scope, receive, send_when_open)

    return app


async def test_a_busy_connection_does_not_hold_up_the_others(connect):
    from channels.testing import WebsocketCommunicator

    from mysite.asgi import application

    gate = asyncio.Event()
    gate.set()
    busy = WebsocketCommunicator(held_at(gate, application), STEP.ws_path, headers=[(b"origin", ORIGIN.encode())])
    with explained():
        other = await connect()
    try:
        try:
            assert (await busy.connect(timeout=TIMEOUT))[0], "connect() should accept the handshake: await self.accept()"
            await receive_json(busy, 'connect() should first send {"channel_name": ...}')
            # First, with nothing held: both hear the room. An `await` forgotten before send() or
            # group_send() fails here, since a coroutine that nobody awaits never runs.
            await busy.send_to(text_data=json.dumps({"message": "warming up"}))
            for who in (busy, other):
                with explained():
                    await receive_json(who, "a message to the room should reach its members: in an async "
                                            "consumer, await every coroutine, self.send() and the channel "
                                            "layer's calls (chat/consumers.py)")
            gate.clear()
            # The busy connection's chat_message() now waits at the gate with this message.
            await busy.send_to(text_data=json.dumps({"message": "I'll be a while"}))
            hint = ("while one connection's handler waits, the others should still be served: a sync "
                    "consumer's handlers take turns on one worker thread; an AsyncWebsocketConsumer's don't "
                    "(chat/consumers.py)")
            assert (await receive_json(other, hint))["message"] == "I'll be a while"
            await other.send_to(text_data=json.dumps({"message": "still here"}))
            assert (await receive_json(other, hint))["message"] == "still here"
        finally:
            gate.set()
        caught_up = await receive_json(busy, "once let go, the busy connection should get the message it was "
                                             "held with: await self.send(...) in chat_message() (chat/consumers.py)")
        assert caught_up.get("message") == "I'll be a while", (
            f"once let go, the busy connection got {caught_up} where the message it was held with is right"
        )
    finally:
        if not busy.future.done():  # else it crashed or timed out, and the check has failed already
            await busy.disconnect(timeout=TIMEOUT)


async def test_no_handler_blocks_the_event_loop(connect):
    from channels.generic.websocket import AsyncWebsocketConsumer

    from chat.consumers import ChatConsumer

    if not issubclass(ChatConsumer, AsyncWebsocketConsumer):
        pytest.fail("only an async consumer's handlers run on the event loop, where a blocking call would "
                    "stop every connection: make ChatConsumer an AsyncWebsocketConsumer (chat/consumers.py)")
    loop = asyncio.get_running_loop()
    longest = 0.0
    beating = True

    async def heartbeat():
        # Ticks every 10 ms; a tick that comes late measures how long something held the loop.
        nonlocal longest
        last = loop.time()
        while beating:
            await asyncio.sleep(0.01)
            longest = max(longest, loop.time() - last - 0.01)
            last = loop.time()

    beats = asyncio.create_task(heartbeat())
    failure = None
    try:
        # Every handler runs at least once: connect, receive (a message, a bad frame), chat_message, disconnect.
        with explained():
            alice, bob = await connect("/ws/chat/loop/"), await connect("/ws/chat/loop/")
            await alice.send_to(text_data=json.dumps({"message": "to the room"}))
            await bob.send_to(text_data="not json")
            hint = "the room should still chat: await every coroutine (chat/consumers.py)"
            await receive_json(alice, hint)
            for _ in range(2):
                await receive_json(bob, hint)
            await bob.disconnect(timeout=TIMEOUT)
    except pytest.fail.Exception as error:
        failure = error  # a late answer: first, see whether a handler held the loop meanwhile
    finally:
        beating = False
        await beats
    assert longest < 1, (
        f"a handler held the event loop for {longest:.1f} s without an await, where under 1 s is right: in an "
        "async consumer, time.sleep(), a blocking library call or an ORM query stops every connection of the "
        "process. Use await asyncio.sleep(), sync_to_async(..., thread_sensitive=False), or "
        "database_sync_to_async (chat/consumers.py)"
    )
    if failure:
        raise failure
