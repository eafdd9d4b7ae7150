"""A pytest plugin, loaded with `-p tutorial.checks.report` by every run of a step's checks
(`make check`, `make watch`, `make hint`, and each of `make test`'s runs).

It does these things:
- orders the checks: the step's own task checks first, in-process before live before
  browser, and within a layer in the order of the step's tasks; then the step's own
  regression guards, in the same order; earlier steps' checks after them;
- tells a hint from a crash: a failure whose message a check wrote (pytest.fail, or
  `assert ..., "message"`) is a hint; a bare `assert`, a KeyError, an ImportError is not;
- with TUTORIAL_FAST set (the learner's commands, not `make test`), runs only the first
  failing check of a task: the task is not done either way, and the others would each wait
  out a timeout before they failed too;
- with TUTORIAL_GUARDS=in-process (the learner's commands again), keeps only the in-process
  checks of earlier steps: they guard the protocol in a few seconds, where their live and
  browser twins would start servers and windows for a minute; `make test` runs them all;
- with TUTORIAL_LAYERS (e.g. "live,browser"), keeps only the checks of those layers: the
  learner's commands run a step's in-process checks and its slower ones in two pytest
  processes side by side, and TUTORIAL_SIBLING_REPORT names the other one's report, so that
  a task failed there is not checked again here (TUTORIAL_FAST). A live check marked
  `beside` belongs to the layer "beside" there: the in-process pytest asks for it, and runs
  it once its own checks are done, instead of sitting idle while the live pytest runs every
  live check in turn;
- writes one JSON line per check to the file named by TUTORIAL_REPORT as soon as the
  check ends, so that the checklist can show each task as soon as its checks are done, and
  `make test` counts what passed from these lines, never from pytest's text.
"""

import json
import os
import time
import traceback
from pathlib import Path

import pytest

from ..core.steps import STEPS, find
from ..core.tasks import load

STEP = find(os.environ.get("TUTORIAL_STEP", "latest"))
STEP_DIR = Path(os.environ.get("TUTORIAL_STEP_DIR", STEP.folder)).resolve()
LAYERS = ("in-process", "live", "browser")
LIVE_FIXTURES = {"server", "ws_connect", "start_server", "redis_server"}
BROWSER_FIXTURES = {"open_page", "browser"}

_checks = {}  # nodeid -> what the report says of it besides its outcome
_results = {}  # nodeid -> [outcome, hint?, message, seconds], merged over setup, call and teardown
_failed_tasks = {}  # task number -> the check that failed it, in this run
_written_early = {}  # nodeid -> the result reported before the session's teardown


def layer(item):
    names = set(getattr(item, "fixturenames", ()))
    if item.get_closest_marker("browser") or names & BROWSER_FIXTURES:
        return "browser"
    return "live" if item.get_closest_marker("live") or names & LIVE_FIXTURES else "in-process"


def batch(item):
    """The layer that TUTORIAL_LAYERS names a check by: its own, or "beside" (see above)."""
    return "beside" if layer(item) == "live" and item.get_closest_marker("beside") else layer(item)


def step_of(item):
    return next((step.number for step in STEPS if Path(str(item.fspath)) == step.test_file), None)


@pytest.hookimpl(trylast=True)  # after conftest's, which leaves out until() checks
def pytest_collection_modifyitems(config, items):
    tasks = load(STEP)
    layers = os.environ.get("TUTORIAL_LAYERS")
    beside = "beside" in (layers or "").split(",")

    def order(pair):
        index, item = pair
        own = step_of(item) == STEP.number
        task = tasks.task_of(item.originalname) if own else None
        # A step's own checks that are no task's (its regression guards) after all its tasks',
        # whatever their layer: the checklist is whole as soon as each task has its verdict;
        # but the `beside` checks after every in-process one, which is a verdict of its own.
        return (not own, beside and batch(item) == "beside", own and not task, LAYERS.index(layer(item)),
                task.number if task else 0, index)

    items[:] = [item for _, item in sorted(enumerate(items), key=order)]
    for keep, left_out in ((os.environ.get("TUTORIAL_GUARDS") == "in-process",
                            lambda item: step_of(item) != STEP.number and layer(item) != "in-process"),
                           (layers, lambda item: batch(item) not in layers.split(","))):
        left = [item for item in items if keep and left_out(item)]
        if left:
            config.hook.pytest_deselected(items=left)
            items[:] = [item for item in items if item not in left]
    for item in items:
        regression = item.get_closest_marker("regression")
        _checks[item.nodeid] = {
            "check": item.originalname,
            "step": step_of(item),
            "layer": layer(item),
            "regression": regression.args[0] if regression and regression.args else None,
        }


def pytest_deselected(items):
    """The step's own long checks, left out by `-m "not long"`, are reported as skipped, with why:
    their task is judged by the rest of its checks, and `make test` runs them."""
    path = os.environ.get("TUTORIAL_REPORT")
    for item in items:
        layers = os.environ.get("TUTORIAL_LAYERS")
        if layers and batch(item) not in layers.split(","):
            continue  # the pytest beside this one reports it
        if path and item.get_closest_marker("long") and step_of(item) == STEP.number:
            regression = item.get_closest_marker("regression")
            line = {"id": item.nodeid, "check": item.originalname, "step": STEP.number, "layer": layer(item),
                    "regression": regression.args[0] if regression and regression.args else None,
                    "outcome": "skipped", "hint": True, "seconds": 0.0, "deselected": True,
                    "message": "a long check (a room kept quiet for a minute, a timer of the step's waited out, "
                               "or a rare race hunted at length): `make test` runs it"}
            with open(path, "a") as report:
                report.write(json.dumps(line) + "\n")


def own_task(item):
    if step_of(item) != STEP.number:
        return None
    return load(STEP).task_of(item.originalname)


def failed_beside():
    """{task number: check} of the step's own tasks failed in the pytest beside this one."""
    path = os.environ.get("TUTORIAL_SIBLING_REPORT")
    if not path or not Path(path).is_file():
        return {}
    failed = {}
    for line in Path(path).read_text().split("\n")[:-1]:  # the last piece may be a line still written
        record = json.loads(line)
        task = load(STEP).task_of(record["check"]) if record["step"] == STEP.number else None
        if task and record["outcome"] == "failed":
            failed.setdefault(task.number, record["check"])
    return failed


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    done = os.environ.get("TUTORIAL_IN_PROCESS_DONE")
    if done and layer(item) != "in-process":
        # The in-process checks ran first (the order above): that verdict is whole now,
        # and the checks after it (marked `beside`) are no reason to keep a learner waiting.
        Path(done).touch()
    task = own_task(item)
    if os.environ.get("TUTORIAL_FAST") and task:
        failed = {**failed_beside(), **_failed_tasks}
        if task.number in failed:
            pytest.skip(f"not run: task {task.number} already fails ({failed[task.number]})")


def explain(excinfo):
    """(is it a hint?, the words to show) for a check's failure."""
    error = excinfo.value
    text = str(error).strip()
    if isinstance(error, pytest.fail.Exception):
        if text.startswith("Timeout") or text.startswith("DID NOT RAISE"):
            return False, text
        return True, text
    if isinstance(error, AssertionError):
        # pytest rewrites `assert x, "why"` to raise AssertionError("why\nassert x"), and a bare
        # `assert x` to AssertionError("assert x"): only the first kind has words for a learner.
        words = text.split("\nassert ")[0].strip()
        if words and not words.startswith("assert "):
            return True, words
        return False, text
    # An exception from the learner's code (or from a check that did not expect it): say where,
    # in the learner's files if it passed through them.
    where = ""
    for frame in reversed(traceback.extract_tb(excinfo.tb)):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(STEP_DIR):
            where = f" (at {path.relative_to(STEP_DIR)}:{frame.lineno}: {frame.line})"
            break
    return False, f"{type(error).__name__}: {text}{where}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None:
        report.tutorial = explain(call.excinfo)


def pytest_runtest_logreport(report):
    result = _results.setdefault(report.nodeid, ["passed", True, "", 0.0])
    result[3] += report.duration
    if report.failed:
        check = _checks.get(report.nodeid, {})
        task = load(STEP).task_of(check.get("check")) if check.get("step") == STEP.number else None
        if task:
            _failed_tasks.setdefault(task.number, check["check"])
    if report.failed and result[0] != "failed":
        hint, message = getattr(report, "tutorial", (False, str(report.longrepr)[-2000:]))
        result[:3] = ["failed", hint, message]
    elif report.skipped and result[0] == "passed":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        result[:3] = ["skipped", True, reason.removeprefix("Skipped: ")]


def write(nodeid, outcome, hint, message, seconds, last=False):
    path = os.environ.get("TUTORIAL_REPORT")
    if path:
        # "ended": when, by the wall clock, so that a reader can tell when the last check of a
        # kind was done (the in-process verdict), not only when it read the line.
        line = {"id": nodeid, **_checks.get(nodeid, {}), "outcome": outcome, "hint": hint,
                "message": message, "seconds": round(seconds, 3), "ended": round(time.time(), 3)}
        if last:
            # No check of this process follows: its verdict is whole, while pytest still tears
            # the session down (a test database, servers, a browser) and Python exits.
            line["last"] = True
        with open(path, "a") as report:
            report.write(json.dumps(line) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    if nextitem is None and item.nodeid in _results:
        # The last check's teardown also stops the session's servers and browser, a second or
        # more: report its result now, and again after only if its teardown fails.
        _written_early[item.nodeid] = list(_results[item.nodeid])
        write(item.nodeid, *_results[item.nodeid], last=True)
    yield


def pytest_runtest_logfinish(nodeid, location):
    result = _results.pop(nodeid, ["passed", True, "", 0.0])
    early = _written_early.pop(nodeid, None)
    if early is None or early[:3] != result[:3]:
        write(nodeid, *result, last=early is not None)
