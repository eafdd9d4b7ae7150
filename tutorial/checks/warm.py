"""A pytest process started before it is needed, so that a save in `make watch` does not wait for it.

About two of the three seconds of an in-process verdict went to starting Python and importing
pytest, Django, Channels, Hypothesis and their friends, before the first check ran. `make watch`
starts these processes while the learner is still typing: each imports what every run needs,
then waits on its standard input for one job (a JSON line: the pytest arguments, the
environment, the log file, the niceness), runs it and exits. Nothing of the step is imported
before the job, so each run still sees the files as they are at the save.

No command of the learner's: tutorial/checks/verdict.py's Warm starts them and keeps them ready.
"""

import json
import os
import sys
import warnings


def import_ahead():
    """What every check run imports, none of it tied to a step or to Django's settings."""
    # daphne's server stays out: importing it installs Twisted's reactor, which a check that
    # starts no server must not find installed. What it imports besides, Twisted's and
    # autobahn's protocols, comes in ahead: a third of a second of every run from step 01 on,
    # where daphne's place in INSTALLED_APPS imports its server at django.setup().
    import asgiref.sync  # noqa: F401
    import autobahn.twisted.websocket  # noqa: F401
    import channels.generic.websocket  # noqa: F401
    import channels.testing  # noqa: F401
    import daphne.http_protocol  # noqa: F401
    import daphne.ws_protocol  # noqa: F401
    import django.test  # noqa: F401
    import hypothesis  # noqa: F401
    import pytest  # noqa: F401
    import pytest_asyncio  # noqa: F401
    import pytest_django  # noqa: F401
    import requests  # noqa: F401
    import twisted.internet.asyncioreactor  # noqa: F401
    import twisted.internet.endpoints  # noqa: F401
    import websockets  # noqa: F401


def main():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_ahead()
    line = sys.stdin.readline()
    if not line:
        return 0  # not needed after all: `make watch` stopped
    job = json.loads(line)
    os.environ.clear()
    os.environ.update(job["env"])
    # Read at start-up from the environment, as PYTHONPATH is: take them from the job's.
    sys.dont_write_bytecode = bool(job["env"].get("PYTHONDONTWRITEBYTECODE"))
    # What PYTHONPATH would have put on sys.path, had the process started with it: after the
    # current folder, before the standard library.
    sys.path[1:1] = [entry for entry in job["env"].get("PYTHONPATH", "").split(os.pathsep) if entry]
    os.chdir(job["cwd"])
    sys.path[0] = job["cwd"]  # where `python -m pytest` puts its folder; `-c` left "" there
    if job.get("nice"):
        os.nice(job["nice"])
    if job.get("log"):
        out = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
    import pytest

    # pytest would rewrite the asserts of its plugins as it imports them; those imported ahead
    # are already imported, and it would warn so. The checks' own files are imported by it.
    return pytest.main(job["args"] + ["-W", "ignore::pytest.PytestAssertRewriteWarning"])
