"""Step 07, history: every room message stored as it is sent, and the room's last 50 told to each newcomer.

In process, the checks use pytest-django's test database (transactional_db, through the
`connect` fixture), so the consumer's own queries reach real tables. Live, every server of the
session shares one freshly migrated SQLite file (conftest's live_database, SQLITE_PATH), as two
processes of one site share one database.
"""

import contextlib
import json
import runpy

import pytest
from conftest import ORIGIN, STEP_DIR, TIMEOUT, frames_within, receive_json, recv_json, ws_open

SETTINGS = STEP_DIR / "mysite" / "settings.py"
HISTORY_LENGTH = 50
# chat/models.py's bound on a message, in characters, and daphne's limit on a frame it sends.
MAX_MESSAGE_LENGTH = 4096
DAPHNE_LIMIT = 1024 * 1024
# The worst case for a history: json.dumps writes this one character as two \uXXXX escapes, 12 bytes.
EMOJI = "\U0001F600"


def message_model():
    """chat.models.Message, or a hint saying what to write."""
    try:
        from chat.models import Message
    except ImportError as error:
        why = str(error)
    else:
        fields = {field.name for field in Message._meta.get_fields()}
        missing = {"room", "author", "text", "sent_at"} - fields
        if not missing:
            return Message
        why = f"Message has no field {', '.join(sorted(missing))}"
    pytest.fail(f"{why}: chat/models.py should define a Message model with a room, an author, a text and a "
                "sent_at (DateTimeField(auto_now_add=True)), and chat/migrations/ its table")


async def stored(room):
    """The room's stored messages as (author, text), oldest first, read as the consumer would."""
    Message = message_model()
    return [(m.author, m.text) async for m in Message.objects.filter(room=room).order_by("id")]


async def said(communicator, text, hint="the sender should hear its own message back from the room, stored and then "
                                         "sent with group_send in receive() (chat/consumers.py)"):
    """Send `text` to the room and wait for it to come back, so that it has been stored and sent."""
    await communicator.send_to(text_data=json.dumps({"message": text}))
    reply = await receive_json(communicator, hint)
    assert reply.get("message") == text, f"the sender got {reply} instead of its own message back: {hint}"


def history_of(communicator, room):
    history = getattr(communicator, "hello", {}).get("history")
    assert isinstance(history, list), (
        f'the first frame of a connection to {room} has "history": {history!r}, where a list is right: '
        '{"user": ..., "channel_name": ..., "history": [{"user": ..., "message": ..., "sent_at": ...}, ...]}, '
        "oldest first (connect() in chat/consumers.py)"
    )
    return [(entry.get("user"), entry.get("message")) for entry in history]


async def join(connect, room):
    """Connect to `room` and keep the whole first frame (the hello, with the history) on it."""
    communicator = await connect(f"/ws/chat/{room}/", hello=False)
    communicator.hello = await receive_json(communicator, 'connect() should first send {"channel_name": ..., '
                                                          '"history": [...]} (chat/consumers.py)')
    communicator.user = communicator.hello.get("user")
    communicator.channel_name = communicator.hello.get("channel_name")
    return communicator


# ---------------------------------------------------------------- the model and its table


def test_the_message_model_has_room_author_text_and_time():
    Message = message_model()
    sent_at = Message._meta.get_field("sent_at")
    assert getattr(sent_at, "auto_now_add", False), (
        "Message.sent_at should be set by Django when the row is saved: DateTimeField(auto_now_add=True) "
        "(chat/models.py)"
    )


@pytest.mark.live  # makemigrations --check, a fifth of a second: after the in-process verdict
def test_the_model_has_its_migration(db):
    import io

    from django.core.management import call_command

    message_model()
    said = io.StringIO()
    try:
        # As `python manage.py makemigrations chat --check --dry-run`: it exits 1 when they disagree.
        call_command("makemigrations", "chat", check=True, dry_run=True, stdout=said, stderr=said)
        agree = True
    except SystemExit:
        agree = False
    assert (STEP_DIR / "chat" / "migrations" / "__init__.py").is_file() and agree, (
        "chat/models.py and chat/migrations/ disagree, so `python manage.py migrate` cannot make the table: "
        f"run `python manage.py makemigrations chat` in the step's folder.\n{said.getvalue()[-1000:]}"
    )


def test_the_model_refuses_a_text_over_max_message_length(db):
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    Message = message_model()
    where = ("in chat/models.py: MAX_MESSAGE_LENGTH = 4096, text = models.TextField(max_length=MAX_MESSAGE_LENGTH) "
             "for the admin's form, and in Message.Meta a constraints = [models.CheckConstraint(condition="
             "LessThanOrEqual(Length(\"text\"), MAX_MESSAGE_LENGTH), name=..., violation_error_message=...)], "
             "then makemigrations chat")
    longest = Message(room="bounds", author="someone", text="x" * MAX_MESSAGE_LENGTH)
    try:
        longest.full_clean()
    except ValidationError as error:
        pytest.fail(f"full_clean() refused a text of exactly {MAX_MESSAGE_LENGTH} characters, the longest a message "
                    f"may be ({error.messages}): {where}")
    try:
        Message(room="bounds", author="someone", text="x" * (MAX_MESSAGE_LENGTH + 1)).full_clean()
    except ValidationError:
        pass
    else:
        pytest.fail(f"full_clean() let through a text of {MAX_MESSAGE_LENGTH + 1} characters, where the admin and every "
                    f"form must refuse it (ValidationError): {where}")
    try:
        with transaction.atomic():
            Message.objects.create(room="bounds", author="someone", text=EMOJI * MAX_MESSAGE_LENGTH)
    except IntegrityError as error:
        pytest.fail(f"the database refused a text of exactly {MAX_MESSAGE_LENGTH} characters ({error}): the "
                    "constraint should count characters, Length(\"text\"), and allow as many as MAX_MESSAGE_LENGTH")
    stored = True
    try:
        with transaction.atomic():
            Message.objects.create(room="bounds", author="someone", text=EMOJI * (MAX_MESSAGE_LENGTH + 1))
    except IntegrityError:
        stored = False
    assert not stored, (
        f"Message.objects.create() stored a text of {MAX_MESSAGE_LENGTH + 1} characters: the shell, a script and "
        "bulk_create() never call full_clean(), so only the database itself can refuse it, with an IntegrityError. "
        f"Put the bound in the table: {where}"
    )
    from chat import models

    assert getattr(models, "MAX_MESSAGE_LENGTH", None) == MAX_MESSAGE_LENGTH, (
        f"chat/models.py's MAX_MESSAGE_LENGTH is {getattr(models, 'MAX_MESSAGE_LENGTH', None)}: the consumer and the "
        f"constraint read one bound, MAX_MESSAGE_LENGTH = {MAX_MESSAGE_LENGTH}, as the task says"
    )


def test_settings_let_two_processes_share_one_sqlite_file(monkeypatch):
    monkeypatch.setenv("SQLITE_PATH", "/tmp/elsewhere.sqlite3")
    database = runpy.run_path(str(SETTINGS))["DATABASES"]["default"]
    assert str(database["NAME"]) == "/tmp/elsewhere.sqlite3", (
        f'with SQLITE_PATH=/tmp/elsewhere.sqlite3, DATABASES\'s "NAME" (mysite/settings.py) is {database["NAME"]}: '
        'it should come from SQLITE_PATH when it is set, os.environ.get("SQLITE_PATH", BASE_DIR / "db.sqlite3"), '
        "so that the checks can give their servers a database of their own"
    )
    assert "journal_mode=wal" in database.get("OPTIONS", {}).get("init_command", "").lower(), (
        'DATABASES\'s "OPTIONS" (mysite/settings.py) should turn on SQLite\'s write-ahead log: '
        '"init_command": "PRAGMA journal_mode=WAL;", so that a newcomer\'s history query never waits for '
        f"another process's write (OPTIONS is {database.get('OPTIONS', {})})"
    )


# ---------------------------------------------------------------- in process: storing


async def test_a_message_is_stored_once_however_many_are_in_the_room(connect):
    room = [await connect("/ws/chat/store/") for _ in range(3)]
    await said(room[0], "keep me")
    for member in room[1:]:
        await receive_json(member, "everyone in the room should still hear the message (chat/consumers.py)")
    rows = await stored("store")
    assert rows == [(room[0].user, "keep me")], (
        f"the message should be stored once, by the consumer that received it from its browser "
        f"(receive(), with `await Message.objects.acreate(...)`), not once per member in "
        f"chat_message(): found {len(rows)} rows {rows}"
    )


async def test_a_message_that_cannot_be_stored_gets_not_saved(connect):
    from django.db import connection

    Message = message_model()
    alice, bob = await connect("/ws/chat/broken/"), await connect("/ws/chat/broken/")
    table = Message._meta.db_table

    def rename(old, new):
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')

    from asgiref.sync import sync_to_async

    # A real failure of the real database: the table is gone while the room is open.
    await sync_to_async(rename)(table, f"{table}_away")
    try:
        await alice.send_to(text_data=json.dumps({"message": "lost?"}))
        answer = await receive_json(alice, "a message the database refuses should be answered with a not_saved "
                                          "error event, not dropped (receive() in chat/consumers.py)")
        heard = await frames_within(bob)
    finally:
        await sync_to_async(rename)(f"{table}_away", table)
    assert answer.get("error") == "not_saved", (
        f"the sender got {answer}: when acreate() raises (a DatabaseError), receive() should send "
        '{"error": "not_saved", "detail": ...} and return (chat/consumers.py)'
    )
    assert heard == [], (
        f"the room heard {heard}: a message that was not stored should not be sent either, or the history "
        "of everyone who joins later would disagree with what the room saw"
    )
    await said(alice, "stored again", "once the table is back, the room should work again")


async def test_a_message_over_max_message_length_gets_too_long(connect, monkeypatch):
    from chat import protocol

    # Step 10 limits a frame to 4 KiB, so there such a message gets too_big before anything else.
    # The frame limit lifted, the check sees what stands behind it: the bound on the message.
    if hasattr(protocol, "MAX_FRAME_BYTES"):
        monkeypatch.setattr(protocol, "MAX_FRAME_BYTES", DAPHNE_LIMIT)
    alice, bob = await connect("/ws/chat/bounded/"), await connect("/ws/chat/bounded/")
    await alice.send_to(text_data=json.dumps({"message": "x" * (MAX_MESSAGE_LENGTH + 1)}))
    answer = await receive_json(alice, f"a message of {MAX_MESSAGE_LENGTH + 1} characters should be answered with a "
                                       "too_long error event (receive() in chat/consumers.py)")
    heard = await frames_within(bob)
    rows = await stored("bounded")
    assert answer.get("error") == "too_long", (
        f"the sender of a message {MAX_MESSAGE_LENGTH + 1} characters long got {str(answer)[:80]}: in receive(), "
        f"right after parse_frame(), a message longer than MAX_MESSAGE_LENGTH (chat/models.py) should get "
        '{"error": "too_long", "detail": ...} (a ProtocolError, and the code in chat/protocol.py\'s table)'
    )
    assert heard == [] and rows == [], (
        f"a message refused as too_long was still sent ({len(heard)} frames reached another member) or stored "
        f"({len(rows)} rows): check its length before acreate() and group_send, and return"
    )
    # From step 08 on, "to" makes it a direct message, which is bounded too; step 07 ignores the key.
    await alice.send_to(text_data=json.dumps({"message": "x" * (MAX_MESSAGE_LENGTH + 1), "to": "someone"}))
    answer = await receive_json(alice, "a message that is too long should get too_long whoever it is for")
    assert answer.get("error") == "too_long", (
        f'a message {MAX_MESSAGE_LENGTH + 1} characters long with a "to" got {str(answer)[:80]}: check the length '
        "right after parse_frame(), before receive() looks at \"to\", so that direct messages are bounded too"
    )
    await said(alice, "x" * MAX_MESSAGE_LENGTH, f"a message of exactly MAX_MESSAGE_LENGTH ({MAX_MESSAGE_LENGTH}) "
                                                "characters is allowed, and should reach the room")


# ---------------------------------------------------------------- in process: history


async def test_a_newcomer_gets_the_history_first_and_in_order(connect):
    alice = await join(connect, "past")
    for text in ("one", "two", "<b>three</b>"):
        await said(alice, text)
    bob = await join(connect, "past")
    history = history_of(bob, "past")
    assert history == [(alice.user, "one"), (alice.user, "two"), (alice.user, "<b>three</b>")], (
        f"a newcomer's first frame holds the history {history}, where the room's three messages are right, "
        'oldest first, each as {"user": ..., "message": ..., "sent_at": ...}: read them after group_add and '
        "send them in connect() (chat/consumers.py)"
    )
    assert all(isinstance(entry.get("sent_at"), str) for entry in bob.hello["history"]), (
        f'each history entry should say when it was said, "sent_at": the time as an ISO 8601 string '
        f"(message.sent_at.isoformat()); the first entry is {bob.hello['history'][0]}"
    )
    await said(alice, "four")
    live = await receive_json(bob, "after its history, a newcomer should hear the room live: chat_message() "
                                   "skips only the events whose id the history held (chat/consumers.py)")
    assert live.get("message") == "four", f"after its history, the newcomer got {live} where the room's new message is right"


async def test_the_history_is_the_last_50_oldest_first(connect):
    Message = message_model()
    await Message.objects.abulk_create(
        [Message(room="long", author="someone", text=f"line {n}") for n in range(HISTORY_LENGTH + 20)]
    )
    await Message.objects.acreate(room="other", author="someone", text="another room")
    bob = await join(connect, "long")
    texts = [text for _, text in history_of(bob, "long")]
    assert texts == [f"line {n}" for n in range(20, HISTORY_LENGTH + 20)], (
        f"with 70 messages stored, the history should be the last {HISTORY_LENGTH}, oldest first, and only "
        f"this room's (got {len(texts)}: {texts[:3]} ... {texts[-3:]}). Take the newest "
        f"[:{HISTORY_LENGTH}] with .order_by(\"-id\"), then reverse the list (connect() in chat/consumers.py)"
    )


def test_the_history_is_one_query_however_long(transactional_db):
    """A sync check on purpose: asgiref then runs the consumer's ORM calls on this very thread,
    so CaptureQueriesContext sees every query the join makes, whichever way it makes them."""
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mysite.asgi import application

    Message = message_model()
    Message.objects.bulk_create([Message(room="counted", author=f"user{n % 3}", text=f"line {n}")
                                 for n in range(HISTORY_LENGTH + 30)])

    async def joined():
        communicator = WebsocketCommunicator(application, "/ws/chat/counted/", headers=[(b"origin", ORIGIN.encode())])
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected, "the handshake to /ws/chat/counted/ was refused"
        first = json.loads(await communicator.receive_from(timeout=TIMEOUT))
        await communicator.disconnect()
        return first

    with CaptureQueriesContext(connection) as queries:
        first = async_to_sync(joined)()
    assert len(first.get("history", [])) == HISTORY_LENGTH, (
        f"joining a room with 80 messages sent {len(first.get('history', []))} in the history, where the last "
        f"{HISTORY_LENGTH} are right"
    )
    reads = [query["sql"] for query in queries.captured_queries if query["sql"].lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1, (
        f"joining a room with 80 messages made {len(reads)} queries, where one will do: filter the room, "
        f"order by -id, slice [:{HISTORY_LENGTH}] and read it with one `async for` (no query per message, "
        "no count() first; connect() in chat/consumers.py). The queries:\n" + "\n".join(sql[:160] for sql in reads[:6])
    )


def numbered(n):
    """The longest text a message may hold, made of the character json.dumps writes longest, numbered."""
    return f"{n:02d}" + EMOJI * (MAX_MESSAGE_LENGTH - 2)


def assert_newest_oldest_first(texts, hint):
    numbers = [int(text[:2]) for text in texts]
    # How many of these fit in the step's HISTORY_BYTES, give or take one for how the JSON is counted:
    # each entry is its message (12 bytes a character, 2 for the number) and about 80 more.
    budget = getattr(__import__("chat.models").models, "HISTORY_BYTES", 512 * 1024)
    fit = min(HISTORY_LENGTH, budget // (12 * (MAX_MESSAGE_LENGTH - 2) + 2 + 80))
    assert len(numbers) >= fit - 1, (
        f"the history held {len(numbers)} messages where about {fit} fit in HISTORY_BYTES ({budget:,} bytes): "
        f"keep adding the newest while their JSON fits, and stop only at the first that would not ({hint})"
    )
    assert numbers and numbers == list(range(HISTORY_LENGTH - len(numbers), HISTORY_LENGTH)), (
        f"the history held messages {numbers} of 0 to {HISTORY_LENGTH - 1}, where the newest that fit are right, "
        f"oldest first and with no gap: read the newest first, keep adding while the JSON of their as_event() "
        f"stays within HISTORY_BYTES, stop at the first that would not, then reverse ({hint})"
    )


async def test_the_history_frame_stays_under_1_mib_and_keeps_the_newest(connect):
    Message = message_model()
    await Message.objects.abulk_create(
        [Message(room="heavy", author="someone", text=numbered(n)) for n in range(HISTORY_LENGTH)]
    )
    bob = await connect("/ws/chat/heavy/", hello=False)
    try:
        first = await bob.receive_from(timeout=TIMEOUT)
    except Exception as error:  # noqa: BLE001 - a timeout, or the consumer raised
        pytest.fail(f"no first frame came ({type(error).__name__}: {error}): connect() should send the history")
    size = len(first.encode())
    assert size < DAPHNE_LIMIT, (
        f"with {HISTORY_LENGTH} messages of {MAX_MESSAGE_LENGTH} characters (emoji) stored, the first frame is "
        f"{size:,} bytes: daphne refuses to send a frame over 1 MiB ({DAPHNE_LIMIT:,} bytes), so every newcomer "
        "to this room would be closed with 1011. json.dumps writes each emoji as 12 bytes of escapes: "
        "room_history() (chat/models.py) should stop at HISTORY_BYTES (512 KiB) of history"
    )
    history = json.loads(first).get("history") or []
    assert_newest_oldest_first([entry.get("message", "") for entry in history], "room_history() in chat/models.py")


@contextlib.contextmanager
def around_group_add(before=None, after=None):
    """Run `before` and `after` (coroutine functions) around the next group_add of the in-process layer:
    a message said at exactly the wrong moment, on purpose."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    real = layer.group_add

    async def group_add(group, channel):
        layer.group_add = real  # once only
        if before:
            await before()
        await real(group, channel)
        if after:
            await after()

    layer.group_add = group_add
    try:
        yield
    finally:
        layer.group_add = real


async def seen_by_newcomer(connect, room, text):
    bob = await join(connect, room)
    frames = [text for _, text in history_of(bob, room)]
    frames += [frame.get("message") for frame in await frames_within(bob)]
    return frames.count(text)


async def test_a_message_said_while_a_newcomer_joins_is_not_lost(connect):
    # Said after a history read that comes before group_add, and sent to the group just before
    # the newcomer is in it: in neither. Read the history after group_add, and it is in one.
    alice = await join(connect, "edge")
    with around_group_add(before=lambda: said(alice, "said during the join")):
        count = await seen_by_newcomer(connect, "edge", "said during the join")
    assert count == 1, (
        f"a message said while a newcomer joined reached it {count} times, where once is right: read the "
        "history after group_add, not before, so that a message is either in the history or arrives live "
        "(connect() in chat/consumers.py)"
    )


async def test_a_message_stored_just_before_the_history_read_is_not_shown_twice(connect):
    # Sent to the group just after the newcomer joined it, and stored before its history was read:
    # in both. The event's id says the history had it already.
    alice = await join(connect, "twice")
    with around_group_add(after=lambda: said(alice, "said as the newcomer joined")):
        count = await seen_by_newcomer(connect, "twice", "said as the newcomer joined")
    assert count == 1, (
        f"a message said just as a newcomer joined reached it {count} times: it was in the history and came "
        'live too. Put the stored id in the group event ("id": message.id), keep the set of the history\'s ids '
        "in connect(), and have chat_message() skip events whose id is in it"
    )


async def test_a_message_committed_late_with_a_lower_id_still_reaches_the_newcomer(connect):
    # Two writers at once (two processes on PostgreSQL): one is handed id 8999, the other 9000,
    # and 9000 commits first. A newcomer reads the history between the two commits: it holds
    # 9000, and 8999 arrives live after. SQLite never does this, so the check makes it happen:
    # the next message said in the room travels with the id 8999.
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    Message = message_model()
    await sync_to_async(Message.objects.create)(id=9000, room="late", author="carol", text="committed first")
    alice = await join(connect, "late")
    bob = await join(connect, "late")
    assert history_of(bob, "late") == [("carol", "committed first")], (
        f"the newcomer's history was {history_of(bob, 'late')}, where the one stored message is right"
    )
    layer = get_channel_layer()
    real = layer.group_send

    async def group_send(group, event):
        layer.group_send = real  # once only
        await real(group, {**event, "id": 8999} if "id" in event else event)

    layer.group_send = group_send
    try:
        await alice.send_to(text_data=json.dumps({"message": "committed second"}))
        heard = [frame.get("message") for frame in await frames_within(bob)]
    finally:
        layer.group_send = real
    assert heard.count("committed second") == 1, (
        f"a message committed after the newcomer read its history, with an id (8999) below the history's "
        f"newest (9000), reached it {heard.count('committed second')} times, where once is right: on a database "
        "with several writers ids commit out of order. Skip only the ids the history held: keep them in a set "
        "in connect() (self.history_ids) and skip events whose id is in it (chat_message in chat/consumers.py)"
    )


# ---------------------------------------------------------------- live: two processes, one database


async def test_two_processes_on_redis_see_the_same_history(two_on_redis):
    first, second = two_on_redis
    async with ws_open(first, "/ws/chat/shared_past/") as alice:
        await alice.send(json.dumps({"message": "said on the first process"}))
        await recv_json(alice, "the sender should hear its own message (receive() in chat/consumers.py)")
    async with ws_open(second, "/ws/chat/shared_past/", hello=False) as bob:
        hello = await recv_json(bob, 'connect() should first send {"channel_name": ..., "history": [...]} '
                                     "(chat/consumers.py)")
        assert [entry.get("message") for entry in hello.get("history", [])] == ["said on the first process"], (
            f"a newcomer on the second process got the history {hello.get('history')}: both processes should "
            "read one database (mysite/settings.py's DATABASES, SQLITE_PATH) as they share one Redis"
        )


@pytest.mark.live  # the rows are written beside the server, as the shell or a script would
async def test_live_a_room_of_the_longest_messages_still_opens(server, live_orm):
    from asgiref.sync import sync_to_async

    message_model()

    def store_the_longest(alias):
        from chat.models import Message

        Message.objects.using(alias).bulk_create(
            Message(room="heavy_live", author="someone", text=f"{n:02d}" + EMOJI * (MAX_MESSAGE_LENGTH - 2))
            for n in range(HISTORY_LENGTH))

    try:
        await sync_to_async(live_orm)(store_the_longest)
    except Exception as error:  # noqa: BLE001 - whichever the database or the model raises
        pytest.fail(f"the database refused {HISTORY_LENGTH} messages of {MAX_MESSAGE_LENGTH} characters, the "
                    f"longest MAX_MESSAGE_LENGTH allows (chat/models.py): {type(error).__name__}: {error}")
    async with ws_open(server, "/ws/chat/heavy_live/", hello=False) as bob:
        hello = await recv_json(bob, f"a newcomer to a room of {HISTORY_LENGTH} long messages should get its first "
                                     "frame: daphne closes with 1011 any socket whose consumer sends a frame over "
                                     "1 MiB, so room_history() (chat/models.py) should send no more history than "
                                     "HISTORY_BYTES")
        assert_newest_oldest_first([entry.get("message", "") for entry in hello.get("history") or []],
                                   "room_history() in chat/models.py, over a real daphne")
        await bob.send(json.dumps({"message": "still here"}))
        echo = await recv_json(bob, "after its history, the newcomer should hear its own message back "
                                    "(receive() in chat/consumers.py)")
        assert echo.get("message") == "still here", f"the newcomer got {str(echo)[:200]} instead of its message"
    server.assert_no_traceback()


# ---------------------------------------------------------------- in the browser


@pytest.mark.browser
def test_the_page_shows_the_history_as_text_before_new_messages(open_page):
    alice = open_page("/chat/history_page/")
    alice.wait_for_event("open", "the page should open its socket")
    alice.send("<b>not bold</b>")
    alice.send("second")
    alice.wait_for(lambda: "second" in alice.chat_log(), "the sender should see its own messages")
    bob = open_page("/chat/history_page/")
    bob.wait_for(lambda: len(bob.chat_rows()) >= 2,
                 'a newcomer\'s page should show the room\'s history: room.html should draw each entry of the '
                 'first frame\'s "history" with showMessage(...), as it draws live messages')
    texts = [row["text"] for row in bob.chat_rows()]
    assert texts[:2] == ["<b>not bold</b>", "second"], (
        f"the newcomer's page shows {texts}: the history should come first, oldest first"
    )
    assert bob.run("return document.querySelectorAll('b').length") == 0, (
        "a message in the history became HTML on the page: draw it with showMessage, which adds it to "
        "#chat-log's value as text, never with innerHTML (chat/templates/chat/room.html)"
    )
    alice.send("third")
    bob.wait_for(lambda: [row["text"] for row in bob.chat_rows()][-1:] == ["third"],
                 "after the history, the page should show new messages as they come")
    assert bob.console_errors() == [], f"the page logged errors: {bob.console_errors()}"
