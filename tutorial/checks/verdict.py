"""Run a step's checks and read their results: one JSON line per check, from the pytest
plugin in report.py, gathered into a Verdict (which tasks are done, which check failed).

The checks are the same pytest checks `make test` runs; the plugin orders them (the step's own
first, in-process before live before browser) and reports each as it ends, so that a checklist
can fill in while the slower checks still run.
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
    return [sys.executable, "-m", "pytest", "-p", "tutorial.checks.report", "-rfEs", "-q" if quiet else "-v",
            *files, *args]


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


def run(step, folder, on_update=None, files=None, extra=(), verbose=False, every=False, cancel=None):
    """Run `step`'s checks on `folder`; call on_update(verdict) as results come; return the Verdict.

    files: the test files (default: the step's suite, its own file and every earlier step's).
    every: run every check, even those of a task that already fails (the replay needs them all).
    cancel: called as the checks run; once it returns True, they are stopped and the verdict is
    marked `cancelled` (`make watch`, when the learner saves again: that run is out of date).
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
    # Earlier steps' checks (the regression guards) run in a second pytest, and only while every
    # task passes: started once the step's own in-process checks are done (so the learner's first
    # verdict has both cores to itself), beside the step's slower live and browser checks, and
    # stopped as soon as a task fails. Until then their failures would only repeat the task's:
    # judged as step 03, step 01's checks expect the channel name that task 2 asks for.
    batches = [own, [name for name in files if name not in own]] if own and not verbose else [files]
    batches = [batch for batch in batches if batch]
    verdict.guards_waiting = len(batches) > 1
    with tempfile.TemporaryDirectory(prefix="tutorial-check-") as scratch:
        running = []  # (process, report path, lines read so far, log path)

        def launch(batch):
            index = len(running)
            report, log = Path(scratch) / f"report-{index}.jsonl", Path(scratch) / f"pytest-{index}.log"
            command = pytest_command(batch, *quick, *extra, quiet=not verbose)
            with open(log, "w") as out:
                process = subprocess.Popen(command, cwd=ROOT, env={**env, "TUTORIAL_REPORT": str(report)},
                                           stdout=None if verbose else out,
                                           stderr=None if verbose else subprocess.STDOUT)
            running.append([process, report, 0, log])

        stopping = []
        launch(batches.pop(0))
        while True:
            if cancel and cancel():
                for process, *_ in running:
                    if process.poll() is None:
                        process.send_signal(signal.SIGINT)
                        stopping.append(process)
                verdict.cancelled = True
                break
            failing = any(verdict.state(task) == "failed" for task in verdict.tasks)
            own_over = running[0][0].poll() is not None
            if own_over and verdict.tasks_done_at is None:
                verdict.tasks_done_at = time.monotonic()
            if batches and not failing and (verdict.own_done_at or own_over):
                if not own_over or running[0][0].returncode == 0:
                    launch(batches.pop(0))
                    verdict.guards_waiting = False
            if batches and (failing or own_over):
                batches.clear()  # a task fails (or the step's checks could not run): no guards this time
            if failing and len(running) > 1 and running[1][0].poll() is None:
                # SIGINT, as Ctrl-C: pytest then still tears its fixtures down (servers, browser).
                running[1][0].send_signal(signal.SIGINT)
                stopping.append(running[1][0])
                del running[1:]
                verdict.records = [r for r in verdict.records if r["step"] == step.number]
                verdict.guards_waiting = True
            finished = all(process.poll() is not None for process, *_ in running) and not batches
            changed = False
            for entry in running:
                process, report, seen, _ = entry
                fresh = read_records(report, seen)
                if fresh:
                    verdict.records.extend(fresh)
                    entry[2] = seen + len(fresh)
                    changed = True
            if changed:
                _note_own_done(verdict)
                if on_update:
                    on_update(verdict)
            if finished:
                break
            time.sleep(0.05)
        for process in stopping:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        codes = [process.returncode for process, *_ in running if process.returncode is not None] or [2]
        # 0: all passed; 1: some failed; 2-5: pytest could not run them, which outranks a failure.
        verdict.returncode = max(codes, key=lambda code: (code not in (0, 1), code))
        verdict.finished_at = time.monotonic()
        verdict.output = "" if verbose else "\n".join(log.read_text() for *_, log in running)
    _note_own_done(verdict)
    if on_update and not verdict.cancelled:
        on_update(verdict)
    return verdict


def _note_own_done(verdict):
    if verdict.own_done_at is not None:
        return
    quick = [r for r in verdict.records if r["step"] == verdict.step.number and r["layer"] == "in-process"]
    later = [r for r in verdict.records if r["step"] != verdict.step.number or r["layer"] != "in-process"]
    # The in-process checks run first, so the first record of another kind (or the end) closes them.
    if quick and (later or verdict.finished):
        verdict.own_done_at = time.monotonic()
