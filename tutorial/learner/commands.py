"""The learner's commands: `make start`, `make check`, `make hint`, `make progress`,
`make reset`, `make solution`, and `make run`. `make watch` is in watch.py.

The workspace's folders are described in workspace.py, the checklist's lines in screen.py.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..checks.verdict import run
from ..core import serve, services
from ..core.stack import NGINX_CONFIG, is_production
from ..core.steps import STEPS, find
from ..core.tasks import load
from ..core.wire import port_in_use
from .screen import TTY, Screen, briefing, render, wrap
from .workspace import Workspace, diff, relative


def target(number, folder):
    """Which step, on which folder: a DIR (as STEP=, else the current step), our STEP=, else the
    workspace's current step, else our last step."""
    workspace = Workspace()
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


def start(number=None):
    workspace = Workspace()
    step = workspace.start(number)
    if step is not None:
        print("\n" + "\n".join(briefing(step, workspace.folder(step))))
    return 0


def reset():
    Workspace().reset()
    return 0


def check(number, folder, extra):
    workspace = Workspace()
    step, path = target(number, folder)
    verbose = "-v" in extra or os.environ.get("V") == "1"
    extra = [arg for arg in extra if arg != "-v"]
    screen = None if verbose else Screen(relative(path), workspace=workspace)
    verdict = run(step, path, on_update=screen, extra=extra, verbose=verbose)
    if verbose:
        print("\n".join(render(verdict, relative(path), workspace)))
    workspace.record(verdict)
    return 0 if verdict.all_done else 1


def started(workspace, number):
    """The step `make hint` and `make solution` are about (STEP=, else the current one), and its folder."""
    step = find(number) if number else workspace.current()
    if step is None:
        raise SystemExit("No step started yet: `make start` begins one.")
    path = workspace.folder(step)
    if not path.is_dir():
        raise SystemExit(f"Step {step.name} is not in your workspace: `make start STEP={step.number}` begins it.")
    return step, path


def hint(number=None, folder=None):
    """The next hint for the first failing task: a nudge, then the concept, then the lines to write."""
    workspace = Workspace()
    step, path = target(number, folder) if folder else started(workspace, number)
    tasks = load(step)
    # `make watch` keeps the last failures fresh: no file changed since. Not for a DIR= copy.
    failing = None if folder else workspace.last_failures(step)
    if failing is None:
        print(f"Checking {relative(path)} to find the first task that does not pass yet...", flush=True)
        # Only the step's own checks: a hint is about what this step asks.
        verdict = run(step, path, files=[str(step.test_file)])
        if verdict.could_not_run:
            print("\n".join(render(verdict, relative(path))))
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
    print(f"\nTask {task.number}:\n{wrap(' '.join(task.do.split()), '  ')}\n")
    print(f"{failure['check']} says:\n{wrap(failure['message'].strip()[:600], '  ')}\n")
    if stage == 1:
        print("Hint 1 of 3, a nudge:\n" + wrap(" ".join(task.nudge.split()), "  "))
    elif stage == 2:
        print("Hint 2 of 3, the idea and where it goes:\n" + wrap(" ".join(task.concept.split()), "  "))
    else:
        print("Hint 3 of 3, the lines to write: how our step differs from yours in "
              f"{', '.join(task.files)} (lines with + are ours, - yours):\n")
        print(diff(path, step.folder, task.files, colour=TTY) or
              f"  Your {', '.join(task.files)} already match ours: the difference is elsewhere, or it is "
              "something to run and look at rather than to write. Read the check's message above.")
    if stage < 3:
        print("\n`make hint` again gives the next hint for this task.")
    return 0


def solution(number=None, folder=None):
    step, path = target(number, folder) if folder else started(Workspace(), number)
    text = diff(path, step.folder, colour=TTY)
    print(f"From your {relative(path)} to our steps/{step.name} (+ ours, - yours):\n")
    print(text or "No difference: your step is the same as ours.")
    return 0


def progress():
    print("\n".join(Workspace().progress_lines()))
    return 0


def run_server(number, port, folder=None, stack=None):
    """`make run`: serve a step (ours with STEP=, a folder with DIR=, else the workspace's current
    step, else our last) in the foreground, with a Redis of its own from step 06 on; with
    STACK=1, as production serves it (run_stack). A step with production settings (step 11) is
    served as production serves it unless STACK=0, or a part of the stack is not installed: then
    with runserver, saying what to install."""
    step, folder = target(number, folder)
    # Checked first: otherwise daphne only logs "Address already in use" and keeps running, after
    # we have told the learner to open a page that another server (or nothing) is answering.
    if port_in_use(port):
        # Suggest a port that is free now; 8001 is where `make docs` serves.
        free = next((p for p in range(port + 1, port + 100) if p != 8001 and not port_in_use(p)), port + 2)
        raise SystemExit(f"Port {port} is taken: something (another `make run`?) already listens on "
                         f"127.0.0.1:{port}. Stop it, or serve on another port: make run PORT={free}")
    if folder != step.folder:
        print(f"Serving your copy of step {step.name}, {relative(folder)}.")
    else:
        print(f"Step {step.name}: {step.concept}")
    if stack is None and is_production(folder):
        wanting = stack_wanting(step, folder)
        if not (folder / NGINX_CONFIG).is_file():
            wanting.append(f"{NGINX_CONFIG}, which you have not written yet")
        if not wanting:
            return run_stack(step, folder, port)
        print(f"This step runs as production does when nginx, PostgreSQL and Redis are installed; it needs "
              f"{'; and '.join(wanting)}. Until then, here it is with runserver and mysite/settings.py "
              f"(DEBUG on), as on a developer's machine.")
    if stack:
        return run_stack(step, folder, port)
    redis_url = os.environ.get("REDIS_URL")  # a Redis the learner already runs
    env = serve.environment(REDIS_URL=redis_url)
    # The admin, sessions and users need their tables; migrate is quick when there is nothing to do.
    migrated = serve.migrate(folder, env, output=sys.stderr)
    if migrated.returncode:
        raise SystemExit(f"python manage.py migrate failed in {relative(folder)}: its error is above.")
    redis = None
    if step.redis and not redis_url:
        if services.redis_binary():
            redis = services.start_redis()
            env["REDIS_URL"] = redis.url
            print(f"Started redis-server at REDIS_URL={redis.url}; it stops with the server.")
        else:
            print(f"No Redis, so this step runs on the in-memory layer, in one process. For Redis, "
                  f"{services.HOW_TO_GET_REDIS}.")
    print(f"Open http://127.0.0.1:{port}/chat/ in your browser; Ctrl-C stops the server.", flush=True)

    # The server runs as a child, its console on this terminal, so that Redis is stopped after it.
    # It reloads itself when a file changes, as runserver does for a learner.
    def stop(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the clean-up below finish
        sys.exit(0)

    # A `kill` (SIGTERM), or the terminal closing (SIGHUP), stops the server and Redis as Ctrl-C does.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    server = subprocess.Popen(serve.command("runserver", port, reload=True), cwd=folder, env=env)
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches runserver too, and it stops by itself
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
        if redis is not None:
            redis.stop()


def stack_wanting(step, folder):
    """What the stack needs and this machine or step lacks, each with how to get it."""
    needed = [(services.nginx_binary(), f"nginx: {services.HOW_TO_GET_NGINX}"),
              (services.redis_binary(), f"redis-server: {services.HOW_TO_GET_REDIS.split(', or')[0]}"),
              (step.redis, f"a step that shares its layer through Redis: step 06 or later, not {step.number}")]
    if is_production(folder):  # its settings read DATABASE_URL: the stack starts a cluster
        needed.append((services.postgres_binaries(), f"PostgreSQL: {services.HOW_TO_GET_POSTGRES}"))
    return [what for present, what in needed if not present]


def run_stack(step, folder, port):
    """`make run STACK=1`: the step behind nginx with TLS on https://127.0.0.1:<port>, two daphne
    processes on one Redis (tutorial/core/stack.py), and for a step with production settings a
    PostgreSQL cluster, until Ctrl-C stops them all."""
    wanting = stack_wanting(step, folder)
    if wanting:
        raise SystemExit("STACK=1 needs " + "; and ".join(wanting) + ".")
    from ..core.stack import start_stack

    def stop(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        running = start_stack(folder, port=port)
    except (RuntimeError, serve.NotServing) as failed:
        raise SystemExit(f"The stack did not start: {failed}") from None
    except KeyboardInterrupt:  # stopped while it started: what had started is stopped already
        return 0
    try:
        print(f"Open {running.url}/chat/ in your browser.\n"
              f"nginx there does TLS with a certificate from a test authority made for this run, which no "
              f"browser trusts: accept it once for the page (its wss:// socket then goes through), or trust "
              f"{running.ca}.\n"
              f"Behind it: {len(running.servers)} daphne processes on Redis at {running.redis.url}"
              + (f" and PostgreSQL at {running.postgres.url}" if running.postgres else "")
              + (f"; {running.http_url}/ redirects to https" if running.http_url else "")
              + f"; their consoles are in {running.folder} until it stops.\n"
              "Ctrl-C stops it all.", flush=True)
        for number, server in enumerate(running.servers, 1):
            print(f"{running.server} {number}: pid {server.pid}, port {server.port}", flush=True)
        restarts = []  # when each restart happened
        while running.nginx.process.poll() is None:
            dead = [index for index, server in enumerate(running.servers) if not server.running]
            if not dead:
                time.sleep(0.5)
                continue
            time.sleep(1)  # a Ctrl-C reaches the children too: let it stop us first
            # Restarted as a supervisor (systemd's Restart=always) would: its pages reconnect to the
            # other process meanwhile. Like systemd, give up after 5 starts in 10 s: a process that
            # dies as soon as it starts needs its console read, not another start.
            restarts = [when for when in restarts if when > time.monotonic() - 10] + [time.monotonic()] * len(dead)
            if len(restarts) > 5:
                print("The same processes died 5 times in 10 s: not starting them again.")
                break
            try:
                for index in dead:
                    server = running.servers[index]
                    print(f"{running.server} {index + 1} (pid {server.pid}) exited with {server.process.returncode}; "
                          "starting it again.", flush=True)
                    server = running.restart(index)
                    print(f"{running.server} {index + 1}: pid {server.pid}, port {server.port}", flush=True)
            except serve.NotServing as failed:
                print(f"It did not start again: {failed}")
                break
        print("A process of the stack stopped; the end of the consoles in " + str(running.folder) + ":")
        for log in sorted(running.folder.glob("*.log")):
            print(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-10:]))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        running.stop()
