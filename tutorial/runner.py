"""What `make run`, `make check` and `make test` do."""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import services
from .steps import ROOT, STEPS, find
from .wire import port_in_use

def step_env(step, folder):
    """The environment a step's checks run in: its folder on sys.path, its settings, its number."""
    env = dict(os.environ)
    # The in-process checks use the step's default layer; the Redis checks start a Redis of their own.
    env.pop("REDIS_URL", None)
    env.update(
        TUTORIAL_STEP=step.number,
        TUTORIAL_STEP_DIR=str(folder),
        DJANGO_SETTINGS_MODULE="mysite.settings",
        PYTHONPATH=str(folder),
        PYTHONUNBUFFERED="1",
    )
    return env


def run(number, port, folder=None):
    """Serve a step: ours (STEP=), a folder (DIR=), else the workspace's current step, else our last."""
    from . import workspace

    if folder:
        step = find(number) if number else (workspace.current() or STEPS[-1])
        folder = Path(folder).resolve()
    elif not number and workspace.current():
        step = workspace.current()
        folder = workspace.folder(step)
    else:
        step = find(number)
        folder = step.folder
    if not (folder / "manage.py").is_file():
        raise SystemExit(f"{folder} has no manage.py: give DIR= the folder that holds it.")
    # Checked first: otherwise daphne only logs "Address already in use" and keeps running, after
    # we have told the learner to open a page that another server (or nothing) is answering.
    if port_in_use(port):
        # Suggest a port that is free now; 8001 is where `make docs` serves.
        free = next((p for p in range(port + 1, port + 100) if p != 8001 and not port_in_use(p)), port + 2)
        raise SystemExit(f"Port {port} is taken: something (another `make run`?) already listens on "
                         f"127.0.0.1:{port}. Stop it, or serve on another port: make run PORT={free}")
    if folder != step.folder:
        print(f"Serving your copy of step {step.name}, {workspace.relative(folder)}.")
    else:
        print(f"Step {step.name}: {step.concept}")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # The admin, sessions and users need their tables; migrate is quick when there is nothing to do.
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
                   cwd=folder, env=env, check=True)
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
    redis = None
    if step.redis and not env.get("REDIS_URL"):
        if services.redis_binary():
            redis = services.start_redis()
            env["REDIS_URL"] = redis.url
            print(f"Started redis-server at REDIS_URL={redis.url}; it stops with the server.")
        else:
            print(f"No Redis, so this step runs on the in-memory layer, in one process. For Redis, "
                  f"{services.HOW_TO_GET_REDIS}.")
    print(f"Open http://127.0.0.1:{port}/chat/ in your browser; Ctrl-C stops the server.", flush=True)
    if redis is None:
        os.chdir(folder)
        os.execve(sys.executable, command, env)
    # With a Redis of our own, the server runs as a child, so that Redis is stopped after it.
    def stop(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the clean-up below finish
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server = subprocess.Popen(command, cwd=folder, env=env)
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches runserver too, and it stops by itself
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
        redis.stop()


def suite(step):
    """A step's suite: its own test file and those of every step before it."""
    return [str(s.test_file) for s in STEPS if s.number <= step.number]


SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|error|errors|deselected)\b")


def counts(output):
    """passed/failed/skipped/errors from pytest's closing line."""
    found = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    for line in reversed(output.splitlines()):
        # e.g. "57 passed, 3 deselected in 8.63s", framed by "=" unless -q
        if re.search(r"\bin [\d.]+s\b", line) and SUMMARY.search(line):
            for number, word in SUMMARY.findall(line):
                word = "errors" if word.startswith("error") else word
                if word in found:
                    found[word] = int(number)
            break
    return found


def _pytest(step, folder, files, *args):
    command = [sys.executable, "-m", "pytest", "-q", "-rfEs", *files, *args]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=step_env(step, folder),
                          capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def suite_job(step):
    code, output, seconds = _pytest(step, step.folder, suite(step), "-m", "not long")
    found = counts(output)
    ok = code == 0
    title = f"step {step.name}: {found['passed']} passed, {found['failed'] + found['errors']} failed, " \
            f"{found['skipped']} skipped ({seconds:.1f} s)"
    return ok, title, output, (found["passed"], found["failed"] + found["errors"], found["skipped"])


def replay_job(step):
    """Step N replayed as a learner meets it (tutorial/replay.py): started from our step N-1, each
    of its task checks fails there with a hint, each regression guard holds, and the tasks name
    every file that differs. A subprocess of its own, because it makes a scratch workspace."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tutorial.replay", step.number], cwd=ROOT,
                          capture_output=True, text=True)
    output = (done.stdout + done.stderr).strip()
    ok = done.returncode == 0
    title = output.splitlines()[0] if ok and output else \
        f"step {step.number}'s replay FAILED ({time.monotonic() - started:.1f} s)"
    return ok, title, "" if ok else output, (1, 0, 0) if ok else (0, 1, 0)


def has_long_checks(step):
    return "@pytest.mark.long" in step.test_file.read_text()


def long_job(step):
    """A step's own `long` checks: connections held open and quiet past every timeout in the
    stack. They mostly wait, so they run beside everything else rather than in its pool."""
    code, output, seconds = _pytest(step, step.folder, [str(step.test_file)], "-m", "long")
    found = counts(output)
    ok = code == 0
    title = f"step {step.name}'s long checks: {found['passed']} passed, " \
            f"{found['failed'] + found['errors']} failed, {found['skipped']} skipped ({seconds:.1f} s)"
    return ok, title, output, (found["passed"], found["failed"] + found["errors"], found["skipped"])


def docs_job():
    """The repository's and the docs site's checks: names shared by the steps, the strict build,
    freshness of what is generated, the site in a browser, and its legibility at 1280 px."""
    step = STEPS[-1]
    files = [str(ROOT / "tests" / name)
             for name in ("test_repository.py", "test_workspace.py", "test_docs.py", "test_site.py")]
    code, output, seconds = _pytest(step, step.folder, files)
    found = counts(output)
    ok = code == 0
    title = f"repository and docs: {found['passed']} passed, {found['failed'] + found['errors']} failed, " \
            f"{found['skipped']} skipped ({seconds:.1f} s)"
    return ok, title, output, (found["passed"], found["failed"] + found["errors"], found["skipped"])


def bench_job():
    """The benchmark, once at tiny sizes into a scratch folder: it must run; its numbers are not judged."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tutorial-bench-") as out:
        command = [sys.executable, "-m", "tutorial.bench", "--tiny", "--out", out]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        output = done.stdout + done.stderr
        rows = []
        if done.returncode == 0:
            rows = json.loads((Path(out) / "results.json").read_text())["results"]
        # The plot is drawn where `make bench-setup` has installed matplotlib (as CI does).
        plotted = (Path(out) / "bench.png").is_file() or not importlib.util.find_spec("matplotlib")
    measured = {row["variant"] for row in rows}
    # Every variant the machine can serve: Redis ones need redis-server, uvicorn ones uvicorn
    # (the "bench" extra, as matplotlib); the list is bench.py's own.
    from . import bench

    wanted = {variant.key for variant in bench.available(bench.VARIANTS)}
    # Not a figure but a fact: step 07 stored every message the run sent it, once.
    unstored = [f"{row['variant']}: {row['stored']} rows for {row['sent']} messages" for row in rows
                if "stored" in row and row["stored"] != row["sent"]]
    ok = done.returncode == 0 and wanted <= measured and plotted and not unstored
    output += "".join(f"\nrows stored do not match the messages sent, {line}" for line in unstored)
    title = f"bench: a tiny run {'measured' if ok else 'FAILED to measure'} " \
            f"{', '.join(sorted(measured)) or 'nothing'} ({time.monotonic() - started:.1f} s)"
    return ok, title, "" if ok else output, (1, 0, 0) if ok else (0, 1, 0)


def test_everything(jobs):
    started = time.monotonic()
    # (how long it takes, roughly; the job): a later step's suite holds every earlier step's checks.
    work = [(2 + index, lambda step=step: suite_job(step)) for index, step in enumerate(STEPS)]
    proofs = [lambda step=step: replay_job(step) for step in STEPS[1:]]
    proofs += [lambda step=step: long_job(step) for step in STEPS if has_long_checks(step)]
    work.append((3, bench_job))
    if (ROOT / "mkdocs.yml").is_file():
        work.append((len(STEPS), docs_job))
    totals = [0, 0, 0]
    all_ok = True
    # Suites run side by side (each in its own process: the steps share module names,
    # and Django is set up once per process); results are printed as they finish.
    # The proofs and the long checks run beside them, all at once, in a pool of their own: on the
    # step before, most proof checks wait out a timeout, as they should, and the long checks wait
    # out a quiet minute; that takes time but hardly any CPU.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            ThreadPoolExecutor(max_workers=len(proofs)) as waiting:
        proving = [waiting.submit(job) for job in proofs]
        # The longest start first, so that the workers finish close together; results print in order.
        futures = {}
        for index in sorted(range(len(work)), key=lambda index: -work[index][0]):
            futures[index] = pool.submit(work[index][1])
        done = [futures[index] for index in range(len(work))]
        # Printed in this order: each step's suite, each proof, the long checks, then the bench and the docs.
        for future in done[:len(STEPS)] + proving + done[len(STEPS):]:
            ok, title, output, (passed, failed, skipped) = future.result()
            all_ok &= ok
            totals[0] += passed
            totals[1] += failed
            totals[2] += skipped
            if output and not ok:
                print(output.rstrip())
            elif output:
                # A passing suite says only why anything was skipped (e.g. no browser installed).
                for line in output.splitlines():
                    if line.startswith("SKIPPED"):
                        print("      " + line)
            print(("ok    " if ok else "FAIL  ") + title, flush=True)
    print(f"\nall checks in {time.monotonic() - started:.1f} s")
    print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 0 if all_ok else 1
