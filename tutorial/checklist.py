"""Run a step's checks and show them as the learner's checklist: a line a task, the first
failing task's hint, and how many tasks are done.

The checks are the same pytest checks `make test` runs; tutorial/report.py (a pytest plugin)
orders them (the step's own first, in-process before live before browser) and reports each
as it ends, so that the checklist fills in while the slower checks still run.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from .runner import step_env, suite
from .steps import ROOT, STEPS
from .tasks import load

TTY = sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
MARKS = {"done": "✓", "failed": "✗", "pending": "·", "skipped": "–"}


def colour(text, code):
    return f"\x1b[{code}m{text}\x1b[0m" if TTY else text


@dataclass
class Verdict:
    step: object
    folder: Path
    records: list = field(default_factory=list)  # one dict a check, from tutorial/report.py
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
            command = [sys.executable, "-m", "pytest", "-p", "tutorial.report", "-rfEs",
                       "-v" if verbose else "-q", *quick, *batch, *extra]
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
                if report.is_file():
                    # A line is whole once its newline is written: the last piece may still grow.
                    *complete, _partial = report.read_text().split("\n")
                    if len(complete) > seen:
                        verdict.records.extend(json.loads(line) for line in complete[seen:])
                        entry[2] = len(complete)
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


# Lines fit an 80-column terminal, and wrap no wider than 92 on a wider one.
WIDTH = max(60, min(92, shutil.get_terminal_size((92, 24)).columns - 2))


def wrap(text, indent, width=None):
    return "\n".join(textwrap.fill(paragraph, width=width or WIDTH, initial_indent=indent, subsequent_indent=indent,
                                   break_on_hyphens=False, break_long_words=False)
                     for paragraph in text.split("\n\n"))


def render(verdict, where=None):
    """The checklist, as lines of text."""
    step = verdict.step
    tasks = load(step)
    lines = [colour(f"Step {step.name}: {step.title}", "1"), f"  in {where or verdict.folder}", ""]
    for task in tasks.tasks:
        state = verdict.state(task)
        if state == "pending" and verdict.finished:
            state = "failed" if verdict.could_not_run else "pending"
        mark = MARKS[state]
        mark = colour(mark, {"done": "32", "failed": "31", "skipped": "33"}.get(state, "2"))
        first, *rest = wrap(" ".join(task.do.split()), "", WIDTH - 7).splitlines()
        lines.append(f"  {mark} {task.number}. {first}")
        lines.extend(f"       {line}" for line in rest)
    lines.append("")
    count = f"{verdict.done_count} of {len(tasks.tasks)} tasks done"
    if not verdict.finished:
        lines.append(f"{count} so far; checking...")
        return lines
    if verdict.could_not_run:
        lines.append(colour("The checks could not run your project. pytest said:", "31"))
        lines.extend("  " + line for line in verdict.output.strip().splitlines()[-25:])
        return lines
    task = verdict.first_failing_task
    if task:
        failure = verdict.first_failure(task)
        lines.append(colour(f"{count}. Next: task {task.number}.", "1"))
        lines.append(f"  {failure['check']} says:")
        message = failure["message"].strip()
        if not failure["hint"]:
            message = (f"{message}\n\nThat is an error, not a check's answer: if it points into your "
                       f"files, fix it there first.")
        shown = wrap(message, "    ").splitlines()
        lines.extend(shown[:12] + (["    ... (`make check V=1` shows it all)"] if len(shown) > 12 else []))
        lines.append("  `make hint` gives a hint for it, a bit more each time you ask.")
        if verdict.guards_waiting and STEPS.index(step) > 0:
            lines.append("  (The checks of earlier steps run once every task passes.)")
    # Checks that are no task's (earlier steps', and this step's regression guards) are named
    # only when they fail, once for each distinct message: one import error can fail them all.
    by_message = {}
    for guard in verdict.broken_guards:
        by_message.setdefault(guard["message"].strip(), []).append(guard)
    failure_message = verdict.first_failure(task)["message"].strip() if task else None
    for message, guards in list(by_message.items())[:3]:
        first = guards[0]
        owner = f"step {first['step']}'s" if first["step"] != step.number else "this step's"
        others = f" and {len(guards) - 1} more" if len(guards) > 1 else ""
        if message == failure_message:
            lines.append(f"  The same error fails {len(guards)} check(s) of this and earlier steps too.")
            continue
        verb = "no longer pass" if len(guards) > 1 else "no longer passes"
        said = f"✗ {owner} check {first['check']}{others} {verb}: something that worked before broke."
        lines.extend(colour(line, "31") for line in wrap(said, "  ").splitlines())
        shown = wrap(message, "      ").splitlines()
        lines.extend(shown[:6] + (["      ..."] if len(shown) > 6 else []))
    if len(by_message) > 3:
        lines.append(f"  ... and {len(by_message) - 3} more kinds of failure in earlier steps' checks")
    if verdict.all_done:
        later = [s for s in STEPS if s.number > step.number]
        skipped = [t for t in tasks.tasks if verdict.state(t) == "skipped"]
        from . import workspace

        mine = verdict.folder.resolve() == workspace.folder(step).resolve()
        lines.append(colour(f"{count}: step {step.number} done!", "32;1"))
        if mine:
            lines.extend(wrap(f"Next: `make start` begins step {later[0].number}." if later else
                              "That was the last step: you built a chat that scales out. Well done.", "").splitlines())
        if skipped:
            reasons = {r["message"] for t in skipped for c in t.checks for r in verdict.results(c)}
            lines.append(f"  ({len(skipped)} task(s) could not be checked here: {'; '.join(sorted(reasons))})")
    elif not task and not verdict.broken_guards:
        lines.append(f"{count}.")
    return lines
