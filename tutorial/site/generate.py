"""Outputs shown on the docs site that need something to run: `make generate` writes them.

    docs/generated/handshake.txt       a real opening handshake with step 01's daphne
    docs/generated/check-NN.txt        what `make check STEP=NN` prints when the step passes
    docs/generated/watch-02.txt        `make watch` on step 02 started from step 01: the
                                       untouched start, a save that does one task, then the rest
    docs/generated/sessions/NAME.txt   what a client and the server console show in a session
                                       with a step, as it is or with a common mistake made on
                                       purpose (sessions.py, clients.py)
    docs/generated/finished-chat.png   two browser windows in step 06's lobby, each 1280 px
                                       wide, one above the other, for the home page and step 04
    docs/generated/pages/NN-name.png   the first screen of each step page at 1280 x 800
                                       (both pictures: pictures.py)

They are committed; tests/test_docs.py fails when they no longer match the
steps (run `make generate` then). Diffs and trees need no such care: the
mkdocs hook in tutorial/site/hooks.py makes them while the site builds.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..core import serve
from ..core.steps import ROOT, STEPS, find
from ..core.wire import free_port, raw_handshake
from . import pictures, sessions

GENERATED = ROOT / "docs" / "generated"


def capture_handshake():
    """Step 01's opening handshake as it crosses the wire: what a browser sends, what daphne answers."""
    step = find("01")
    server = serve.start(step.folder)
    try:
        request, response = raw_handshake(server.port, step.ws_path)
    finally:
        server.stop()
    text = "# the browser sends\n" + request.replace("\r\n", "\n")
    text += "# daphne answers\n" + response.replace("\r\n", "\n")
    return text.rstrip("\n") + "\n"


# The checklist wraps to the terminal's width (COLUMNS); the docs' content column holds about
# 75 characters of code at 1280 px, so the captures are made that wide.
NARROW = {"TERM": "dumb", "COLUMNS": "76"}


def capture_check(step):
    """A real `make check STEP=NN` run: the checklist of our step, every task done."""
    done = subprocess.run(
        [sys.executable, "-m", "tutorial", "check", step.number],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, **NARROW},
    )
    if done.returncode != 0:
        raise SystemExit(f"step {step.name} does not pass its checks:\n{done.stdout}{done.stderr}")
    return f"$ make check STEP={step.number}\n" + done.stdout.rstrip() + "\n"


TASK_LINE = re.compile(r"^  \S (\d+)\. (.*)$", re.MULTILINE)


def task_lines(text):
    """(number, first line) of each task in a captured checklist."""
    return [(int(number), line.rstrip()) for number, line in TASK_LINE.findall(text)]


def capture_watch(step_number="02", port=None):
    """A real `make watch` on step 02 started from our step 01: a run on the untouched start,
    then one after our step's files are saved over it."""
    step = find(step_number)
    port = port or free_port()
    runs = []
    with tempfile.TemporaryDirectory(prefix="tutorial-watch-") as work:
        env = {**os.environ, "TUTORIAL_WORK": work, "PYTHONUNBUFFERED": "1", **NARROW}
        subprocess.run([sys.executable, "-m", "tutorial", "start", step.number], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        mine = Path(work) / step.name
        watcher = subprocess.Popen([sys.executable, "-m", "tutorial", "watch", "--port", str(port)], cwd=ROOT,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        saves = [None]  # None: every file of our step
        try:
            text = ""
            while True:
                line = watcher.stdout.readline()
                if not line:
                    raise SystemExit("make watch stopped before it was done:\n" + text)
                text += line
                if line.startswith("Waiting for you to save"):
                    runs.append(text)
                    text = ""
                    if not saves:
                        break
                    names = saves.pop(0)
                    for name in names or [n for n in (p.relative_to(step.folder).as_posix()
                                                      for p in step.folder.rglob("*") if p.is_file())
                                          if "__pycache__" not in n and not n.startswith("db.sqlite3")]:
                        (mine / name).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy(step.folder / name, mine / name)
        finally:
            watcher.terminate()
            watcher.wait()
    said = [f"$ make start STEP={step.number}   # then:\n$ make watch\n" + runs[0],
            f"# ... the learner does the tasks (here: our step {step.number}'s files saved)\n"
            + runs[1]]
    text = "\n".join(said).replace(f":{port}/", ":8000/").replace(work, "work")
    return re.sub(r"tutorial-watch-\w+", "work", text)


def main(argv=None):
    argparse.ArgumentParser(prog="python -m tutorial generate", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    try:
        write_everything()
    except serve.NotServing as error:
        raise SystemExit(str(error)) from None


def write_everything():
    GENERATED.mkdir(parents=True, exist_ok=True)
    (GENERATED / "handshake.txt").write_text(capture_handshake())
    print("wrote docs/generated/handshake.txt")
    pictures.finished_chat(GENERATED / "finished-chat.png")
    print("wrote docs/generated/finished-chat.png")
    (GENERATED / "sessions").mkdir(exist_ok=True)
    for session in sessions.SESSIONS:
        (GENERATED / "sessions" / f"{session.slug}.txt").write_text(sessions.capture(session))
        print(f"wrote docs/generated/sessions/{session.slug}.txt")
    for step in STEPS:
        (GENERATED / f"check-{step.number}.txt").write_text(capture_check(step))
        print(f"wrote docs/generated/check-{step.number}.txt")
    (GENERATED / "watch-02.txt").write_text(capture_watch())
    print("wrote docs/generated/watch-02.txt")
    for written in pictures.step_pages(GENERATED / "pages"):
        print(f"wrote {written.relative_to(ROOT)}")
