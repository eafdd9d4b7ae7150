"""Generated frames for the property checks: anything a client could send, valid or not.

Used by step 10's checks (tests/test_10_defenses.py), on the in-memory layer
and through Redis: from that step on, each frame must get its message back
(from the room) or an error event from chat/protocol.py's table, and the
connection must go on working after it: never a crash, never silence. Steps
01 to 09 answer only the mistakes of their own ideas, so deep JSON or a lone
surrogate still crashes them; that is what step 10 is about.
"""

import contextlib
import json
import os
import sys

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

# What arrives from a real server is valid UTF-8 text, so the raw frames hold
# no lone surrogates; inside JSON, escaped ones ("\ud800") are fair game.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
frames = st.one_of(
    text,  # mostly not JSON at all
    json_values.map(json.dumps),  # JSON, mostly not an object with a "message"
    st.fixed_dictionaries(
        {"message": text | json_values},
        # "to" names a user from step 08 on: anything else, a channel name included, is bad_recipient.
        optional={"to": json_values | st.just("specific.made!up"), "extra": json_values},
    ).map(json.dumps),
    # json.dumps writes a surrogate as its \ud8xx escape: valid JSON, no valid text.
    st.builds(lambda head, bad: json.dumps({"message": head + bad}), text, lone_surrogates),
    # json.loads gives up near 1,000 levels, less the stack the server already uses: either side of
    # that, never at the edge, where the same frame may pass once and fail the next time (which
    # Hypothesis reports as a flaky check instead of the failure a learner should see).
    (st.integers(500, 800) | st.integers(1200, 2040)).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(4070, 4200).map(lambda size: json.dumps({"message": "x" * size})),  # either side of 4 KiB
    st.binary(max_size=16),
)

# The same examples on every run (a check must not pass today and fail
# tomorrow on a new draw); the database is off so nothing is written to disk.
# The learner's checklist (make watch, make check) draws 30, for a quicker verdict after
# each save; `make test` and the replay draw 120.
fuzz_settings = settings(
    max_examples=int(os.environ.get("TUTORIAL_FUZZ_EXAMPLES", 120)),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No shrinking: the first frame that fails is reported as it is. Shrinking would run the
    # failing check again and again, each run waiting out its timeouts, for up to five minutes
    # (Hypothesis's own bound), and it absorbs pytest-timeout's interruption as one more failure.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


async def check_it_answers(communicator, receive_json):
    """Before fuzzing: one plain frame must come back. Without a consumer that answers at all,
    each generated frame would wait out its timeout, and Hypothesis would try hundreds."""
    await communicator.send_to(text_data='{"message": "ping"}')
    reply = await receive_json(communicator, 'receive() should answer {"message": "ping"} before '
                                             "the generated frames are worth sending")
    assert reply.get("message") == "ping", f'{{"message": "ping"}} came back as {reply}'


@contextlib.contextmanager
def servers_recursion_limit():
    """Hypothesis raises Python's recursion limit while it runs an example; a server runs with
    the default, 1000, and that is where JSON nested 1,000 deep breaks json.loads."""
    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(raised)


async def answers_soundly(communicator, frame, receive_json, known_errors):
    """Send one frame; its one answer must be an echo of its message or a known error event."""
    with servers_recursion_limit():
        await _answers_soundly(communicator, frame, receive_json, known_errors)


async def _answers_soundly(communicator, frame, receive_json, known_errors):
    key = "bytes" if isinstance(frame, bytes) else "text"
    await communicator.send_input({"type": "websocket.receive", key: frame})
    reply = await receive_json(communicator, f"the frame {frame[:80]!r} got no answer")
    if "error" in reply:
        assert reply["error"] in known_errors, f"unknown error code for {frame[:80]!r}: {str(reply)[:200]}"
        assert reply.get("detail"), f"an error event needs a detail: {reply}"
    else:
        assert reply.get("message") == json.loads(frame)["message"], f"{frame[:80]!r} came back as {str(reply)[:200]}"
    await communicator.send_to(text_data='{"message": "still open"}')
    after = await receive_json(communicator, f"after {frame[:80]!r} the connection stopped answering")
    assert after.get("message") == "still open", f"after {frame[:80]!r}: {str(after)[:200]}"
