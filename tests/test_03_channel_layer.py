"""Step 03, the channel layer: each consumer gets a channel name, and a message goes through the layer and back."""

import json

import pytest
from conftest import ANONYMOUS, frames_within, receive_json

ROOM = "/ws/chat/lobby/"
HELLO = ('connect() should send a first message, once it has accepted and checked the room name: '
         '{"user": self.username, "channel_name": self.channel_name} (chat/consumers.py)')


def test_channel_layers_setting_gives_a_layer():
    from channels.layers import get_channel_layer

    assert get_channel_layer() is not None, (
        'get_channel_layer() is None, so there is no channel layer: add CHANNEL_LAYERS = {"default": '
        '{"BACKEND": "channels.layers.InMemoryChannelLayer"}} to mysite/settings.py, spelled exactly '
        "(Django ignores a setting nobody reads, such as CHANNEL_LAYER)"
    )


async def test_connection_is_told_its_channel_name(connect):
    from channels.layers import get_channel_layer

    names = []
    for _ in range(2):
        communicator = await connect(ROOM, hello=False)
        first = await receive_json(communicator, HELLO)
        name = first.get("channel_name")
        assert isinstance(name, str) and name, (
            f'connect()\'s first message should carry "channel_name": self.channel_name (chat/consumers.py): {first}'
        )
        try:
            get_channel_layer().require_valid_channel_name(name)
        except TypeError:
            pytest.fail(f'"channel_name" should be self.channel_name, the name the layer gave this consumer: '
                        f"got {name!r}, which is no channel name (chat/consumers.py)")
        names.append(name)
    assert names[0] != names[1], (
        f"two connections were told the same channel name, {names[0]!r}: each consumer has its own, "
        'self.channel_name; send that in "channel_name" (chat/consumers.py)'
    )


async def test_connection_is_told_its_own_name(connect, alice_cookie):
    first, second = await connect(ROOM, hello=False), await connect(ROOM, hello=False)
    told = [(await receive_json(communicator, HELLO)).get("user") for communicator in (first, second)]
    assert all(isinstance(name, str) and ANONYMOUS.fullmatch(name) for name in told), (
        'connect()\'s first message should carry "user": self.username, which is "anonymous-" and 4 hex '
        f"digits for nobody logged in (chat/consumers.py): got {told}"
    )
    assert told[0] != told[1], f"two anonymous connections should be told two names: both got {told[0]!r}"
    await first.send_to(text_data=json.dumps({"message": "mine"}))
    reply = await receive_json(first, "a message should come back to its sender (chat/consumers.py)")
    assert reply.get("user") == told[0], (
        f'the first message said "user": {told[0]!r}, but the connection\'s message came back from '
        f'{reply.get("user")!r}: send self.username, the name connect() drew once, in both '
        "(calling username(self.scope) again draws a new one) (chat/consumers.py)"
    )
    logged_in = await connect(ROOM, headers=[(b"cookie", alice_cookie)], hello=False)
    told = (await receive_json(logged_in, HELLO)).get("user")
    assert told == "alice", f'logged in as alice, connect()\'s first message should say "user": "alice": got {told!r}'


async def test_chat_message_type_is_handled_by_chat_message(connect):
    from channels.layers import get_channel_layer

    communicator = await connect(ROOM)
    # Anything that holds the channel layer can send to a channel: a view, a task, this check.
    # ("sender" and "direct" are for later steps' chat_message(); this step's ignores them.)
    await get_channel_layer().send(communicator.channel_name, {
        "type": "chat.message", "message": "from outside", "user": "a test",
        "sender": "specific.outside!test", "direct": False,
    })
    reply = await receive_json(communicator, (
        'an event {"type": "chat.message", ...} sent to the consumer\'s channel should run chat_message(event), '
        'which sends {"message": event["message"], "user": event["user"]} down the WebSocket '
        "(chat/consumers.py)"
    ))
    got = {key: reply.get(key) for key in ("message", "user")}
    assert got == {"message": "from outside", "user": "a test"}, (
        f'chat_message(event) should send the event\'s "message" and "user" as JSON (chat/consumers.py): {reply}'
    )


async def test_a_message_comes_back_through_the_layer(connect, monkeypatch):
    from channels.layers import get_channel_layer

    communicator = await connect(ROOM)
    layer = get_channel_layer()
    carried = []
    original = layer.send

    async def send(channel, message):  # the in-memory layer's group calls send through here too
        carried.append(message)
        return await original(channel, message)

    monkeypatch.setattr(layer, "send", send)
    await communicator.send_to(text_data=json.dumps({"message": "to myself"}))
    reply = await receive_json(communicator, (
        'receive() should build an event {"type": "chat.message", "message": ..., '
        '"user": self.username} and send it to this connection\'s own channel with '
        "async_to_sync(self.channel_layer.send)(self.channel_name, event); chat_message(event) then sends it "
        "down the WebSocket. Without async_to_sync nothing is sent, and nothing complains (chat/consumers.py)"
    ))
    assert (reply.get("message"), reply.get("user")) == ("to myself", communicator.user), (
        f'the message should come back as {{"message": "to myself", "user": {communicator.user!r}}}, the "user" '
        f"being self.username, the name the first message gave (chat/consumers.py): {reply}"
    )
    more = await frames_within(communicator)  # meanwhile, receive() has finished its work
    through = [event for event in carried if event.get("message") == "to myself"]
    assert through, (
        "the message came back, but not through the channel layer: receive() should not send it itself; it "
        'should send {"type": "chat.message", ...} with async_to_sync(self.channel_layer.send)(self.channel_name, '
        "event), and only chat_message() sends down the WebSocket (chat/consumers.py)"
    )
    assert through[0].get("type") == "chat.message", (
        f'the event sent through the layer should have "type": "chat.message", which runs chat_message(): '
        f"{through[0]}"
    )
    assert not more, (
        f"the message came back more than once ({more}): only chat_message() should send it down the "
        "WebSocket, not receive() as well (chat/consumers.py)"
    )


def test_room_page_has_a_place_for_its_name_and_channel_name(client):
    page = client.get("/chat/lobby/").content.decode()
    missing = [element for element in ("user-name", "channel-name") if f'id="{element}"' not in page]
    assert not missing, (
        f"chat/templates/chat/room.html has no element with id {' or '.join(missing)}: the page shows the "
        "first message's user in #user-name and channel_name in #channel-name"
    )


@pytest.mark.browser
def test_page_shows_its_channel_name_and_its_message_comes_back(open_page):
    page = open_page("/chat/layer/")
    page.wait_for(lambda: ANONYMOUS.fullmatch(page.text("user-name")),
                  'the page should show the first message\'s "user" in #user-name, with textContent '
                  "(chat/templates/chat/room.html)")
    page.wait_for(lambda: page.text("channel-name").startswith("specific."),
                  'the page should show the first message\'s "channel_name" in #channel-name, with textContent '
                  "(chat/templates/chat/room.html)")
    assert page.chat_log() == "", (
        "the first message is no chat message, but #chat-log shows it: room.html's onmessage should show it in "
        f"#user-name and #channel-name, and pass only the other messages to showMessage(): {page.chat_log()!r}"
    )
    page.send("through the layer")
    page.wait_for(lambda: "through the layer" in page.chat_log(),
                  "the message should come back, through the layer, as a line of #chat-log")
    row = page.chat_rows()[-1]
    assert (row["user"], row["text"]) == (page.text("user-name"), "through the layer"), (
        f"the line in #chat-log should name the sender (data.user) and show the message (data.message): {row}"
    )
