"""Step 04, groups: everyone in a room sees every message, and no other room sees any."""

import asyncio
import json

import pytest
from conftest import IDLE_SECONDS, TIMEOUT, chat_both_ways, receive_json, recv_json

# How many members leave a room at once in test_everyone_leaving_at_once_leaves_the_group_empty.
CROWD = 100
# Over daphne, how long a member of the room may get its copy after the sender got its own.
AFTER_THE_SENDER = 5


async def say(communicator, message):
    await communicator.send_to(text_data=json.dumps({"message": message}))


async def test_everyone_in_the_room_gets_each_message(connect):
    room = [await connect("/ws/chat/lobby/") for _ in range(3)]
    await say(room[0], "hello, everyone")
    for index, member in enumerate(room):
        who = "the sender itself" if index == 0 else f"member {index} of the room"
        reply = await receive_json(member, (
            f"{who} should get the message: connect() joins the room's group chat_<room> with group_add, and "
            "receive() sends the event to that group with group_send, each wrapped in async_to_sync "
            "(chat/consumers.py)"
        ))
        got = {key: reply.get(key) for key in ("message", "user")}
        expected = {"message": "hello, everyone", "user": room[0].user}
        assert got == expected, f"{who} should get {expected}, as chat_message() sends it: {reply}"


@pytest.mark.regression("without groups no other connection hears a message, other rooms included")
async def test_other_rooms_hear_nothing(connect):
    lobby, kitchen = await connect("/ws/chat/lobby/"), await connect("/ws/chat/kitchen/")
    await say(lobby, "lobby only")
    reply = await receive_json(lobby, "the sender should get its own message back (chat/consumers.py)")
    assert reply.get("message") == "lobby only", f'the sender should get "lobby only" back: {reply}'
    assert await kitchen.receive_nothing(timeout=0.3), (
        "the kitchen heard the lobby: each room needs a group of its own, chat_<room> (chat/consumers.py)"
    )


def group_members(group):
    # The in-memory layer keeps its groups in a dict of {group: {channel: joined_at}}.
    from channels.layers import get_channel_layer

    return set(get_channel_layer().groups.get(group, {}))


JOINS = ('connect() should put the connection in its room\'s group: async_to_sync(self.channel_layer.group_add)'
         '("chat_" + room name, self.channel_name) (chat/consumers.py)')


async def test_leaving_takes_the_connection_out_of_the_group(connect):
    staying, leaving = await connect("/ws/chat/hall/"), await connect("/ws/chat/hall/")
    assert group_members("chat_hall") == {staying.channel_name, leaving.channel_name}, JOINS
    await leaving.disconnect()
    assert group_members("chat_hall") == {staying.channel_name}, (
        "the connection that closed is still in the group chat_hall: disconnect() should call "
        "async_to_sync(self.channel_layer.group_discard)(self.group_name, self.channel_name) (chat/consumers.py)"
    )


@pytest.mark.regression("step 03 puts no connection in any group")
async def test_a_refused_room_joins_no_group(connect):
    communicator = await connect("/ws/chat/café/", hello=False)
    assert (await receive_json(communicator))["error"] == "bad_room_name"
    assert not group_members("chat_café"), (
        "a refused room joined a group: call group_add after the room check, never before (chat/consumers.py)"
    )


async def test_everyone_leaving_at_once_leaves_the_group_empty(connect):
    # Handshakes at once take turns on the database thread (the session's user, and from
    # step 07 the history): on a busy machine that took more than the 1 s of the checklist.
    room = await asyncio.gather(*(connect("/ws/chat/exodus/", timeout=max(TIMEOUT, 10)) for _ in range(CROWD)))
    assert len(group_members("chat_exodus")) == CROWD, JOINS
    # Leaving takes the same turns (each event passes the database thread): a disconnect that ran
    # out of time would be cancelled before its group_discard, and blame the consumer.
    await asyncio.gather(*(member.disconnect(timeout=max(TIMEOUT, 10)) for member in room))
    left = group_members("chat_exodus")
    assert not left, (
        f"{len(left)} of {CROWD} channels stayed in the group chat_exodus after everyone left at once: every "
        "disconnect() should call group_discard with its own group name and channel name (chat/consumers.py)"
    )


async def test_a_connection_dropped_without_a_close_frame_leaves_its_group(connect):
    staying, dropped = await connect("/ws/chat/dropped/"), await connect("/ws/chat/dropped/")
    assert group_members("chat_dropped") == {staying.channel_name, dropped.channel_name}, JOINS
    # What daphne tells the consumer when the TCP connection just ends: no close frame, code 1006.
    await dropped.send_input({"type": "websocket.disconnect", "code": 1006})
    await dropped.wait(timeout=TIMEOUT)
    assert group_members("chat_dropped") == {staying.channel_name}, (
        "after a close with code 1006 (the network went away, no close frame), the connection is still in "
        "the group: disconnect() runs for that close too, and should call group_discard whatever the code "
        "(chat/consumers.py)"
    )


async def test_two_tabs_of_one_user_each_know_their_own_messages(connect, alice_cookie):
    # Logged in, both tabs are "alice": a name cannot tell them apart, a channel name can.
    first, second = [await connect("/ws/chat/lobby/", headers=[(b"cookie", alice_cookie)]) for _ in range(2)]
    await say(first, "from the first tab")
    for name, tab, own in (("the second tab", second, False), ("the first tab, the sender", first, True)):
        got = await receive_json(tab, f"{name} should get the room's message through group_send (chat/consumers.py)")
        assert got.get("own") is own, (
            f'{name}\'s copy should say "own": {json.dumps(own)}, though both tabs are alice: put '
            '"sender": self.channel_name in the event, and let chat_message() send "own": '
            f'event["sender"] == self.channel_name (chat/consumers.py). Got {got}'
        )


async def test_room_chat_over_daphne(server, ws_connect):
    async with ws_connect("/ws/chat/lobby/") as alice, ws_connect("/ws/chat/lobby/") as bob, \
            ws_connect("/ws/chat/kitchen/") as cook:
        await alice.send(json.dumps({"message": "dinner?"}))
        # The sender's own copy may take a busy machine a while; the room's copies leave with it (one
        # group_send), so once it is there, a few seconds more is ample for bob's.
        for name, member, bound in (("alice, the sender,", alice, None), ("bob, in the room,", bob, AFTER_THE_SENDER)):
            reply = await recv_json(member, f"{name} should get the message: group_add in connect(), group_send in "
                                            "receive() (chat/consumers.py)", bound)
            assert reply.get("message") == "dinner?", f"{name} should get the message \"dinner?\": {reply}"
        try:
            heard = await asyncio.wait_for(cook.recv(), 0.3)
        except asyncio.TimeoutError:
            heard = None
        assert heard is None, (
            f"the kitchen heard the lobby ({heard}): each room needs a group of its own, chat_<room> (chat/consumers.py)"
        )
    server.assert_no_traceback()


@pytest.mark.regression("daphne reports a drop to step 03's disconnect() too; from here it must leave a group")
async def test_a_dropped_connection_is_reported_to_disconnect_with_1006(server, ws_connect):
    async with ws_connect("/ws/chat/lobby/") as ws:
        ws.transport.abort()  # the TCP connection just ends: no close frame, like a pulled cable
    server.wait_for_log("disconnect: code 1006", "daphne should report a dropped connection to "
                        "disconnect() with code 1006, so that it leaves its group")
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
                      "both windows in the lobby should show both messages in #chat-log: group_add in "
                      "connect(), group_send in receive() (chat/consumers.py)")
    assert cook.chat_log() == "", (
        f"the kitchen's #chat-log shows the lobby's messages: each room needs a group of its own, chat_<room> "
        f"(chat/consumers.py): {cook.chat_log()!r}"
    )
    own = {name: [row["text"] for row in page.chat_rows() if row["own"]]
           for name, page in [("Alice", alice), ("Bob", bob)]}
    assert own == {"Alice": ["hi Bob"], "Bob": ["hi Alice"]}, (
        "each window should mark its own message, and only that one, with \"(you)\": room.html's onmessage "
        "passes the server's data.own on, showMessage({ user: data.user, message: data.message, own: data.own }) "
        f"(chat/templates/chat/room.html). The lines marked own: {own}"
    )
