"""Step 04, groups: everyone in a room sees every message, and no other room sees any."""

import asyncio
import collections
import contextlib
import json

import pytest
from conftest import (CROWD_TIMEOUT, IDLE_SECONDS, LIVE_TIMEOUT, TIMEOUT, MachineLoad, chat_both_ways, chat_burst,
                      receive_json, recv_json)


async def say(communicator, message):
    await communicator.send_to(text_data=json.dumps({"message": message}))


async def test_everyone_in_the_room_gets_each_message(connect):
    room = [await connect("/ws/chat/lobby/") for _ in range(3)]
    await say(room[0], "hello, everyone")
    for index, member in enumerate(room):
        reply = await receive_json(member, f"member {index} of the room should get the message: "
                                           "group_add on connect, group_send on receive, each wrapped in "
                                           "async_to_sync, since the layer's calls are coroutines "
                                           "(chat/consumers.py)")
        expected = {"message": "hello, everyone", "user": room[0].user, "direct": False, "own": index == 0}
        assert reply == expected, f"member {index} should get {expected}: {reply}"


@pytest.mark.regression("without groups no other connection hears a message, other rooms included")
async def test_other_rooms_hear_nothing(connect):
    lobby, kitchen = await connect("/ws/chat/lobby/"), await connect("/ws/chat/kitchen/")
    await say(lobby, "lobby only")
    assert (await receive_json(lobby))["message"] == "lobby only"
    assert await kitchen.receive_nothing(timeout=0.3), "each room needs a group of its own: chat_<room>"


def group_members(group):
    # The in-memory layer keeps its groups in a dict of {group: {channel: joined_at}}.
    from channels.layers import get_channel_layer

    return set(get_channel_layer().groups.get(group, {}))


async def test_leaving_takes_the_connection_out_of_the_group(connect):
    staying, leaving = await connect("/ws/chat/hall/"), await connect("/ws/chat/hall/")
    assert group_members("chat_hall") == {staying.channel_name, leaving.channel_name}, (
        "connect() should put the connection in its room's group: group_add (chat/consumers.py)"
    )
    await leaving.disconnect()
    assert group_members("chat_hall") == {staying.channel_name}, (
        "disconnect() should call group_discard, or the room's group keeps a channel nobody reads"
    )


@pytest.mark.regression("step 03 puts no connection in any group")
async def test_a_refused_room_joins_no_group(connect):
    communicator = await connect("/ws/chat/café/", hello=False)
    assert (await receive_json(communicator))["error"] == "bad_room_name"
    assert not group_members("chat_café"), "a bad room name must be refused before group_add"


async def test_everyone_leaving_at_once_leaves_the_group_empty(connect):
    # 100 handshakes at once take turns on the database thread (the session's user, and from
    # step 07 the history): on a busy machine that took more than the 1 s of the checklist.
    room = await asyncio.gather(*(connect("/ws/chat/exodus/", timeout=max(TIMEOUT, 10)) for _ in range(100)))
    assert len(group_members("chat_exodus")) == 100, (
        "each connect() should put its connection in the room's group: group_add (chat/consumers.py)"
    )
    await asyncio.gather(*(member.disconnect(timeout=TIMEOUT) for member in room))
    left = group_members("chat_exodus")
    assert not left, (
        f"{len(left)} of 100 channels stayed in the group after everyone left at once: "
        "every disconnect() must reach group_discard (chat/consumers.py)"
    )


async def test_a_consumer_whose_handler_fails_still_leaves_its_group(connect):
    from channels.layers import get_channel_layer

    staying, failing = await connect("/ws/chat/crash/"), await connect("/ws/chat/crash/")
    assert group_members("chat_crash") == {staying.channel_name, failing.channel_name}, (
        "connect() should put the connection in its room's group: group_add (chat/consumers.py)"
    )
    failing.expected_crash = True
    # An event with no handler makes the consumer raise, as any bug in a handler would.
    await get_channel_layer().send(failing.channel_name, {"type": "chat.shout"})
    with pytest.raises(ValueError, match="No handler for message type chat.shout"):
        await failing.wait(timeout=TIMEOUT)  # returns as soon as the consumer ends, raising what ended it
    assert group_members("chat_crash") == {staying.channel_name}, (
        "a consumer that raised is still in the room's group: disconnect() never runs after an "
        "exception, so ChatConsumer.__call__ should group_discard when super().__call__ raises"
    )


async def test_a_connection_dropped_without_a_close_frame_leaves_its_group(connect):
    staying, dropped = await connect("/ws/chat/dropped/"), await connect("/ws/chat/dropped/")
    assert group_members("chat_dropped") == {staying.channel_name, dropped.channel_name}, (
        "connect() should put the connection in its room's group: group_add (chat/consumers.py)"
    )
    # What daphne tells the consumer when the TCP connection just ends: no close frame, code 1006.
    await dropped.send_input({"type": "websocket.disconnect", "code": 1006})
    await dropped.wait(timeout=TIMEOUT)
    assert group_members("chat_dropped") == {staying.channel_name}, (
        "after a 1006 (the network went away), disconnect() should still group_discard"
    )


async def test_room_chat_over_daphne(server, ws_connect):
    async with ws_connect("/ws/chat/lobby/") as alice, ws_connect("/ws/chat/lobby/") as bob, \
            ws_connect("/ws/chat/kitchen/") as cook:
        await alice.send(json.dumps({"message": "dinner?"}))
        for name, member in (("alice", alice), ("bob", bob)):
            reply = await recv_json(member, f"{name}, in the room, should get the message: group_add on "
                                            "connect, group_send on receive (chat/consumers.py)")
            assert reply["message"] == "dinner?"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(cook.recv(), 0.3)
    server.assert_no_traceback()


@pytest.mark.timeout(3 * CROWD_TIMEOUT)
async def test_a_burst_from_several_senders_reaches_everyone_in_full(server, ws_connect):
    # 25 people each paste 20 lines at once (within each one's FrameBudget): 500 messages,
    # each to all 25 members of the room, so every member's channel briefly holds hundreds.
    async with contextlib.AsyncExitStack() as stack:
        room = [await stack.enter_async_context(ws_connect("/ws/chat/burst/")) for _ in range(25)]
        with MachineLoad("25 members sending 20 messages each at once") as load:
            sent, received = await chat_burst(room, senders=25, each=20)
    if all(len(seen) <= 20 for seen in received):
        pytest.fail("each member of the room received at most its own 20 messages of the burst: receive() "
                    "should send to the room's group with group_send, and connect() join it with group_add "
                    "(chat/consumers.py)")
    for index, seen in enumerate(received):
        assert seen == collections.Counter(sent), (
            f"member {index} received {len(seen)} of the {len(sent)} messages before the room fell quiet for "
            f"{LIVE_TIMEOUT} s: group_send drops a message, without a word, for a member whose channel "
            f'is full; CHANNEL_LAYERS\'s "capacity" (mysite/settings.py) must leave room for a burst.\n{load}'
        )
    server.assert_no_traceback()


@pytest.mark.regression("daphne reports a drop to step 03's disconnect() too; from here it must leave a group")
async def test_a_dropped_connection_is_reported_to_disconnect_with_1006(server, ws_connect):
    async with ws_connect("/ws/chat/lobby/") as ws:
        ws.transport.abort()  # the TCP connection just ends: no close frame, like a pulled cable
    server.wait_for_log("disconnect: code 1006", "daphne should report a dropped connection to "
                        "disconnect() with code 1006, so that it leaves its group")
    server.assert_no_traceback()


async def test_one_clients_flood_reaches_the_room_only_up_to_its_budget(server, ws_connect):
    flood = 1000
    async with ws_connect("/ws/chat/flood/") as flooder, ws_connect("/ws/chat/flood/") as member:
        started = asyncio.get_running_loop().time()
        for number in range(flood):
            await flooder.send(json.dumps({"message": f"flood {number}"}))
        answers = collections.Counter()
        for _ in range(flood):
            reply = await recv_json(flooder, "every frame of a flood should still get an answer")
            answers["too_fast" if reply.get("error") == "too_fast" else "message"] += 1
        seconds = asyncio.get_running_loop().time() - started
        delivered = 0
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                json.loads(await asyncio.wait_for(member.recv(), 0.5))
                delivered += 1
    assert sum(answers.values()) == flood, f"every frame of the flood gets an answer: {answers}"
    assert delivered or not answers["message"], (
        f"none of the {answers['message']} flood frames that were let through reached the other member "
        "of the room: receive() should group_send to the room's group (chat/consumers.py)"
    )
    most = 30 + 10 * (seconds + 1)  # FrameBudget's burst, plus what it refills meanwhile
    assert delivered == answers["message"] and delivered <= most, (
        f"{delivered} of {flood} flood frames reached another member in {seconds:.1f} s: each "
        "frame should spend the sender's protocol.FrameBudget, and those over it get too_fast"
    )
    server.assert_no_traceback()


@pytest.mark.regression("step 03's guarded send() holds already; this proves it under a room's fan-out")
async def test_members_leaving_while_messages_fly_log_no_traceback(server, ws_connect):
    async def chat_and_leave(number):
        async with ws_connect("/ws/chat/leaving/") as ws:
            for line in range(5):
                await ws.send(json.dumps({"message": f"{number}.{line}"}))
        # Leaving at once: the room's messages are still on their way to this socket.

    await asyncio.gather(*(chat_and_leave(number) for number in range(60)))
    await asyncio.sleep(0.5)
    server.assert_no_traceback()


@pytest.mark.long
@pytest.mark.timeout(IDLE_SECONDS + 90)  # the quiet minute, and servers to start and stop on a busy machine
async def test_a_quiet_room_still_works_after_every_timeout_in_the_stack(server, ws_connect):
    async with ws_connect("/ws/chat/quiet/") as alice, ws_connect("/ws/chat/quiet/") as bob:
        await chat_both_ways(alice, bob, "before")
        await asyncio.sleep(IDLE_SECONDS)
        await chat_both_ways(alice, bob, f"after {IDLE_SECONDS} s of quiet")
    server.assert_no_traceback()


def type_into_the_focus(page, keys, expected_id, template):
    """Type as a person would, into whatever has the keyboard focus; it must be #expected_id."""
    focused = page.focused()
    where = focused.tag_name + (f"#{focused.get_attribute('id')}" if focused.get_attribute("id") else "")
    assert focused.get_attribute("id") == expected_id, (
        f"the keyboard should be in #{expected_id} when the page opens (autofocus on the <input>, "
        f"chat/templates/chat/{template}), not in <{where}>"
    )
    focused.send_keys(keys)


def enter_a_room_from_the_index_page(open_page, room):
    page = open_page("/chat/")
    type_into_the_focus(page, f"{room}\n", "room-name-input", "index.html")
    page.wait_for(lambda: page.driver.current_url.endswith(f"/chat/{room}/"),
                  f"Enter in #room-name-input (index.html) should open /chat/{room}/")
    page.wait_for_event("open", f"the page of /chat/{room}/ should open its socket")
    return page


@pytest.mark.browser
def test_the_official_tutorials_flow_typed_on_the_keyboard(open_page):
    # The official tutorial's own browser tests, told in our words: three windows reach their
    # rooms from the index page, and a message typed in the first reaches only its room.
    first = enter_a_room_from_the_index_page(open_page, "book_club")
    second = enter_a_room_from_the_index_page(open_page, "book_club")
    third = enter_a_room_from_the_index_page(open_page, "garden")
    type_into_the_focus(first, "typed, then Enter\n", "chat-message-input", "room.html")
    for name, page in (("first", first), ("second", second)):
        page.wait_for(lambda page=page: "typed, then Enter" in page.chat_log(),
                      f"the {name} window in book_club should show the message in #chat-log, the "
                      "<textarea> whose value gets a line per message (room.html, showMessage in base.html): "
                      "Enter in #chat-message-input sends it, and group_send (chat/consumers.py) gives every "
                      "member of the room a copy")
    assert "typed, then Enter" not in third.chat_log(), (
        "the window in garden shows book_club's message in #chat-log: each room needs a group of its own"
    )


@pytest.mark.browser
def test_two_windows_in_one_room_see_each_other_and_a_third_room_does_not(open_page):
    alice, bob, cook = open_page("/chat/lobby/"), open_page("/chat/lobby/"), open_page("/chat/kitchen/")
    for page in (alice, bob, cook):
        page.wait_for_event("open", "each window should open its socket")
    alice.send("hi Bob")
    bob.send("hi Alice")
    for page in (alice, bob):
        page.wait_for(lambda page=page: "hi Bob" in page.chat_log() and "hi Alice" in page.chat_log(),
                      "both windows in the lobby should show both messages")
    assert cook.chat_log() == "", "the kitchen should not hear the lobby"
    own = {name: [row["text"] for row in page.chat_rows() if row["own"]]
           for name, page in [("Alice", alice), ("Bob", bob)]}
    assert own == {"Alice": ["hi Bob"], "Bob": ["hi Alice"]}, (
        f"each window should mark only its own message as its own: {own}"
    )
