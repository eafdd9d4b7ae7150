"""Step 06, scaling out: a Redis channel layer, so that a room spans several server processes.

These checks start their own redis-server (Debian's) on a free loopback port
and several `daphne mysite.asgi:application` processes of the step; without
a redis-server binary they are skipped with the reason.
"""

import asyncio
import collections
import contextlib
import json
import runpy

import pytest
import fuzz
from conftest import (CROWD_TIMEOUT, IDLE_SECONDS, LIVE_TIMEOUT, STEP_DIR, TIMEOUT, MachineLoad, chat_both_ways,
                      chat_burst, receive_json, recv_json, ws_open)
from hypothesis import given
from test_01_consumer import FRAME_ERRORS

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
        f"(RedisChannelLayer or RedisPubSubChannelLayer), not {layer['BACKEND']}"
    )
    assert "redis://127.0.0.1:6379/0" in repr(layer.get("CONFIG")), (
        'the layer\'s CONFIG "hosts" should come from REDIS_URL'
    )
    assert isinstance(layer["CONFIG"].get("hosts"), list), (
        'CHANNEL_LAYERS\'s "hosts" (mysite/settings.py) should be a list, even of one Redis: '
        '[REDIS_URL], or [{"address": REDIS_URL, ...}]; channels_redis refuses anything else at the '
        "first connection"
    )


def test_redis_layer_has_room_for_a_crowd_and_a_quiet_room(monkeypatch):
    # The crowd and burst checks below show these limits over daphne, but whether 100 layer calls
    # overlap depends on the machine's load, and the quiet minute is left out of `make check`:
    # here the settings themselves are read.
    layer = channel_layers(monkeypatch, "redis://127.0.0.1:6379/0")["default"]
    config = layer.get("CONFIG", {})
    hosts = config.get("hosts")
    if not layer["BACKEND"].startswith("channels_redis.") or not isinstance(hosts, list) or not hosts:
        pytest.fail("with REDIS_URL set, mysite/settings.py should make CHANNEL_LAYERS a channels_redis layer "
                    'whose "hosts" is a list: do task 1 first')
    host = hosts[0] if isinstance(hosts[0], dict) else {}
    if layer["BACKEND"] == "channels_redis.core.RedisChannelLayer":
        assert config.get("capacity", 100) >= 500, (
            f'"capacity" is {config.get("capacity", 100)}: past it, group_send drops a message for every member '
            'of a process without a word; give CHANNEL_LAYERS\'s CONFIG room for a burst ("capacity": 1000)'
        )
    assert (host.get("max_connections") or 100) >= 200, (
        "redis-py's pool stops at 100 connections by default, and each layer call in flight holds one: "
        'a crowd that joins or leaves at once gets "Too many connections". Make the host a dict, '
        '{"address": REDIS_URL, "max_connections": 1000, ...} (CHANNEL_LAYERS in mysite/settings.py)'
    )
    assert (host.get("socket_timeout") or 5) > 5, (
        "redis-py 8 gives up on a read after 5 s, and the layer waits for a quiet room's next message with "
        'a blocking pop that Redis holds open for 5 s: add "socket_timeout": 15 to the host '
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


async def test_in_process_the_room_goes_through_redis(redis_layer, connect):
    alice, bob = await connect("/ws/chat/inprocess/"), await connect("/ws/chat/inprocess/")
    members = {name.decode() for name in redis_layer.client().zrange("asgi:group:chat_inprocess", 0, -1)}
    assert members == {alice.channel_name, bob.channel_name}, (
        "group_add should keep the room's group in Redis (a sorted set, asgi:group:chat_<room>): with "
        "REDIS_URL set, CHANNEL_LAYERS (mysite/settings.py) should be a channels_redis layer"
    )
    await alice.send_to(text_data=json.dumps({"message": "via Redis"}))
    for member in (alice, bob):
        assert (await receive_json(member, "group_send through Redis should reach the room"))["message"] == "via Redis"


@pytest.fixture
async def answering_through_redis(redis_layer, connect):
    from channels.layers import get_channel_layer

    assert "Redis" in type(get_channel_layer()).__name__, (
        "with REDIS_URL set, CHANNEL_LAYERS (mysite/settings.py) should be a channels_redis layer"
    )
    await fuzz.check_it_answers(await connect("/ws/chat/fuzz/"), receive_json)


@given(frame=fuzz.frames)
@fuzz.fuzz_settings
async def test_any_frame_through_redis_gets_an_answer(answering_through_redis, connect, frame):
    # msgpack, the Redis layer's encoding, refuses what the in-memory layer lets through,
    # e.g. a lone surrogate: every frame must still get its answer.
    communicator = await connect("/ws/chat/fuzz/")
    await fuzz.answers_soundly(communicator, frame, receive_json, FRAME_ERRORS)
    await communicator.disconnect()


async def test_a_failed_consumer_leaves_its_group_in_redis(redis_layer, connect):
    from channels.layers import get_channel_layer

    staying, failing = await connect("/ws/chat/crash/"), await connect("/ws/chat/crash/")
    failing.expected_crash = True
    await get_channel_layer().send(failing.channel_name, {"type": "chat.shout"})
    with pytest.raises(ValueError, match="No handler for message type chat.shout"):
        await failing.wait(timeout=TIMEOUT)  # returns as soon as the consumer ends, raising what ended it
    members = {name.decode() for name in redis_layer.client().zrange("asgi:group:chat_crash", 0, -1)}
    assert members == {staying.channel_name}, (
        "a consumer that raised is still in the room's group in Redis, where it would stay for "
        "group_expiry (a day): ChatConsumer.__call__ should group_discard when it fails"
    )


@pytest.fixture(scope="module")
def two_on_memory(start_server):
    """Two daphne processes of the step without REDIS_URL: each has an in-memory layer of its own."""
    return start_server(REDIS_URL=None), start_server(REDIS_URL=None)


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
    async with ws_open(first, "/ws/chat/shared/") as alice, ws_open(second, "/ws/chat/shared/") as bob:
        await alice.send(json.dumps({"message": "from the first process"}))
        await bob.send(json.dumps({"message": "from the second process"}))
        for who, ws in (("alice", alice), ("bob", bob)):
            heard = set()
            for _ in range(2):
                try:
                    heard.add(json.loads(await asyncio.wait_for(ws.recv(), LIVE_TIMEOUT))["message"])
                except asyncio.TimeoutError:
                    break
            assert heard == {"from the first process", "from the second process"}, (
                f"{who} heard {heard}: with REDIS_URL set, both processes should share one channel "
                "layer in Redis (CHANNEL_LAYERS in mysite/settings.py)"
            )
    for live in two_on_redis:
        live.assert_no_traceback()


@pytest.mark.until("08")  # step 09: "to" is a username, and no address is given out
async def test_a_direct_message_reaches_a_channel_in_another_process(two_on_redis):
    first, second = two_on_redis
    async with ws_open(first, "/ws/chat/direct/") as alice, ws_open(second, "/ws/chat/direct/") as bob:
        await alice.send(json.dumps({"message": "psst", "to": bob.address}))
        reply = await recv_json(bob, "an address should reach its channel from any process, "
                                     "once the layer is in Redis (CHANNEL_LAYERS in mysite/settings.py)")
        assert reply == {"message": "psst", "user": alice.user, "direct": True, "own": False}


@pytest.mark.timeout(3 * CROWD_TIMEOUT)
async def test_a_burst_across_two_processes_reaches_everyone_in_full(two_on_redis):
    async with contextlib.AsyncExitStack() as stack:
        # 24 members, every other one on the second process; each sends 20 at once.
        room = [await stack.enter_async_context(ws_open(two_on_redis[index % 2], "/ws/chat/redisburst/"))
                for index in range(24)]
        with MachineLoad("24 members on two processes sending 20 messages each at once") as load:
            sent, received = await chat_burst(room, senders=24, each=20)

    def own_process_only(index, seen):
        # Sender s is room[s], on the process s % 2; "burst s.n" is one of its messages.
        return all(int(message.split()[1].split(".")[0]) % 2 == index % 2 for message in seen)

    if all(own_process_only(index, seen) for index, seen in enumerate(received)):
        pytest.fail("each member heard only the members on its own process: with REDIS_URL set, both "
                    "processes should share one channel layer in Redis (CHANNEL_LAYERS in mysite/settings.py)")
    for index, seen in enumerate(received):
        assert seen == collections.Counter(sent), (
            f"member {index} received {len(seen)} of the {len(sent)} messages before the room fell quiet for "
            f"{LIVE_TIMEOUT} s: "
            "past its \"capacity\", RedisChannelLayer drops group messages (and logs \"over capacity\"); raise it "
            f"in CHANNEL_LAYERS.\n{load}"
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
        except (websockets.ConnectionClosed, asyncio.TimeoutError) as error:
            return error  # e.g. closed with 1011: connect() raised

    async with contextlib.AsyncExitStack() as stack:
        room = await asyncio.gather(*(join(stack) for _ in range(200)))
        refused = [ws for ws in room if isinstance(ws, Exception)]
        joined = redis.zcard("asgi:group:chat_exodus")
    # All 200 closed at once as the stack unwound; their disconnect()s run side by side.
    deadline = asyncio.get_running_loop().time() + LIVE_TIMEOUT
    while redis.zcard("asgi:group:chat_exodus") and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    left = redis.zcard("asgi:group:chat_exodus")
    hint = ('an async consumer holds a Redis connection while it awaits the layer: "max_connections" in '
            "CHANNEL_LAYERS's hosts must allow one per WebSocket, or group_add/group_discard fail with "
            '"Too many connections"')
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
        assert redis.zcard("asgi:group:chat_cable") == 2, (
            "two connections to chat/cable, one on each process, should both be in the room's group "
            "in Redis (asgi:group:chat_cable): with REDIS_URL set, CHANNEL_LAYERS (mysite/settings.py) "
            "should be a channels_redis layer"
        )
        dropped.transport.abort()  # no close frame: the client's network is simply gone
        deadline = asyncio.get_running_loop().time() + LIVE_TIMEOUT
        while redis.zcard("asgi:group:chat_cable") > 1 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert redis.zcard("asgi:group:chat_cable") == 1, (
            "a connection dropped without a close frame (1006) should leave the room's group in Redis"
        )


@pytest.mark.long
@pytest.mark.timeout(IDLE_SECONDS + 90)  # the quiet minute, and servers to start and stop on a busy machine
async def test_a_quiet_room_across_two_processes_still_works_after_every_timeout(two_on_redis):
    first, second = two_on_redis
    async with ws_open(first, "/ws/chat/quiet/") as alice, ws_open(second, "/ws/chat/quiet/") as bob:
        await chat_both_ways(alice, bob, "before")
        await asyncio.sleep(IDLE_SECONDS)
        # redis-py 8 gives up on a read after 5 s unless the layer's hosts set socket_timeout.
        await chat_both_ways(alice, bob, f"after {IDLE_SECONDS} s of quiet")
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
                      "both windows should show both messages, though each talks to another process")
