"""`make watch`: check the current step on every save, and serve it, restarted on every save."""

import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

from ..checks.verdict import Warm, run
from ..core import serve, services
from ..core.wire import port_in_use
from .screen import TTY, Screen
from .workspace import Workspace, relative


def serve_copy(step, path, port, log_path, redis_url=None):
    """Migrate the learner's copy and start its runserver, its console going to log_path; None
    when migrate fails (its error is in the log)."""
    env = serve.environment(REDIS_URL=redis_url)
    with open(log_path, "a") as log:
        log.write(f"\n--- {time.strftime('%H:%M:%S')} serving {path} as step {step.number}\n")
        log.flush()
        if serve.migrate(path, env, output=log).returncode:
            return None
    # Not waited for: the checklist is on screen meanwhile, and the log says why a server died.
    return serve.start(path, port=port, env=env, log_path=log_path, wait=0)


def watch(port):
    """Check the current step on every save, and serve it, restarted on every save."""
    import watchfiles

    workspace = Workspace()
    step = workspace.current()
    if step is None:
        raise SystemExit("No step started yet: `make start` begins the first one, then `make watch`.")
    if port_in_use(port):
        raise SystemExit(f"Port {port} is taken (another `make run` or `make watch`?). Stop it, or watch "
                         f"on another port: make watch PORT={port + 2}")
    log_path = workspace.root / ".server.log"
    redis = None
    server = None

    def ignored(change, path):
        parts = Path(path).parts
        return (".backup" in parts or "__pycache__" in parts or Path(path).name.startswith(".")
                or Path(path).name.startswith("db.sqlite3") or path.endswith((".pyc", ".log")))

    # The watcher runs from the start, in a thread of its own, so that a save made while the
    # checks run is not missed: it waits in the queue and starts the next run at once.
    saves = queue.Queue()

    def watching():
        for changes in watchfiles.watch(workspace.root, watch_filter=lambda c, p: not ignored(c, p)):
            now = workspace.current()
            # Saves in the current step's folder count, and `make start` (in another terminal)
            # switching to another step; saves in other steps' folders do not.
            if now != step or any(Path(p).is_relative_to(workspace.folder(now)) for _, p in changes):
                saves.put(time.monotonic())

    threading.Thread(target=watching, daemon=True).start()

    def next_save():
        """Wait for a save; an editor's "save all" is several, so take the last of a quick burst."""
        saved = saves.get()
        time.sleep(0.2)
        while not saves.empty():
            saved = saves.get()
        return saved

    def terminated(*_):
        raise KeyboardInterrupt

    # A `kill` (SIGTERM), or the terminal closing (SIGHUP), stops the server and Redis too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    # pytest processes that start while the learner types, so that a save does not wait for
    # Python to import pytest, Django and Channels again: about two seconds a run.
    warm = Warm()
    try:
        saved_at = time.monotonic()
        while True:
            step = workspace.current() or step
            if server is not None:
                server.stop()
                server = None
            if step.redis and redis is None and services.redis_binary() and not os.environ.get("REDIS_URL"):
                redis = services.start_redis()
            path = workspace.folder(step)
            where = relative(path)
            if TTY:
                sys.stdout.write("\x1b[H\x1b[2J\x1b[3J")  # a clean screen (and scrollback) for each run
            header = [f"make watch: checks {where} on every save, and serves it",
                      f"on http://127.0.0.1:{port}/chat/ (its console: {relative(log_path)}).",
                      "Ctrl-C stops both.", ""]
            screen = Screen(where, header, redraw=True, workspace=workspace)

            started = []

            def update(verdict):
                nonlocal server
                # The server restarts once every task has its verdict, not beside the checks: on
                # two cores, its start-up would slow down the verdict the learner waits for.
                if not started and (verdict.tasks_done_at or verdict.finished):
                    started.append(True)
                    server = serve_copy(step, path, port, log_path,
                                        redis.url if redis and step.redis else os.environ.get("REDIS_URL"))
                screen(verdict)

            # A save while the checks run makes their verdict out of date: stop, and check again.
            verdict = run(step, path, on_update=update, cancel=lambda: not saves.empty(), warm=warm)
            warm.refill()
            if verdict.cancelled:
                saved_at = next_save()
                continue
            workspace.record(verdict)
            # The in-process verdict: when the last of the step's own in-process checks ended,
            # by the wall clock of its record (the checklist shows each one as it ends).
            ended = [r["ended"] for r in verdict.records if r["step"] == step.number
                     and r["layer"] == "in-process" and "ended" in r]
            saved_wall = time.time() - (time.monotonic() - saved_at)
            quick = f"{max(ended) - saved_wall:.1f} s" if ended else "-"
            tasks = verdict.tasks_done_at or verdict.finished_at
            print(f"\n(verdict after {quick} in process, {tasks - saved_at:.1f} s for every task, "
                  f"{verdict.finished_at - saved_at:.1f} s in all)")
            time.sleep(0.5)  # long enough for a server that cannot start to have said why
            if server is None or not server.running:
                tail = log_path.read_text().splitlines()[-12:]
                print("\nThe server stopped; the end of its console:\n" + "\n".join("  " + line for line in tail))
            print("\nWaiting for you to save a file...", flush=True)
            saved_at = next_save()
    except KeyboardInterrupt:
        print("\nStopped watching.")
    finally:
        warm.close()
        if server is not None:
            server.stop()
        if redis is not None:
            redis.stop()
    return 0
