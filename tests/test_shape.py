"""One idea per step, measured: few tasks, a small consumer, a page read in minutes, no step ahead of itself.

Run by `make test` with the docs checks, once for the whole repository (not per step).
"""

import ast
import re

import pytest

from tutorial.core import tasks
from tutorial.site import hooks
from tutorial.core.steps import ROOT, STEPS

from test_docs import prose

MOST_TASKS = 4
# A consumer a learner can hold in their head: the official tutorial's whole async consumer is
# about 30 lines of code; step 04 adds groups to it, and no more.
MOST_CODE_LINES = {"01": 30, "04": 60}
MOST_PROSE_WORDS = 1000

# What each step brings, by names that appear nowhere before it: its codes, its classes, its
# settings. A step's files that name one of a later step's are ahead of themselves.
INTRODUCED = {
    "02": ["bad_room_name", "4400", "URLRouter", "url_route", "AuthMiddlewareStack"],
    "03": ["CHANNEL_LAYERS", "channel_layer", "chat_message"],
    "04": ["group_add", "group_send", "group_discard"],
    "05": ["AsyncWebsocketConsumer"],
    "06": ["REDIS_URL", "channels_redis"],
    "07": ["not_saved", "room_history", "too_long", "MAX_MESSAGE_LENGTH", "HISTORY_BYTES"],
    "08": ["login_required", "session_ended", "bad_recipient", "4401", "user_group", "members_",
           "session_group", "SESSION_CHECK_SECONDS"],
    "09": ["chat_announcement", "announcement"],
    "10": ["too_big", "too_fast", "too_deep", "bad_unicode", "empty_frame", "no_route", "4404",
           "FrameBudget", "NoRouteConsumer", "CHAT_FRAME_BUDGET", "Disconnected", "capacity", "ChannelFull"],
    "11": ["healthz", "reconnect-state", "RETRY_CAP_MS", "dj_database_url", "SECURE_PROXY_SSL_HEADER", "DATABASE_URL"],
}
TEXT_FILES = {".py", ".html", ".txt", ".toml", ".cfg"}
LEARNING_STEPS = [step for step in STEPS if step.number != "00"]


def code_lines(path):
    """Lines of Python that are code: not blank, not comments, not docstrings."""
    source = path.read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(
        1 for number, line in enumerate(source.splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


def unfolded(markdown):
    """The page without its folds: a `???` admonition, at any depth, and everything indented under it."""
    kept, fold = [], None  # fold: the indentation of the open fold's `???` line
    for line in markdown.splitlines():
        depth = len(line) - len(line.lstrip())
        if fold is not None and (not line.strip() or depth > fold):
            continue
        fold = None
        if re.match(r"\s*\?\?\?\+? ", line):
            fold = depth
            continue
        kept.append(line)
    return "\n".join(kept)


def page_as_read(step):
    """The step page's markdown as the site shows it: its generated parts (the tasks, the tree, our
    files, what's next) written out, as the mkdocs hook does."""
    markdown = (ROOT / "docs" / step.docs_page).read_text()
    before = STEPS[STEPS.index(step) - 1] if STEPS.index(step) else None
    return hooks.MARKER.sub(lambda match: hooks.GENERATORS[match[1]](step, before), markdown)


def prose_words(markdown):
    return len(re.findall(r"[A-Za-z0-9][\w'’-]*", prose(unfolded(markdown))))


@pytest.mark.parametrize("step", LEARNING_STEPS, ids=lambda step: step.name)
def test_a_step_asks_at_most_four_tasks(step):
    count = len(tasks.load(step).tasks)
    assert count <= MOST_TASKS, (
        f"tutorial/tasks/{step.name}.toml asks {count} tasks; a step a learner finishes in one sitting "
        f"asks at most {MOST_TASKS}"
    )


@pytest.mark.parametrize("number", sorted(MOST_CODE_LINES))
def test_the_consumer_stays_small(number):
    step = next(step for step in STEPS if step.number == number)
    lines = code_lines(step.folder / "chat" / "consumers.py")
    assert lines <= MOST_CODE_LINES[number], (
        f"steps/{step.name}/chat/consumers.py has {lines} lines of code; at most {MOST_CODE_LINES[number]}"
    )


@pytest.mark.parametrize("step", LEARNING_STEPS, ids=lambda step: step.name)
def test_a_step_page_reads_in_minutes(step):
    words = prose_words(page_as_read(step))
    assert words <= MOST_PROSE_WORDS, (
        f"docs/{step.docs_page} has {words} words of prose outside its folds; at most {MOST_PROSE_WORDS}: "
        "fold what is not the step's idea (??? under the hood)"
    )


def test_the_word_count_leaves_out_folds_and_code():
    page = ("Two words.\n\n??? note \"Folded\"\n\n    Many words here, folded away.\n\n```python\nx = 1\n```\n"
            "1. A task.\n\n    ??? tip \"Hints\"\n\n        Folded too.\n\nEnd.")
    assert prose_words(page) == 6


@pytest.mark.parametrize("step", STEPS[:-1], ids=lambda step: step.name)
def test_no_step_names_what_a_later_step_brings(step):
    later = {name for number, names in INTRODUCED.items() if number > step.number for name in names}
    found = []
    for path in sorted(step.folder.rglob("*")):
        if path.suffix not in TEXT_FILES or "__pycache__" in path.parts:
            continue
        text = path.read_text()
        found += [f"{path.relative_to(step.folder)}: {name}" for name in sorted(later)
                  if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)]
    assert not found, f"steps/{step.name} names what only a later step brings: {found}"


def error_codes(step):
    text = (step.folder / "chat" / "protocol.py").read_text()
    return set(re.findall(r"^    ([a-z_]+)  +\S", text.split('"""')[1], re.MULTILINE))


@pytest.mark.parametrize("step", LEARNING_STEPS[1:], ids=lambda step: step.name)
def test_protocol_py_grows_with_the_steps(step):
    before = STEPS[STEPS.index(step) - 1]
    lost = error_codes(before) - error_codes(step)
    assert not lost, f"steps/{step.name}/chat/protocol.py no longer documents {sorted(lost)}, which step {before.number}'s does"
