"""Replay a step as a learner meets it: `python -m tutorial replay NN` (make test runs it for each step;
`--browser` adds the browser checks).

In a scratch workspace, `make start` begins step N from our step N-1, exactly as it does
for a learner who has no step N-1 of their own. Then step N's own checks run on it, every
one of them, and this must hold:
- each check of a task fails there (a check that passes does not check what step N adds);
- each regression guard (@pytest.mark.regression) passes there;
- each failure's message is a hint written for a learner, not a bare assert or an exception;
- what separates that start from our step N lies in the files the tasks name, so the task
  list tells the learner every file to change.
Our step N itself passes every check in its suite (`make test` runs that), and applying the
diff from the start to our step gives exactly our step's files, so the tasks can all be done.
"""

import argparse
import tempfile

from ..checks.verdict import run
from ..core.steps import STEPS, find
from ..core.tasks import load
from ..learner.workspace import Workspace, changed_files, same_as

# The replay leaves the browser checks out. With them (each replay then starts a Chromium of
# its own, six at once) `make test` took about 80 s instead of 60 s on a 2-core machine, and the
# extra load made the browser checks of the suites flakier. Each of them does fail on the step
# before: `python -m tutorial replay NN --browser` shows it.
WITH_BROWSER = False


def replay(number, browser=WITH_BROWSER):
    step = find(number)
    index = STEPS.index(step)
    if index == 0:
        print(f"step {step.number} starts complete: nothing to replay")
        return 0
    tasks = load(step)
    problems = []
    with tempfile.TemporaryDirectory(prefix="tutorial-replay-") as scratch:
        workspace = Workspace(scratch)
        workspace.start(step.number, say=lambda *_: None)
        folder = workspace.folder(step)
        changed = set(changed_files(folder, step.folder))
        named = {name for task in tasks.tasks for name in task.files}
        for name in sorted(changed - named):
            problems.append(f"{name} differs from our step {step.number}, but no task names it in its files")
        extra = [] if browser else ["-m", "not long and not browser"]
        verdict = run(step, folder, files=[str(step.test_file)], extra=extra, every=True)
        # The learner's last save: our step's files over theirs. The workspace then holds exactly
        # our step, whose every check `make test` runs, so every task passes there.
        workspace.apply(step)
        if not same_as(folder, step):
            problems.append(f"after our step {step.number}'s files are saved over the start, the workspace "
                            f"still differs: {changed_files(folder, step.folder)}")
    if verdict.could_not_run:
        print(verdict.output[-3000:])
        problems.append("pytest could not run the checks")
    guards = 0
    for record in verdict.records:
        if record.get("deselected"):
            continue  # a long check, left out here: `make test` runs it on our step
        task = tasks.task_of(record["check"])
        name = record["id"].split("::")[-1]
        if record["regression"]:
            guards += 1
            if record["outcome"] == "failed":
                problems.append(f"{name} is a regression guard ({record['regression']}) but failed on the start "
                                f"of step {step.number}: {record['message'][:300]}")
        elif task is None:
            problems.append(f"{name} belongs to no task of step {step.number}")
        elif record["outcome"] == "passed":
            problems.append(f"{name} (task {task.number}) passed on the start of step {step.number}, so it does not "
                            f"check what the task asks; if it should hold on both, mark it regression(\"why\")")
        elif record["outcome"] == "failed" and not record["hint"]:
            problems.append(f"{name} (task {task.number}) failed with no hint for a learner: {record['message'][:300]}")
    ran = {record["check"] for record in verdict.records}
    for task in tasks.tasks:
        missing = [check for check in task.checks if check not in ran]
        if missing and browser:
            problems.append(f"task {task.number}'s checks {missing} did not run")
    failed = sum(r["outcome"] == "failed" for r in verdict.records)
    skipped = sum(r["outcome"] == "skipped" for r in verdict.records)
    seconds = verdict.finished_at - verdict.started
    if problems:
        print(f"step {step.number} replayed from step {STEPS[index - 1].number}: {len(problems)} problem(s) "
              f"({seconds:.1f} s)")
        for problem in problems:
            print("  " + problem)
        return 1
    print(f"step {step.number} replayed from step {STEPS[index - 1].number}: {failed} checks of {len(tasks.tasks)} "
          f"tasks fail there with a hint, {guards} regression guard{'s hold' if guards != 1 else ' holds'}"
          f"{f', {skipped} skipped' if skipped else ''} ({seconds:.1f} s)")
    return 0



def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", help="the step to replay, e.g. 03")
    parser.add_argument("--browser", action="store_true", help="run the browser checks too")
    args = parser.parse_args(argv)
    return replay(args.step, browser=args.browser)
