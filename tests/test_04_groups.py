"""Step 04, groups: everyone in a room sees every message, and no other room sees any."""

import asyncio
import collections
import contextlib
import json

import pytest
from conftest import TIMEOUT, chat_burst, receive_json, recv_json


async def say(communicator, message):
    await communicator.send_to(text_data=json.dumps({"message": message}))


async def test_everyone_in_the_room_gets_each_message(connect):
    room = [await connect("/ws/chat/lobby/") for _ in range(3)]
    await say(room[0], "hello, everyone")
    for index, member in enumerate(room):
        reply = await receive_json(member, f"member {index} of the room should get the message: "
                                           "group_add on connect, group_send on receive")
        assert reply == {"message": "hello, everyone", "user": "anonymous", "direct": False}


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
    room = await asyncio.gather(*(connect("/ws/chat/exodus/") for _ in range(100)))
    assert len(group_members("chat_exodus")) == 100, (
        "each connect() should put its connection in the room's group: group_add (chat/consumers.py)"
    )
    await asyncio.gather(*(member.disconnect(timeout=TIMEOUT) for member in room))
    left = group_members("chat_exodus")
    assert not left, (
        f"{len(left)} of 100 channels stayed in the group after everyone left at once: "
        "every disconnect() must reach group_discard (chat/consumers.py)"
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


async def test_a_burst_from_several_senders_reaches_everyone_in_full(server, ws_connect):
    # 5 people typing at once: 500 messages, each to all 10 members of the room.
    async with contextlib.AsyncExitStack() as stack:
        room = [await stack.enter_async_context(ws_connect("/ws/chat/burst/")) for _ in range(10)]
        sent, received = await chat_burst(room, senders=5, each=100)
    for index, seen in enumerate(received):
        assert seen == collections.Counter(sent), (
            f"member {index} received {len(seen)} of the {len(sent)} messages: group_send drops a "
            "message, without a word, for a member whose channel is full; CHANNEL_LAYERS's "
            '"capacity" (mysite/settings.py) must leave room for a burst'
        )
    server.assert_no_traceback()


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
