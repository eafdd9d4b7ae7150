"""Step 03, the channel layer: consumers send each other events by channel name, and the type picks the method."""

import inspect
import json
import re

import pytest
from conftest import ANONYMOUS, TIMEOUT, receive_json, recv_json

ROOM = "/ws/chat/lobby/"


async def nothing_more(communicator, what):
    assert await communicator.receive_nothing(timeout=0.3), f"{what} should receive nothing"


def test_channel_layers_setting_gives_a_layer():
    from channels.layers import get_channel_layer

    assert get_channel_layer() is not None, (
        'get_channel_layer() is None: add CHANNEL_LAYERS = {"default": {"BACKEND": '
        '"channels.layers.InMemoryChannelLayer"}} to settings.py'
    )


async def test_connection_is_told_its_channel_name(connect):
    from channels.layers import get_channel_layer

    communicator = await connect(ROOM)
    assert communicator.channel_name, 'connect() should first send {"channel_name": self.channel_name}'
    assert get_channel_layer().require_valid_channel_name(communicator.channel_name)


async def test_connection_is_told_its_own_name(connect):
    first, second = await connect(ROOM), await connect(ROOM)
    assert ANONYMOUS.fullmatch(str(first.user)), (
        'connect()\'s first message should also carry "user": self.username ("anonymous-" and 4 hex '
        f"digits), so that the page can tell its own messages: got {first.user!r}"
    )
    await first.send_to(text_data=json.dumps({"message": "mine"}))
    reply = await receive_json(first, "a message with no \"to\" should come back to its sender")
    assert reply.get("user") == first.user, (
        f"the name in connect()'s message should be the one on the connection's messages: {reply}"
    )
    assert first.user != second.user, "two connections should be told two names"


@pytest.mark.until("08")  # step 09: "to" is a username, and no address is given out
async def test_connection_is_told_its_signed_address(connect):
    from chat import protocol

    communicator = await connect(ROOM)
    assert communicator.address, (
        'connect() should also send "address": protocol.address(room, self.channel_name), the channel '
        'name signed for this room, which another tab puts in "to"'
    )
    assert protocol.recipient("lobby", communicator.address) == communicator.channel_name


async def test_chat_message_type_is_handled_by_chat_message(connect):
    from channels.layers import get_channel_layer

    communicator = await connect(ROOM)
    # Anything that holds the channel layer can send to a channel: a view, a task, this test.
    await get_channel_layer().send(communicator.channel_name, {
        "type": "chat.message", "message": "from outside", "user": "a test", "direct": True,
        "sender": "specific.outside!test",
    })
    reply = await receive_json(communicator, '"type": "chat.message" should run chat_message(), which sends it on')
    assert reply == {"message": "from outside", "user": "a test", "direct": True, "own": False}, (
        "chat_message(event) should send the event's message, user and direct as JSON, and \"own\": "
        f"whether the event's sender is this consumer's own channel name, and nothing else: {reply}"
    )


async def test_a_type_with_no_handler_stops_the_consumer(connect):
    from channels.layers import get_channel_layer

    communicator = await connect(ROOM)
    communicator.expected_crash = True
    await get_channel_layer().send(communicator.channel_name, {"type": "chat.shout", "message": "?"})
    # "chat.shout" looks for chat_shout(): there is none, so Channels raises and the connection ends.
    # wait() returns as soon as the consumer ends, and raises what ended it.
    with pytest.raises(ValueError, match="No handler for message type chat.shout"):
        await communicator.wait(timeout=TIMEOUT)


@pytest.mark.until("08")  # step 09: "to" is a username, and no address is given out
async def test_direct_message_reaches_only_its_recipient(connect):
    alice, bob, carol = [await connect(ROOM) for _ in range(3)]
    await alice.send_to(text_data=json.dumps({"message": "psst", "to": bob.address}))
    expected = {"message": "psst", "user": alice.user, "direct": True, "own": False}
    got = await receive_json(bob, 'the recipient should get the direct message: protocol.recipient(room, to) '
                                  'turns the address in "to" back into the channel name to send the event to')
    assert got == expected, f'a frame with "to" should reach that tab as {expected}, with "direct": True: {got}'
    got = await receive_json(alice, "the sender should get a copy, sent to its own channel name")
    expected = {**expected, "own": True}
    assert got == expected, f"the sender's copy of a direct message should be {expected}: {got}"
    await nothing_more(carol, "a third connection")


@pytest.mark.until("03")
async def test_message_without_to_comes_back_through_the_layer_only(connect):
    alice, bob = await connect(ROOM), await connect(ROOM)
    await alice.send_to(text_data=json.dumps({"message": "to myself"}))
    reply = await receive_json(alice, (
        'a message with no "to" should come back through the layer: receive() sends {"type": '
        '"chat.message", ...} to self.channel_name with async_to_sync(self.channel_layer.send), and '
        "chat_message(event) sends it down the WebSocket (without async_to_sync nothing is sent, silently)"
    ))
    expected = {"message": "to myself", "user": alice.user, "direct": False, "own": True}
    assert reply == expected, f"a message with no \"to\" should come back as {expected}: {reply}"
    await nothing_more(bob, "without groups, another connection in the room")


@pytest.mark.parametrize("to", ["no spaces allowed!", 42, "x" * 100, ["a"], "specific.made!up"])
async def test_bad_recipient_gets_an_error_event(connect, to):
    communicator = await connect(ROOM)
    await communicator.send_to(text_data=json.dumps({"message": "hi", "to": to}))
    reply = await receive_json(communicator)
    assert reply.get("error") == "bad_recipient", f'"to": {to!r} is no address this room gave out: {reply}'


async def test_a_raw_channel_name_is_not_an_address(connect):
    alice, bob = await connect(ROOM), await connect(ROOM)
    await alice.send_to(text_data=json.dumps({"message": "hi", "to": bob.channel_name}))
    reply = await receive_json(alice)
    assert reply.get("error") == "bad_recipient", (
        'a bare channel name in "to" must be refused: only a signed address (protocol.recipient) '
        f"proves that the server gave it out. Got {reply}"
    )
    assert await bob.receive_nothing(timeout=0.3), "the channel named without a signature got the message"


@pytest.mark.until("08")  # step 09: "to" is a username, and no address is given out
async def test_an_address_from_another_room_is_refused(connect):
    lobby, kitchen = await connect(ROOM), await connect("/ws/chat/kitchen/")
    await kitchen.send_to(text_data=json.dumps({"message": "hi", "to": lobby.address}))
    reply = await receive_json(kitchen)
    assert reply.get("error") == "bad_recipient", (
        "an address is signed for its room (protocol.address salts it with the room name), so "
        f"another room cannot use it: {reply}"
    )


async def test_made_up_recipients_leave_nothing_in_the_layer(connect):
    from channels.layers import get_channel_layer

    communicator = await connect(ROOM)
    layer = get_channel_layer()
    before = set(layer.channels)
    for number in range(20):
        await communicator.send_to(text_data=json.dumps({"message": "hi", "to": f"specific.fake!{number}"}))
        reply = await receive_json(communicator, 'a made-up "to" should get a bad_recipient error event')
        assert reply.get("error") == "bad_recipient", f'"to": "specific.fake!{number}" is no address: {reply}'
    made = set(layer.channels) - before
    assert not made, (
        f"{len(made)} queues appeared for made-up channel names: send only to a recipient that "
        "protocol.recipient() has checked, or any client can fill the layer with queues nobody reads"
    )


@pytest.mark.until("08")  # step 09: "to" is a username, and no address is given out
async def test_full_recipient_gets_recipient_busy(connect):
    from channels.layers import get_channel_layer

    from chat import protocol

    communicator = await connect(ROOM)
    layer = get_channel_layer()
    # A channel nobody reads fills up after `capacity` messages (CHANNEL_LAYERS in settings.py).
    for _ in range(layer.capacity):
        await layer.send("specific.nobody!reads", {"type": "chat.message"})
    nobody = protocol.address("lobby", "specific.nobody!reads")
    await communicator.send_to(text_data=json.dumps({"message": "hi", "to": nobody}))
    reply = await receive_json(communicator)
    assert reply.get("error") == "recipient_busy", f"sending to a full channel raises ChannelFull: {reply}"
    await layer.flush()


async def test_a_send_after_the_client_left_is_dropped():
    from autobahn.exception import Disconnected
    from channels.consumer import SyncConsumer

    from chat.consumers import ChatConsumer

    # What daphne does once the client's close has begun: it refuses the send (Channels issue 1820).
    sent, closed = [], False

    def base_send(message):
        if closed:
            raise Disconnected("Attempt to send on a closed protocol")
        sent.append(message)

    async def async_base_send(message):
        base_send(message)

    consumer = ChatConsumer()
    consumer.base_send = base_send if isinstance(consumer, SyncConsumer) else async_base_send

    async def send(text):
        result = consumer.send(text_data=text)
        if inspect.isawaitable(result):
            await result

    await send('{"message": "while open"}')
    assert sent == [{"type": "websocket.send", "text": '{"message": "while open"}'}], (
        "ChatConsumer.send() should still send, through super().send(), while the connection is open"
    )
    closed = True
    try:
        await send('{"message": "too late"}')
    except Disconnected:
        failed = True
    else:
        failed = False
    if failed:
        pytest.fail(
            "a send that crosses the client's close raised autobahn's Disconnected, which would crash the "
            "consumer with a traceback: override send() in ChatConsumer (chat/consumers.py) to call "
            "super().send() and drop the message on `except Disconnected`, since nobody is left to read it"
        )


@pytest.mark.until("08")  # step 09: "to" is a username, and no address is given out
def test_room_page_shows_its_address_and_sends_to(client):
    page = client.get("/chat/lobby/").content.decode()
    for element_id, why in [("channel-name", "the connection's channel name"),
                            ("address", "its signed address, for another tab's \"to\""),
                            ("chat-message-to", "a box for someone else's address")]:
        assert f'id="{element_id}"' in page, (
            f"chat/templates/chat/room.html needs an element with id {element_id}: {why}"
        )
    assert re.search(r"JSON\.stringify\(\{[^}]*\bto\s*:", page), (
        'room.html should send the "to" box\'s value with each message: '
        "JSON.stringify({ message: ..., to: messageTo.value.trim() })"
    )
    assert "data.channel_name" in page and "data.direct" in page, (
        "room.html's onmessage should show data.channel_name and data.address in #channel-name and "
        "#address, and pass data.direct on to showMessage(), which marks a direct message"
    )


@pytest.mark.until("08")  # step 09: "to" is a username, and no address is given out
async def test_direct_message_over_daphne(server, ws_connect):
    async with ws_connect(ROOM) as alice, ws_connect(ROOM) as bob:
        await alice.send(json.dumps({"message": "over the wire", "to": bob.address}))
        hint = 'a frame with "to" should be sent to that channel name: channel_layer.send in chat/consumers.py'
        reply = await recv_json(bob, hint)
        assert reply.get("message") == "over the wire", f"over daphne, the recipient got {reply}"
        reply = await recv_json(alice, "the sender should get a copy of a direct message")
        assert reply.get("direct") is True, f'the sender\'s copy should say "direct": true: {reply}'
    server.assert_no_traceback()


async def test_two_tabs_of_one_user_each_know_their_own_messages(connect, alice_cookie):
    # Logged in, both tabs are "alice": a name cannot tell them apart, a channel name can.
    first, second = [await connect(ROOM, headers=[(b"cookie", alice_cookie)]) for _ in range(2)]
    await first.send_to(text_data=json.dumps({"message": "from the first tab", "to": second.address}))
    got = await receive_json(second, "the second tab should get the direct message")
    assert got.get("own") is False, (
        'the recipient\'s copy should say "own": false, though the user is the same: put the sender\'s '
        'channel name in the event ("sender": self.channel_name) and let chat_message() compare it '
        f"with self.channel_name: {got}"
    )
    got = await receive_json(first, "the first tab should get its copy")
    assert got.get("own") is True, f'the sender\'s copy should say "own": true: {got}'


@pytest.mark.until("08")  # step 09: "to" is a username, and no address is given out
@pytest.mark.browser
def test_two_windows_send_each_other_direct_messages(open_page):
    alice, bob = open_page("/chat/lobby/"), open_page("/chat/lobby/")
    for page in (alice, bob):
        page.wait_for(lambda page=page: page.text("channel-name").startswith("specific."),
                      "the page should show its channel name in #channel-name")
    for page in (alice, bob):
        page.wait_for(lambda page=page: page.text("address").startswith(page.text("channel-name") + ":"),
                      "the page should show its signed address in #address")
    alice.send("hello Bob", to=bob.text("address"))
    bob.wait_for(lambda: "hello Bob" in bob.chat_log(), "Bob's #chat-log should show the direct message")
    alice.wait_for(lambda: "hello Bob" in alice.chat_log(), "Alice should see her own copy")
    alice_name = alice.text("user-name")
    expected = {"user": alice_name, "text": "hello Bob", "own": False, "direct": True}
    assert bob.chat_rows()[-1] == expected, (
        "Bob's row should name Alice (data.user) and be marked direct, not his own: "
        f"expected {expected}, got {bob.chat_rows()[-1]}"
    )
    expected = {"user": alice_name, "text": "hello Bob", "own": True, "direct": True}
    assert alice.chat_rows()[-1] == expected, (
        "Alice's copy should be marked as her own (the server's data.own) and "
        f"direct: expected {expected}, got {alice.chat_rows()[-1]}"
    )


@pytest.mark.browser
def test_page_learns_its_name_and_marks_its_own_messages(open_page):
    page = open_page("/chat/lobby/")
    page.wait_for(lambda: ANONYMOUS.fullmatch(page.text("user-name")),
                  "the page should show its own name (connect()'s \"user\") in #user-name")
    page.send("is this mine?")
    page.wait_for(lambda: "is this mine?" in page.chat_log(), "the message should come back to #chat-log")
    row = page.chat_rows()[-1]
    assert row["own"] and row["user"] == page.text("user-name"), (
        "room.html should mark a message the server calls this connection's own as own "
        f"(showMessage({{ own: data.own }})): {row}"
    )
    assert f"{row['user']} (you): is this mine?" in page.chat_log(), (
        'an own message\'s line in #chat-log should say "(you)" after the name, as in '
        f'"12:03 anonymous-3f2a (you): hello": {page.chat_log()!r}'
    )
