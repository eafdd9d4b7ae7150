"""Each step's tasks for a learner: what to do, which checks prove it, and the hints.

They live in tutorial/tasks/NN-slug.toml, one file a step, and nothing else writes them:
the checklist of `make watch` and `make check`, `make hint`, and the "Your turn" section of
each step page are all read from there. A task names its checks (test functions in the
step's test file); tests/test_docs.py fails when a task has no check, or a check of the step
belongs to no task and is no regression guard.
"""

import ast
from dataclasses import dataclass
from functools import cache

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .steps import ROOT

TASKS_DIR = ROOT / "tutorial" / "tasks"


@dataclass(frozen=True)
class Task:
    number: int  # 1, 2, ... in the order the page teaches them
    do: str  # one sentence a learner can act on
    files: tuple  # where the work happens, relative to the project folder
    checks: tuple  # test function names in the step's test file
    nudge: str  # hint 1: a question or a pointer, no code
    concept: str  # hint 2: the idea, the API, and the file
    # Hint 3 is never typed: it is the diff from the learner's files to ours (`make hint`).


@dataclass(frozen=True)
class StepTasks:
    step: object
    intro: str  # what the learner starts from, and what the step asks, in a sentence or two
    given: tuple  # files that arrive complete from our step: read them, do not write them
    tasks: tuple

    def task_of(self, check):
        """The task that `check` (a test function's name) belongs to, or None."""
        return next((task for task in self.tasks if check in task.checks), None)


@cache
def load(step):
    path = TASKS_DIR / f"{step.name}.toml"
    data = tomllib.loads(path.read_text())
    tasks = tuple(
        Task(number, entry["do"].strip(), tuple(entry.get("files", ())), tuple(entry["checks"]),
             entry["nudge"].strip(), entry["concept"].strip())
        for number, entry in enumerate(data["task"], start=1)
    )
    return StepTasks(step, data.get("intro", "").strip(), tuple(data.get("given", ())), tasks)


def test_functions(step):
    """The check names in a step's test file, in file order, with their markers' names.

    Read with ast, not imported: importing a test file needs a step on sys.path and Django set up.
    """
    tree = ast.parse(step.test_file.read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            marks = set()
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) \
                        and target.value.attr == "mark":
                    marks.add(target.attr)
            found[node.name] = marks
    return found


def problems(step):
    """What is wrong with a step's tasks: a task with no check, or naming a check that does not
    exist, or a check of the step that belongs to no task and is no regression guard."""
    found = []
    tasks = load(step)
    checks = test_functions(step)
    for task in tasks.tasks:
        if not task.checks:
            found.append(f"task {task.number} of step {step.number} has no check")
        for name in task.checks:
            if name not in checks:
                found.append(f"task {task.number} of step {step.number} names {name}, which "
                             f"{step.test_file.name} does not define")
    for name, marks in checks.items():
        owner = tasks.task_of(name)
        if owner is None and "regression" not in marks:
            found.append(f"{name} ({step.test_file.name}) belongs to no task of step {step.number}")
        if owner is not None and "regression" in marks:
            found.append(f"{name} is a regression guard (it passes on the step before), so it is no task's check")
    for name in tasks.given:
        if not (step.folder / name).is_file():
            found.append(f"step {step.number} gives {name}, which steps/{step.name} does not have")
    return found
