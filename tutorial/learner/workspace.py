"""The learner's workspace: a folder of their own (work/, ignored by git) with one project a step.

    work/01-consumer/       the learner's step 01, started from their own step 00
    work/02-routing/        ... and so on
    work/.tutorial.json     which step is current, which are done, how far each hint went
    work/.backup/           what `make start` and `make reset` set aside instead of overwriting

A step starts as a copy of the learner's own finished step before it (or ours, when they have
none), with the files the step does not ask them to write (tasks' `given`) taken from ours.
"""

import datetime
import difflib
import filecmp
import json
import os
import shutil
import time
from pathlib import Path

from ..core.steps import ROOT, STEPS, find
from ..core.tasks import load

# Never copied, compared or watched: made by Python and by `manage.py migrate`.
IGNORED = ("__pycache__", "*.pyc", "db.sqlite3", "db.sqlite3-journal", "db.sqlite3-wal", "db.sqlite3-shm")


def relative(path):
    try:
        return Path(path).resolve().relative_to(Path.cwd())
    except ValueError:
        return Path(path)


class Workspace:
    """The learner's folder (`root`) and the state kept in it. `Workspace()` is the learner's own:
    work/ beside the steps, or $TUTORIAL_WORK; the replay and the docs captures make scratch ones."""

    def __init__(self, root=None):
        self.root = Path(root or os.environ.get("TUTORIAL_WORK") or ROOT / "work").resolve()

    @property
    def state_path(self):
        return self.root / ".tutorial.json"

    def read_state(self):
        try:
            return json.loads(self.state_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"current": None, "done": {}, "tasks": {}, "hints": {}, "from": {}}

    def write_state(self, state):
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(state, indent=2) + "\n")

    def folder(self, step):
        return self.root / step.name

    def current(self):
        """The step the learner is on (the last one started), or None."""
        number = self.read_state().get("current")
        return find(number) if number and self.folder(find(number)).is_dir() else None

    def is_done(self, step, state=None):
        return step.number in (state or self.read_state())["done"]

    def source_for(self, step, state=None):
        """Where step N starts from: the learner's step N-1 when it is done, else ours; step 00 is ours."""
        index = STEPS.index(step)
        if index == 0:
            return step.folder, "ours"
        before = STEPS[index - 1]
        if self.is_done(before, state) and self.folder(before).is_dir():
            return self.folder(before), "yours"
        return before.folder, "ours"

    def apply(self, step):
        """Save our step's files over the learner's copy of it, removing files ours does not have."""
        target = self.folder(step)
        for name in files_of(target) - files_of(step.folder):
            (target / name).unlink()
        for name in files_of(step.folder):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(step.folder / name, target / name)

    def set_aside(self, path):
        """Move a folder into work/.backup/ with the time in its name; return where it went."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = self.root / ".backup" / f"{path.name}-{stamp}"
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(backup))
        return backup

    def first_not_done(self, state=None):
        return next((step for step in STEPS if not self.is_done(step, state)), None)

    def next_to_start(self, state=None, after=None):
        """What a plain `make start` begins: the first step not done after `after` (a step; by
        default the current one), so that a learner who began at step 02 goes on to 03; once
        every later step is done, the first step not done at all; None when all are."""
        state = state or self.read_state()
        if after is None and state.get("current"):
            after = find(state["current"])
        later = [step for step in STEPS if after is None or step.number > after.number]
        return next((step for step in later if not self.is_done(step, state)), None) or self.first_not_done(state)

    def start(self, number=None, say=print):
        """Begin a step (the first not done, by default) and make it current; never overwrite one.
        Returns the step, or None when every step is done."""
        state = self.read_state()
        if number:
            step = find(number)
        else:
            step = self.next_to_start(state)
            if step is None:
                say(f"Every step is done. `make progress` shows them; `make start STEP={STEPS[1].number}` "
                    "goes back to one.")
                return None
        target = self.folder(step)
        if target.is_dir():
            say(f"Step {step.name} is already in {relative(target)}: carrying on with it, nothing "
                f"was overwritten. (`make reset` starts it over, keeping a backup.)")
        else:
            source, whose = self.source_for(step, state)
            copy_project(source, target, step)
            state["from"][step.number] = str(source)
            before = STEPS[STEPS.index(step) - 1] if STEPS.index(step) else None
            if before is None:
                say(f"Started step {step.name} in {relative(target)}: a plain Django project, complete.")
            elif whose == "yours":
                say(f"Started step {step.name} in {relative(target)}, from your own step {before.number}.")
            else:
                why = "" if not self.folder(before).is_dir() else \
                    f" (yours, in {relative(self.folder(before))}, is not done yet)"
                say(f"Started step {step.name} in {relative(target)}, from our step {before.number}{why}.")
        state["current"] = step.number
        self.write_state(state)
        return step

    def reset(self, say=print):
        """Put the current step back as it started; the learner's version goes to work/.backup/."""
        step = self.current()
        if step is None:
            raise SystemExit("Nothing to reset: no step started yet. `make start` begins one.")
        state = self.read_state()
        source = Path(state["from"].get(step.number) or self.source_for(step, state)[0])
        if not source.is_dir():  # their own step before was moved away since
            source, _ = self.source_for(step, state)
        backup = self.set_aside(self.folder(step))
        copy_project(source, self.folder(step), step)
        state["done"].pop(step.number, None)
        state["tasks"].pop(step.number, None)
        state["hints"] = {k: v for k, v in state["hints"].items() if not k.startswith(step.number + ":")}
        self.write_state(state)
        say(f"Step {step.name} is back as it started, in {relative(self.folder(step))}. "
            f"Your version is kept in {relative(backup)}.")
        return step

    def owns(self, verdict):
        """Whether a verdict is about this workspace's copy of its step."""
        return verdict.folder.resolve() == self.folder(verdict.step).resolve()

    def record(self, verdict):
        """Note a check of a workspace step: which tasks pass, and whether the step is done."""
        if not self.owns(verdict) or not verdict.finished:
            return
        state = self.read_state()
        number = verdict.step.number
        state["tasks"][number] = [t.number for t in verdict.tasks if verdict.state(t) in ("done", "skipped")]
        if verdict.all_done and number not in state["done"]:
            state["done"][number] = datetime.datetime.now().isoformat(timespec="seconds")
        elif not verdict.all_done:
            state["done"].pop(number, None)
        # What failed, for `make hint`: it can answer at once while no file has changed since.
        started = time.time() - (time.monotonic() - verdict.started)
        failing = [{key: r[key] for key in ("check", "message", "hint")} for r in verdict.records
                   if r["step"] == number and r["outcome"] == "failed"]
        state.setdefault("last", {})[number] = {"started": started, "failing": failing,
                                                "could_not_run": verdict.could_not_run}
        self.write_state(state)

    def last_failures(self, step):
        """The step's failing checks at the last check of the workspace, or None when a file has
        changed since (or it was never checked, or its checks could not run)."""
        last = self.read_state().get("last", {}).get(step.number)
        if not last or last["could_not_run"]:
            return None
        newest = max(((self.folder(step) / name).stat().st_mtime for name in files_of(self.folder(step))),
                     default=0)
        return None if newest >= last["started"] else last["failing"]

    def progress_lines(self):
        state = self.read_state()
        lines = []
        for step in STEPS:
            total = len(load(step).tasks)
            if self.is_done(step, state):
                mark, words = "✓", f"done ({state['done'][step.number][:10]})"
            elif self.folder(step).is_dir():
                passed = len(state["tasks"].get(step.number, []))
                mark, words = "…", f"in progress: {passed} of {total} tasks done at the last check"
            else:
                mark, words = " ", "not started"
            here = "  <- current" if state.get("current") == step.number else ""
            lines.append(f"  {mark} {step.name:<18} {words}{here}")
        done = sum(self.is_done(step, state) for step in STEPS)
        lines.append(f"\n{done} of {len(STEPS)} steps done.")
        return lines


def copy_project(source, target, step):
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*IGNORED))
    # What the step gives rather than asks for arrives complete, from our copy of the step.
    for name in load(step).given:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(step.folder / name, target / name)


def files_of(tree):
    names = set()
    for path in tree.rglob("*"):
        if path.is_file() and not any(path.match(pattern) or pattern in path.parts for pattern in IGNORED):
            names.add(path.relative_to(tree).as_posix())
    return names


def changed_files(mine, ours):
    """The files that differ between two trees, or are in only one of them."""
    return sorted(name for name in files_of(mine) | files_of(ours)
                  if not ((mine / name).is_file() and (ours / name).is_file()
                          and filecmp.cmp(mine / name, ours / name, shallow=False)))


def diff(mine, ours, names=None, colour=False):
    """A unified diff from the learner's tree to ours (only `names`, when given)."""
    lines = []
    for name in sorted(names or (files_of(mine) | files_of(ours))):
        a, b = mine / name, ours / name
        if a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False):
            continue
        old = a.read_text().splitlines(keepends=True) if a.is_file() else []
        new = b.read_text().splitlines(keepends=True) if b.is_file() else []
        for line in difflib.unified_diff(old, new, f"yours/{name}", f"ours/{name}"):
            line = line if line.endswith("\n") else line + "\n"
            if colour and line.startswith("+") and not line.startswith("+++"):
                line = f"\x1b[32m{line[:-1]}\x1b[0m\n"
            elif colour and line.startswith("-") and not line.startswith("---"):
                line = f"\x1b[31m{line[:-1]}\x1b[0m\n"
            lines.append(line)
    return "".join(lines)


def same_as(tree, step):
    """True when a workspace folder holds exactly our step's files."""
    return not diff(tree, step.folder)

