"""The learner's commands: `make start`, `make watch`, `make check`, `make hint`,
`make progress`, `make reset`, `make solution`, and `make run` on a workspace.

See tutorial/workspace.py for the folders, tutorial/checklist.py for the checklist.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import checklist, services, workspace
from .steps import STEPS, find
from .tasks import load
from .wire import port_in_use, stop


def target(number, folder):
    """Which step to check, on which folder: a DIR, our step, or the workspace's current step."""
    if folder:
        step = find(number) if number else (workspace.current() or STEPS[-1])
        path = Path(folder).resolve()
    elif number:
        step, path = find(number), find(number).folder
    elif workspace.current():
        step = workspace.current()
        path = workspace.folder(step)
    else:
        step, path = STEPS[-1], STEPS[-1].folder
    if not (path / "manage.py").is_file():
        raise SystemExit(f"{path} has no manage.py: give DIR= the folder that holds it.")
    return step, path


class Screen:
    """Shows the checklist as it fills in.

    `make watch` owns its terminal: each update redraws the screen from the top. `make check`
    on a terminal keeps one status line up to date, then prints the checklist once; anywhere
    else (a pipe, a file, CI) only the final checklist is printed.
    """

    def __init__(self, where, header=(), redraw=False):
        self.where = where
        self.header = list(header)
        self.redraw = redraw and checklist.TTY

    def __call__(self, verdict):
        if self.redraw:
            lines = self.header + checklist.render(verdict, self.where)
            sys.stdout.write("\x1b[H\x1b[J" + "\n".join(lines) + "\n")
            sys.stdout.flush()
            return
        if not verdict.finished:
            if checklist.TTY:
                done = verdict.done_count
                sys.stdout.write(f"\rchecking {self.where}: {done} of {len(verdict.tasks)} tasks done so far...")
                sys.stdout.flush()
            return
        if checklist.TTY:
            sys.stdout.write("\r\x1b[K")
        print("\n".join(self.header + checklist.render(verdict, self.where)), flush=True)


def check(number, folder, extra):
    step, path = target(number, folder)
    verbose = "-v" in extra or os.environ.get("V") == "1"
    extra = [arg for arg in extra if arg != "-v"]
    verdict = checklist.run(step, path, on_update=None if verbose else Screen(workspace.relative(path)),
                            extra=extra, verbose=verbose)
    if verbose:
        print("\n".join(checklist.render(verdict, workspace.relative(path))))
    workspace.record(verdict)
    return 0 if verdict.all_done else 1


def started(number):
    """The step `make hint` and `make solution` are about (STEP=, else the current one), and its folder."""
    step = find(number) if number else workspace.current()
    if step is None:
        raise SystemExit("No step started yet: `make start` begins one.")
    path = workspace.folder(step)
    if not path.is_dir():
        raise SystemExit(f"Step {step.name} is not in your workspace: `make start STEP={step.number}` begins it.")
    return step, path


def hint(number=None):
    """The next hint for the first failing task: a nudge, then the concept, then the lines to write."""
    step, path = started(number)
    tasks = load(step)
    failing = workspace.last_failures(step)  # `make watch` keeps it fresh: no file changed since
    if failing is None:
        print(f"Checking {workspace.relative(path)} to find the first task that does not pass yet...", flush=True)
        # Only the step's own checks: a hint is about what this step asks.
        verdict = checklist.run(step, path, files=[str(step.test_file)])
        if verdict.could_not_run:
            print("\n".join(checklist.render(verdict, workspace.relative(path))))
            return 1
        failing = [r for r in verdict.records if r["outcome"] == "failed"]
    failures = {}
    for record in failing:
        failures.setdefault(record["check"], record)
    task = next((t for t in tasks.tasks if any(check in failures for check in t.checks)), None)
    if task is None:
        print(f"Every task of step {step.number} passes: nothing to hint at. `make check` runs all the "
              "checks, earlier steps' included; `make start` begins the next step.")
        return 0
    state = workspace.read_state()
    key = f"{step.number}:{task.number}"
    stage = min(state["hints"].get(key, 0) + 1, 3)
    state["hints"][key] = stage
    workspace.write_state(state)
    failure = next(failures[check] for check in task.checks if check in failures)
    print(f"\nTask {task.number}:\n{checklist.wrap(' '.join(task.do.split()), '  ')}\n")
    print(f"{failure['check']} says:\n{checklist.wrap(failure['message'].strip()[:600], '  ')}\n")
    if stage == 1:
        print("Hint 1 of 3, a nudge:\n" + checklist.wrap(" ".join(task.nudge.split()), "  "))
    elif stage == 2:
        print("Hint 2 of 3, the idea and where it goes:\n" + checklist.wrap(" ".join(task.concept.split()), "  "))
    else:
        print("Hint 3 of 3, the lines to write: how our step differs from yours in "
              f"{', '.join(task.files)} (lines with + are ours, - yours):\n")
        print(workspace.diff(path, step.folder, task.files, colour=checklist.TTY) or
              f"  Your {', '.join(task.files)} already match ours: the difference is elsewhere, or it is "
              "something to run and look at rather than to write. Read the check's message above.")
    if stage < 3:
        print("\n`make hint` again gives the next hint for this task.")
    return 0


def solution(number=None):
    step, path = started(number)
    text = workspace.diff(path, step.folder, colour=checklist.TTY)
    print(f"From your {workspace.relative(path)} to our steps/{step.name} (+ ours, - yours):\n")
    print(text or "No difference: your step is the same as ours.")
    return 0


def progress():
    print("\n".join(workspace.progress_lines()))
    return 0


def serve(step, path, port, log_path, redis=None):
    """Start `manage.py runserver` on the learner's copy, its console going to log_path."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONUNBUFFERED"] = "1"
    if redis is not None:
        env["REDIS_URL"] = redis.url
    with open(log_path, "a") as log:
        log.write(f"\n--- {time.strftime('%H:%M:%S')} serving {path} as step {step.number}\n")
        log.flush()
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
                                 cwd=path, env=env, stdout=log, stderr=subprocess.STDOUT)
        if migrate.returncode:
            return None
        return subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                                cwd=path, env=env, stdout=log, stderr=subprocess.STDOUT)


def watch(port):
    """Check the current step on every save, and serve it, restarted on every save."""
    import watchfiles

    step = workspace.current()
    if step is None:
        raise SystemExit("No step started yet: `make start` begins the first one, then `make watch`.")
    if port_in_use(port):
        raise SystemExit(f"Port {port} is taken (another `make run` or `make watch`?). Stop it, or watch "
                         f"on another port: make watch PORT={port + 2}")
    log_path = workspace.WORK / ".server.log"
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
        for changes in watchfiles.watch(workspace.WORK, watch_filter=lambda c, p: not ignored(c, p)):
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

    # A `kill` (SIGTERM) stops the server and Redis too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, terminated)
    try:
        saved_at = time.monotonic()
        while True:
            step = workspace.current() or step
            if server is not None:
                stop(server)
                server = None
            if step.redis and redis is None and services.redis_binary() and not os.environ.get("REDIS_URL"):
                redis = services.start_redis()
            path = workspace.folder(step)
            where = workspace.relative(path)
            if checklist.TTY:
                sys.stdout.write("\x1b[H\x1b[2J\x1b[3J")  # a clean screen (and scrollback) for each run
            header = [f"make watch: checks {where} on every save, and serves it",
                      f"on http://127.0.0.1:{port}/chat/ (its console: {workspace.relative(log_path)}).",
                      "Ctrl-C stops both.", ""]
            screen = Screen(where, header, redraw=True)

            started = []

            def update(verdict):
                nonlocal server
                # The server restarts once the step's quick checks are done, not beside them: on
                # two cores, its start-up would slow down the verdict the learner waits for.
                if not started and (verdict.own_done_at or verdict.finished):
                    started.append(True)
                    server = serve(step, path, port, log_path, redis if step.redis else None)
                screen(verdict)

            # A save while the checks run makes their verdict out of date: stop, and check again.
            verdict = checklist.run(step, path, on_update=update, cancel=lambda: not saves.empty())
            if verdict.cancelled:
                saved_at = next_save()
                continue
            workspace.record(verdict)
            quick = f"{verdict.own_done_at - saved_at:.1f} s" if verdict.own_done_at else "-"
            tasks = verdict.tasks_done_at or verdict.finished_at
            print(f"\n(verdict after {quick} in process, {tasks - saved_at:.1f} s for every task, "
                  f"{verdict.finished_at - saved_at:.1f} s in all)")
            time.sleep(0.5)  # long enough for a server that cannot start to have said why
            if server is None or server.poll() is not None:
                tail = log_path.read_text().splitlines()[-12:]
                print("\nThe server stopped; the end of its console:\n" + "\n".join("  " + line for line in tail))
            print("\nWaiting for you to save a file...", flush=True)
            saved_at = next_save()
    except KeyboardInterrupt:
        print("\nStopped watching.")
    finally:
        if server is not None:
            stop(server)
        if redis is not None:
            redis.stop()
    return 0
