"""Step 06, scaling out: a Redis channel layer, so that a room spans several server processes.

These checks start their own redis-server (Debian's) on a free loopback port
and several `daphne mysite.asgi:application` processes of the step; without
a redis-server binary they are skipped with the reason.
"""

import asyncio
import contextlib
import json
import runpy

import pytest
from conftest import IDLE_SECONDS, LIVE_TIMEOUT, STEP_DIR, chat_both_ways, receive_json, recv_json, ws_open

SETTINGS = STEP_DIR / "mysite" / "settings.py"


def channel_layers(monkeypatch, redis_url):
    """CHANNEL_LAYERS as the step's settings.py makes it with REDIS_URL set to this (None: unset)."""
    if redis_url is None:
        monkeypatch.delenv("REDIS_URL", raising=False)
    else:
        monkeypatch.setenv("REDIS_URL", redis_url)
    return runpy.run_path(str(SETTINGS))["CHANNEL_LAYERS"]


def test_redis_url_selects_the_redis_channel_layer(monkeypatch):
    layer = channel_layers(monkeypatch, "redis://127.0.0.1:6379/0")["default"]
    assert layer["BACKEND"].startswith("channels_redis."), (
        "with REDIS_URL set, mysite/settings.py should make CHANNEL_LAYERS a channels_redis layer "
        f"(channels_redis.core.RedisChannelLayer), not {layer['BACKEND']}"
    )
    assert "redis://127.0.0.1:6379/0" in repr(layer.get("CONFIG")), (
        'with REDIS_URL=redis://127.0.0.1:6379/0, CHANNEL_LAYERS\'s CONFIG "hosts" (mysite/settings.py) should '
        f"hold that address, read with os.environ.get(\"REDIS_URL\"); it is {layer.get('CONFIG')}"
    )
    assert isinstance(layer["CONFIG"].get("hosts"), list), (
        'CHANNEL_LAYERS\'s "hosts" (mysite/settings.py) should be a list, even of one Redis: '
        '[REDIS_URL], or [{"address": REDIS_URL, ...}]; channels_redis refuses anything else at the '
        "first connection"
    )


def test_redis_layer_has_room_for_a_crowd_and_a_quiet_room(monkeypatch):
    # The crowd and the quiet-room checks below show these limits over daphne, but whether 100 layer
    # calls overlap depends on the machine's load, and the quiet minute is left out of `make check`:
    # here the settings themselves are read.
    layer = channel_layers(monkeypatch, "redis://127.0.0.1:6379/0")["default"]
    config = layer.get("CONFIG", {})
    hosts = config.get("hosts")
    if not layer["BACKEND"].startswith("channels_redis.") or not isinstance(hosts, list) or not hosts:
        pytest.fail("with REDIS_URL set, mysite/settings.py should make CHANNEL_LAYERS a channels_redis layer "
                    'whose "hosts" is a list: do task 1 first')
    host = hosts[0] if isinstance(hosts[0], dict) else {}
    assert (host.get("max_connections") or 100) >= 200, (
        f'the Redis host\'s "max_connections" is {host.get("max_connections") or "unset (100)"}, where 200 or more '
        "is right: redis-py's pool stops at 100 by default, and each layer call in flight holds one, so a crowd "
        'that joins or leaves at once gets "Too many connections". Make the host a dict, '
        '{"address": REDIS_URL, "max_connections": 1000, ...} (CHANNEL_LAYERS in mysite/settings.py)'
    )
    assert (host.get("socket_timeout") or 5) > 5, (
        f'the Redis host\'s "socket_timeout" is {host.get("socket_timeout") or "unset (5 s)"}, where more than 5 s '
        "is right: redis-py 8 gives up on a read after 5 s, and the layer waits for a quiet room's next message "
        'with a blocking pop that Redis holds open for 5 s. Add "socket_timeout": 15 to the host '
        "(CHANNEL_LAYERS in mysite/settings.py), or quiet tabs close with 1011"
    )


@pytest.mark.regression("with no REDIS_URL, step 06 keeps step 05's in-memory layer")
def test_without_redis_url_the_in_memory_layer_stays_the_default(monkeypatch):
    layer = channel_layers(monkeypatch, None)["default"]
    assert layer["BACKEND"] == "channels.layers.InMemoryChannelLayer", (
        "with no REDIS_URL, mysite/settings.py should keep the in-memory layer, so the step runs without Redis"
    )


@pytest.fixture
def redis_layer(redis_server, monkeypatch, settings):
    """In process, the step's channel layer as it is with REDIS_URL pointing at the test's Redis."""
    settings.CHANNEL_LAYERS = channel_layers(monkeypatch, redis_server.url)
    return redis_server


@pytest.mark.beside
async def test_in_process_the_room_goes_through_redis(redis_layer, connect):
    alice, bob = await connect("/ws/chat/inprocess/"), await connect("/ws/chat/inprocess/")
    members = {name.decode() for name in redis_layer.client().zrange("asgi:group:chat_inprocess", 0, -1)}
    assert members == {alice.channel_name, bob.channel_name}, (
        f"Redis's asgi:group:chat_inprocess holds {members or 'nothing'}, where the two channels in the room "
        "should be: with REDIS_URL set, CHANNEL_LAYERS (mysite/settings.py) should be a RedisChannelLayer, "
        "which keeps each group in Redis as a sorted set, asgi:group:<group name>"
    )
    await alice.send_to(text_data=json.dumps({"message": "via Redis"}))
    for member in (alice, bob):
        heard = await receive_json(member, "group_send through Redis should reach everyone in the room")
        assert heard.get("message") == "via Redis", f"a member got {heard} instead of the room's message"


@pytest.fixture(scope="module")
def two_on_memory(start_server):
    """Two daphne processes of the step without REDIS_URL: each has an in-memory layer of its own."""
    return tuple(start_server(2, REDIS_URL=None))


@pytest.mark.regression("it shows the limit step 06 lifts: an in-memory layer per process")
async def test_two_processes_without_redis_do_not_hear_each_other(two_on_memory):
    first, second = two_on_memory
    async with ws_open(first, "/ws/chat/split/") as alice, ws_open(second, "/ws/chat/split/") as bob:
        await alice.send(json.dumps({"message": "anyone there?"}))
        reply = await recv_json(alice, "the sender should hear its own message in its own process")
        assert reply["message"] == "anyone there?"
        with pytest.raises(asyncio.TimeoutError):
            # The failure this step fixes: same room, other process, nothing arrives.
            await asyncio.wait_for(bob.recv(), 0.5)


async def test_two_processes_on_one_redis_hear_each_other(two_on_redis):
    first, second = two_on_redis
    said = {"from the first process", "from the second process"}

    async def listen(ws):
        heard = set()
        with contextlib.suppress(asyncio.TimeoutError):
            while heard != said:
                heard.add(json.loads(await asyncio.wait_for(ws.recv(), LIVE_TIMEOUT)).get("message"))
        return heard

    async with ws_open(first, "/ws/chat/shared/") as alice, ws_open(second, "/ws/chat/shared/") as bob:
        await alice.send(json.dumps({"message": "from the first process"}))
        await bob.send(json.dumps({"message": "from the second process"}))
        # Both listen at once, so that a failing run waits LIVE_TIMEOUT once, not once for each.
        heard = dict(zip(("alice", "bob"), await asyncio.gather(listen(alice), listen(bob))))
    for who, what in heard.items():
        assert what == said, (
            f"{who} heard {what or 'nothing'} within {LIVE_TIMEOUT} s, where both messages are right, the one "
            "said on its own process and the one said on the other: with REDIS_URL set, both processes "
            "should share one channel layer in Redis (CHANNEL_LAYERS in mysite/settings.py)"
        )
    for live in two_on_redis:
        live.assert_no_traceback()


async def test_everyone_joining_and_leaving_at_once_leaves_no_member_in_redis(two_on_redis, redis_server):
    import websockets

    first = two_on_redis[0]
    redis = redis_server.client()

    async def join(stack):
        try:
            ws = await stack.enter_async_context(ws_open(first, "/ws/chat/exodus/", hello=False))
            await asyncio.wait_for(ws.recv(), LIVE_TIMEOUT)  # the channel name: connect() got past group_add
            return ws
        except (websockets.ConnectionClosed, websockets.InvalidHandshake, OSError, asyncio.TimeoutError) as error:
            return error  # e.g. closed with 1011 (connect() raised), or a handshake the server dropped

    async with contextlib.AsyncExitStack() as stack:
        room = await asyncio.gather(*(join(stack) for _ in range(200)))
        refused = [ws for ws in room if isinstance(ws, Exception)]
        joined = redis.zcard("asgi:group:chat_exodus")
    # All 200 closed at once as the stack unwound; their disconnect()s run side by side.
    deadline = asyncio.get_running_loop().time() + LIVE_TIMEOUT
    while redis.zcard("asgi:group:chat_exodus") and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    left = redis.zcard("asgi:group:chat_exodus")
    hint = ('an async consumer holds a Redis connection while it awaits the layer: "max_connections" in the '
            "Redis host of CHANNEL_LAYERS (mysite/settings.py) must allow one per WebSocket, or "
            'group_add/group_discard fail with "Too many connections"')
    if not refused and joined == 0:
        pytest.fail("200 clients joined the room, but none is in its group in Redis: with REDIS_URL set, "
                    "CHANNEL_LAYERS (mysite/settings.py) should be a channels_redis layer")
    assert not refused and joined == 200, (
        f"of 200 clients that joined at once, {len(refused)} were dropped and {joined} are in the group: {hint}"
    )
    assert left == 0, f"{left} of 200 channels stayed in the group after everyone left: {hint}"
    first.assert_no_traceback()


async def test_a_dropped_connection_leaves_its_group_in_redis(two_on_redis, redis_server):
    first, second = two_on_redis
    redis = redis_server.client()
    async with ws_open(first, "/ws/chat/cable/"), ws_open(second, "/ws/chat/cable/") as dropped:
        members = redis.zcard("asgi:group:chat_cable")
        assert members == 2, (
            f"{members} channels are in Redis's asgi:group:chat_cable, where the 2 connections to chat/cable, one "
            "on each process, are right: with REDIS_URL set, CHANNEL_LAYERS (mysite/settings.py) should be a "
            "RedisChannelLayer, which keeps the room's group in Redis"
        )
        dropped.transport.abort()  # no close frame: the client's network is simply gone
        deadline = asyncio.get_running_loop().time() + LIVE_TIMEOUT
        while redis.zcard("asgi:group:chat_cable") > 1 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert redis.zcard("asgi:group:chat_cable") == 1, (
            f"{redis.zcard('asgi:group:chat_cable')} channels are in Redis's asgi:group:chat_cable {LIVE_TIMEOUT} s "
            "after one of two connections dropped without a close frame (1006), where 1 is right: disconnect() "
            "should group_discard the channel (chat/consumers.py), and daphne calls it however the connection ends"
        )


@pytest.mark.long
@pytest.mark.timeout(IDLE_SECONDS + 90)  # the quiet minute, and servers to start and stop on a busy machine
async def test_a_quiet_room_across_two_processes_still_works_after_every_timeout(two_on_redis):
    import websockets

    first, second = two_on_redis
    async with ws_open(first, "/ws/chat/quiet/") as alice, ws_open(second, "/ws/chat/quiet/") as bob:
        await chat_both_ways(alice, bob, "before")
        await asyncio.sleep(IDLE_SECONDS)
        # redis-py 8 gives up on a read after 5 s unless the layer's hosts set socket_timeout.
        try:
            await chat_both_ways(alice, bob, f"after {IDLE_SECONDS} s of quiet")
        except AssertionError as error:
            failed = str(error).split("\n")[0]
        except websockets.ConnectionClosed as closed:
            failed = f"the server had closed a socket ({closed})"
        else:
            failed = None
    if failed:
        pytest.fail(f"after {IDLE_SECONDS} s of quiet, {failed}: redis-py 8 gives up on a read after 5 s, so a "
                    'quiet room\'s consumers crash unless the Redis host sets "socket_timeout" above 5 s '
                    "(CHANNEL_LAYERS in mysite/settings.py)")
    for live in two_on_redis:
        live.assert_no_traceback()


@pytest.mark.browser
def test_two_windows_on_two_processes_chat_through_redis(open_page, two_on_redis):
    first, second = two_on_redis
    alice, bob = open_page("/chat/lobby/", on=first), open_page("/chat/lobby/", on=second)
    for page in (alice, bob):
        page.wait_for_event("open", "each window should open its socket on its own server process")
    alice.send("hello from process one")
    bob.send("hello from process two")
    for page in (alice, bob):
        page.wait_for(lambda page=page: "hello from process one" in page.chat_log()
                      and "hello from process two" in page.chat_log(),
                      "both windows should show both messages, though each talks to another process: with "
                      "REDIS_URL set, CHANNEL_LAYERS (mysite/settings.py) should be a RedisChannelLayer")
