"""The manifest: every step in order, with what it teaches and where its page and tests are."""

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS_DIR = ROOT / "steps"
TESTS_DIR = ROOT / "tests"


@dataclass(frozen=True)
class Step:
    number: str  # "02"
    slug: str  # "routing"
    title: str
    concept: str  # what the step adds, in one sentence
    ws_path: str  # where the room page "lobby" opens its WebSocket
    redis: bool = False  # `make run` gives it a Redis (REDIS_URL) when it can

    @property
    def name(self):
        return f"{self.number}-{self.slug}"

    @property
    def folder(self):
        return STEPS_DIR / self.name

    @property
    def docs_page(self):
        return f"steps/{self.name}.md"

    @property
    def test_file(self):
        return TESTS_DIR / f"test_{self.number}_{self.slug.replace('-', '_')}.py"


STEPS = [
    Step(
        "00",
        "django",
        "A plain Django project",
        "The chat pages exist and try to open a WebSocket, which plain Django cannot accept.",
        "/ws/",
    ),
    Step(
        "01",
        "consumer",
        "The handshake and the consumer",
        "Daphne accepts the WebSocket handshake and a consumer handles connect, receive and disconnect.",
        "/ws/",
    ),
    Step(
        "02",
        "routing",
        "Routing and scope",
        "URLRouter picks a consumer by path, and the scope carries the room name and the user.",
        "/ws/chat/lobby/",
    ),
    Step(
        "03",
        "channel-layer",
        "The channel layer",
        'Consumers send each other events by channel name, and "type": "chat.message" calls chat_message().',
        "/ws/chat/lobby/",
    ),
    Step(
        "04",
        "groups",
        "Groups",
        "group_add, group_send and group_discard turn one room into a chat where everyone sees every message.",
        "/ws/chat/lobby/",
    ),
    Step(
        "05",
        "async",
        "Async consumers",
        "AsyncWebsocketConsumer runs the handlers on the event loop, so a handler that awaits holds up no other connection.",
        "/ws/chat/lobby/",
    ),
    Step(
        "06",
        "scale-out",
        "Scaling out with Redis",
        "A Redis channel layer lets several server processes share groups, so a room spans them all.",
        "/ws/chat/lobby/",
        redis=True,
    ),
    Step(
        "07",
        "history",
        "History in the database",
        "Each message is stored as it is sent, and a joining connection is first told the room's last 50, "
        "through Django's async ORM.",
        "/ws/chat/lobby/",
        redis=True,
    ),
    Step(
        "08",
        "login",
        "Login: who is talking, and who may",
        "Django's login names the speaker, members_ rooms refuse anonymous sockets with 4401, a socket ends "
        "with its session, and a group per user carries direct messages to their tabs.",
        "/ws/chat/lobby/",
        redis=True,
    ),
    Step(
        "09",
        "push",
        "Pushes from the rest of Django",
        "A view, a signal and a management command send to a room's group with async_to_sync, "
        "and reach its sockets through the shared layer.",
        "/ws/chat/lobby/",
        redis=True,
    ),
    Step(
        "10",
        "defenses",
        "When clients misbehave",
        "Every hostile input gets a documented answer: size, nesting and flood limits, sends that "
        "cross a close, groups left however a consumer ends, a catch-all route.",
        "/ws/chat/lobby/",
        redis=True,
    ),
    Step(
        "11",
        "production",
        "In production",
        "The same chat served as production serves it: settings from the environment, nginx with TLS "
        "in front of two processes on Redis and PostgreSQL, a health check, and a page that reconnects "
        "and loses nothing.",
        "/ws/chat/lobby/",
        redis=True,
    ),
]


def find(number):
    """The step whose number is `number` ("2", "02" and "02-routing" all work); the last by default."""
    if not number or number == "latest":
        return STEPS[-1]
    wanted = str(number).split("-")[0].zfill(2)
    for step in STEPS:
        if step.number == wanted:
            return step
    known = ", ".join(step.number for step in STEPS)
    raise SystemExit(f"There is no step {number!r}. The steps are {known}.")
