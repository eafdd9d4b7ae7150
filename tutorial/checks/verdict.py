"""Run a step's checks and read their results: one JSON line per check, from the pytest
plugin in report.py, gathered into a Verdict (which tasks are done, which check failed).

The checks are the same pytest checks `make test` runs; the plugin orders them (the step's own
first, in-process before live before browser) and reports each as it ends, so that a checklist
can fill in while the slower checks still run. Where a learner waits, run() splits them over
three pytest processes (see there); `make test` runs each step's in one (run_once).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.steps import ROOT, STEPS
from ..core.tasks import load


def step_env(step, folder):
    """The environment a step's checks run in: its folder on sys.path, its settings, its number."""
    env = dict(os.environ)
    # The in-process checks use the step's default layer; the Redis checks start a Redis of their own.
    env.pop("REDIS_URL", None)
    # pytest rewrites the asserts of the test files and of its plugins (all of Hypothesis's 120
    # modules: it is one) and caches the result as .pyc files; where that is turned off, every
    # run compiled them anew, 1.5 s before the first check.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        TUTORIAL_STEP=step.number,
        TUTORIAL_STEP_DIR=str(folder),
        DJANGO_SETTINGS_MODULE="mysite.settings",
        PYTHONPATH=str(folder),
        PYTHONUNBUFFERED="1",
    )
    return env


def suite(step):
    """A step's suite: its own test file and those of every step before it."""
    return [str(s.test_file) for s in STEPS if s.number <= step.number]


def pytest_command(files, *args, quiet=True):
    """pytest with the plugin that writes a JSON line per check to $TUTORIAL_REPORT."""
    return [sys.executable, "-m", "pytest", *pytest_args(files, *args, quiet=quiet)]


def pytest_args(files, *args, quiet=True):
    """pytest_command()'s arguments to pytest, for a process that runs pytest already (Warm)."""
    return ["-p", "tutorial.checks.report", "-rfEs", "-q" if quiet else "-v", *files, *args]


def read_records(path, skip=0):
    """The whole JSON lines in the report file at `path`, after the first `skip` of them."""
    if not Path(path).is_file():
        return []
    # A line is whole once its newline is written: the last piece may still grow.
    *complete, _partial = Path(path).read_text().split("\n")
    return [json.loads(line) for line in complete[skip:]]


@dataclass(frozen=True)
class Counts:
    passed: int
    failed: int  # failed checks, errors in set-up or tear-down included
    skipped: int
    could_not_run: bool  # pytest exited with 2 to 5: it could not collect or run the checks

    def __str__(self):
        text = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        return text + (" (pytest could not run the checks)" if self.could_not_run else "")


def run_once(step, folder, files, *args, env=()):
    """Run `files` as step `step` on `folder` in one pytest process and count its JSON lines.
    Returns (Counts, pytest's output, seconds)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tutorial-checks-") as scratch:
        report = Path(scratch) / "report.jsonl"
        done = subprocess.run(pytest_command(files, *args), cwd=ROOT, capture_output=True, text=True,
                              env={**step_env(step, folder), **dict(env), "TUTORIAL_REPORT": str(report)})
        records = read_records(report)
    # Long checks left out by -m "not long" are reported (for the checklist) but not counted.
    # A check reported twice (the last one, again after a failed teardown): its last word counts.
    records = list({record["id"]: record for record in records}.values())
    outcomes = [record["outcome"] for record in records if not record.get("deselected")]
    broken = done.returncode not in (0, 1) or (done.returncode == 1 and not records)
    counts = Counts(outcomes.count("passed"), outcomes.count("failed") + broken, outcomes.count("skipped"),
                    broken)
    return counts, done.stdout + done.stderr, time.monotonic() - started


@dataclass
class Verdict:
    step: object
    folder: Path
    records: list = field(default_factory=list)  # one dict a check, from checks/report.py
    returncode: int | None = None  # None while the checks still run
    output: str = ""  # pytest's own output, for -v and for a run that could not start
    started: float = field(default_factory=time.monotonic)
    own_done_at: float | None = None  # when the last of the step's own in-process checks ended
    tasks_done_at: float | None = None  # when the last of the step's own checks ended (before the guards')
    finished_at: float | None = None
    guards_waiting: bool = False  # earlier steps' checks not run, because a task still fails
    cancelled: bool = False  # stopped before the end: the files changed while the checks ran

    @property
    def tasks(self):
        return load(self.step).tasks

    def add(self, records):
        """Take new report lines; a check reported again (after a failed teardown) replaces its first."""
        fresh = {record["id"]: record for record in records}
        self.records = [r for r in self.records if r["id"] not in fresh] + list(fresh.values())

    def results(self, check):
        return [r for r in self.records if r["step"] == self.step.number and r["check"] == check]

    def state(self, task):
        """done, failed, pending (still running, or never ran) or skipped (e.g. no browser)."""
        results = [r for check in task.checks for r in self.results(check)]
        if any(r["outcome"] == "failed" for r in results):
            return "failed"
        ran = {r["check"] for r in results}
        if set(task.checks) - ran:
            return "pending"
        if all(r["outcome"] == "skipped" for r in results):
            return "skipped"
        return "done"

    def first_failure(self, task):
        return next((r for check in task.checks for r in self.results(check) if r["outcome"] == "failed"), None)

    @property
    def broken_guards(self):
        """Failed checks that are no task's: earlier steps' checks, and this step's regression guards."""
        own = {check for task in self.tasks for check in task.checks}
        return [r for r in self.records if r["outcome"] == "failed"
                and not (r["step"] == self.step.number and r["check"] in own)]

    @property
    def finished(self):
        return self.returncode is not None

    @property
    def could_not_run(self):
        # pytest exits 0 (all passed) or 1 (some failed); 2 to 5 mean it could not run the checks.
        # A project that cannot even be imported (a syntax error in settings.py) fails before
        # any check runs, with 1 from pytest-django's set-up: then there is no record at all.
        return self.finished and (self.returncode not in (0, 1) or (self.returncode and not self.records))

    @property
    def done_count(self):
        return sum(self.state(task) in ("done", "skipped") for task in self.tasks)

    @property
    def all_done(self):
        return (self.finished and not self.could_not_run and self.done_count == len(self.tasks)
                and not self.broken_guards and not self.guards_waiting and self.returncode == 0)

    @property
    def first_failing_task(self):
        return next((task for task in self.tasks if self.state(task) == "failed"), None)


class Warm:
    """pytest processes started ahead of the next run (tutorial/checks/warm.py), for `make watch`:
    each has imported what every run needs and waits for one job. refill() after a run, while
    the learner types; run() takes one for each of its processes, or starts one cold if none
    is left."""

    def __init__(self, size=3):
        self.size = size  # one for each of run()'s processes: quick, slow, guards
        self.ready = []

    def refill(self):
        self.ready = [process for process in self.ready if process.poll() is None]
        # Nothing that Python reads at start-up, for the job's own to take its place.
        env = {name: value for name, value in os.environ.items()
               if name not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
        while len(self.ready) < self.size:
            code = "import sys; from tutorial.checks.warm import main; sys.exit(main())"
            self.ready.append(subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, text=True))

    def take(self, args, env, log, nice):
        """A waiting process, now running pytest with `args`; None if there is none."""
        while self.ready:
            process = self.ready.pop(0)
            if process.poll() is None:
                # The log exists from now on, whatever becomes of the process: stopped before it
                # opens the log itself (a save while it still imports), or failing its imports.
                Path(log).write_text("")
                job = {"args": args, "env": env, "cwd": str(ROOT), "log": str(log), "nice": nice}
                process.stdin.write(json.dumps(job) + "\n")
                process.stdin.close()
                return process
        return None

    def close(self):
        for process in self.ready:
            process.stdin.close()  # no job: it exits
        for process in self.ready:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        self.ready = []


def run(step, folder, on_update=None, files=None, extra=(), verbose=False, every=False, cancel=None,
        warm=None):
    """Run `step`'s checks on `folder`; call on_update(verdict) as results come; return the Verdict.

    files: the test files (default: the step's suite, its own file and every earlier step's).
    every: run every check, even those of a task that already fails (the replay needs them all).
    cancel: called as the checks run; once it returns True, they are stopped and the verdict is
    marked `cancelled` (`make watch`, when the learner saves again: that run is out of date).
    warm: a Warm whose waiting processes run the checks, where it has them (`make watch`).
    """
    verdict = Verdict(step, Path(folder))
    # The long checks (a minute of quiet) are `make test`'s; `-m long` asks for them.
    quick = [] if "-m" in extra else ["-m", "not long"]
    env = {**step_env(step, folder), "TUTORIAL_TIMEOUT": "1"}
    if not every:
        env.update(TUTORIAL_FAST="1", TUTORIAL_FUZZ_EXAMPLES="30")
    if not every and not verbose:
        # Earlier steps' in-process checks only: the protocol they guard, in seconds; their live
        # and browser checks ran when those steps were done, and `make test` runs them all.
        env.update(TUTORIAL_GUARDS="in-process")
    files = list(files or suite(step))
    own = [name for name in files if Path(name) == step.test_file]
    guards = [name for name in files if name not in own]
    # Three pytest processes, where the learner waits for a verdict (not with V=1, nor in the
    # replay): the step's in-process checks, its live and browser checks beside them (those
    # mostly wait on servers and a browser, other processes), and earlier steps' checks, the
    # regression guards. The first, done in two seconds, then runs the live checks marked
    # `beside` (pyproject.toml), which the second would otherwise run in turn with its own. The
    # guards start once the first has ended and passed (a step's own tasks come first), and only
    # while every task passes: until then their failures would only repeat the task's (judged as
    # step 03, step 01's checks expect the channel name that task 2 asks for).
    split = bool(own) and not verbose and not every
    if split:
        plan = [("quick", own, "in-process,beside"), ("slow", own, "live,browser")]
    else:
        plan = [("all", files, None)]
    verdict.guards_waiting = split and bool(guards)
    with tempfile.TemporaryDirectory(prefix="tutorial-check-") as scratch:
        running = {}  # name -> [process, report path, lines read so far, log path]
        reported = set()  # the processes whose last check has reported (report.py's "last")
        in_process_done = Path(scratch) / "in-process-done"

        def launch(name, batch, layers, sibling=None, nice=0, patient=False):
            report, log = Path(scratch) / f"report-{name}.jsonl", Path(scratch) / f"pytest-{name}.log"
            process_env = {**env, "TUTORIAL_REPORT": str(report)}
            if layers:
                process_env["TUTORIAL_LAYERS"] = layers
            if sibling:
                process_env["TUTORIAL_SIBLING_REPORT"] = str(Path(scratch) / f"report-{sibling}.jsonl")
            if name == "quick":
                # It says when its in-process checks are done, before it goes on to the rest.
                process_env["TUTORIAL_IN_PROCESS_DONE"] = str(in_process_done)
            if name == "slow":
                # Its Chromium starts once the in-process checks are done (tests/conftest.py, head_start).
                process_env["TUTORIAL_BROWSER_AFTER"] = str(in_process_done)
            if patient:
                # The guards run only once every task passes, so they should pass too: they get the
                # checks' usual bounds (3 s in process), which a busy machine needs, and not the
                # checklist's 1 s, meant for a step's own checks that fail by waiting.
                process_env.pop("TUTORIAL_TIMEOUT")
            command = pytest_command(batch, *quick, *extra, quiet=not verbose)
            process = None
            if warm is not None and not verbose:
                process = warm.take(pytest_args(batch, *quick, *extra), process_env, log, nice)
            if process is None:
                with open(log, "w") as out:
                    process = subprocess.Popen(command, cwd=ROOT, env=process_env,
                                               stdout=None if verbose else out,
                                               stderr=None if verbose else subprocess.STDOUT,
                                               preexec_fn=(lambda: os.nice(nice)) if nice else None)
            running[name] = [process, report, 0, log]

        def over(name):
            return name in running and running[name][0].poll() is not None

        def passed(name):  # exit 5: this process's layer has no check in this step
            return over(name) and running[name][0].returncode in (0, 5)

        def stop(name):
            # SIGINT, as Ctrl-C: pytest then still tears its fixtures down (servers, browser).
            if name in running and running[name][0].poll() is None:
                running[name][0].send_signal(signal.SIGINT)
                stopping.append(running[name][0])

        stopping = []
        # Priorities, as the learner waits for them: the in-process verdict first, then the
        # rest of the tasks (their servers and browser inherit the niceness), then the guards.
        for name, batch, layers in plan:
            launch(name, batch, layers, sibling={"quick": "slow", "slow": "quick"}.get(name),
                   nice=5 if name == "slow" else 0)
        while True:
            if cancel and cancel():
                for name in running:
                    stop(name)
                verdict.cancelled = True
                break
            changed = False
            # Before the reads below, so that every record written before it is read by then.
            quick_said_done = in_process_done.exists()
            for name, entry in running.items():
                process, report, seen, _ = entry
                fresh = read_records(report, seen)
                if fresh:
                    verdict.add(fresh)
                    entry[2] = seen + len(fresh)
                    changed = True
                    if any(record.get("last") for record in fresh):
                        reported.add(name)
            failing = any(verdict.state(task) == "failed" for task in verdict.tasks)
            # The in-process checks are all reported once their last one has, or once their pytest
            # goes on to its `beside` checks: the browser (waiting for in_process_done) may start
            # then, not half a second later, when their process has torn the test database down.
            if split and (over("quick") or "quick" in reported or quick_said_done) \
                    and verdict.own_done_at is None:
                verdict.own_done_at = time.monotonic()
                in_process_done.touch()
                changed = True
            elif not split and changed:
                _note_own_done(verdict)
            own_over = all(over(name) for name, *_ in plan)
            # Every task has its verdict once each has a result (or its process ended): the
            # learner's checklist is whole, while pytest may still stop its servers and browser.
            if verdict.tasks_done_at is None and (
                    own_over or all(verdict.state(task) != "pending" for task in verdict.tasks)):
                verdict.tasks_done_at = time.monotonic()
            slow_failed = over("slow") and not passed("slow")
            if verdict.guards_waiting and "guards" not in running and passed("quick") \
                    and not failing and not slow_failed:
                launch("guards", guards, None, nice=10, patient=True)
                verdict.guards_waiting = False
            if failing and "guards" in running:
                stop("guards")
                del running["guards"]
                verdict.records = [r for r in verdict.records if r["step"] == step.number]
                verdict.guards_waiting = True
                changed = True
            if changed and on_update:
                on_update(verdict)
            if own_over and not ("guards" in running and not over("guards")):
                # A last read: what was written between the read above and the end.
                for entry in running.values():
                    fresh = read_records(entry[1], entry[2])
                    verdict.add(fresh)
                    entry[2] += len(fresh)
                break
            time.sleep(0.05)
        for process in stopping:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        # A pytest that ran one layer of a step that has none (step 05 has no browser check)
        # exits 5, "no tests collected": for the verdict, that is nothing failed.
        codes = [0 if (process.returncode == 5 and name in ("quick", "slow", "guards")) else process.returncode
                 for name, (process, *_) in running.items() if process.returncode is not None] or [2]
        # 0: all passed; 1: some failed; 2-5: pytest could not run them, which outranks a failure.
        verdict.returncode = max(codes, key=lambda code: (code not in (0, 1), code))
        verdict.finished_at = time.monotonic()
        verdict.output = "" if verbose else "\n".join(log.read_text() for *_, log in running.values()
                                                      if log.exists())
    _note_own_done(verdict)
    if on_update and not verdict.cancelled:
        on_update(verdict)
    return verdict


def _note_own_done(verdict):
    if verdict.own_done_at is not None:
        return
    quick = [r for r in verdict.records if r["step"] == verdict.step.number and r["layer"] == "in-process"]
    later = [r for r in verdict.records if r["step"] != verdict.step.number or r["layer"] != "in-process"]
    # The in-process task checks run first (report.py orders them), so the first record of another
    # kind (or the end) closes them; the step's in-process regression guards may still follow.
    if quick and (later or verdict.finished):
        verdict.own_done_at = time.monotonic()
