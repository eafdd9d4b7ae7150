"""The learner's screen: the checklist as lines of text, the briefing of `make start`, and the
Screen that `make check` and `make watch` draw them on."""

import os
import shutil
import sys
import textwrap

from ..core.steps import STEPS
from ..core.tasks import load
from .workspace import relative

TTY = sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
MARKS = {"done": "✓", "failed": "✗", "pending": "·", "skipped": "–"}


def colour(text, code):
    return f"\x1b[{code}m{text}\x1b[0m" if TTY else text


# Lines fit an 80-column terminal, and wrap no wider than 92 on a wider one.
WIDTH = max(60, min(92, shutil.get_terminal_size((92, 24)).columns - 2))


def wrap(text, indent, width=None):
    return "\n".join(textwrap.fill(paragraph, width=width or WIDTH, initial_indent=indent, subsequent_indent=indent,
                                   break_on_hyphens=False, break_long_words=False)
                     for paragraph in text.split("\n\n"))


def render(verdict, where=None, workspace=None):
    """The checklist, as lines of text; `workspace`: the learner's, when the verdict is about their copy."""
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
            lines.append("  (Earlier steps' in-process checks run once every task passes.)")
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
        skipped = [t for t in tasks.tasks if verdict.state(t) == "skipped"]
        lines.append(colour(f"{count}: step {step.number} done!", "32;1"))
        if STEPS.index(step) > 0:
            before = STEPS[STEPS.index(step) - 1].number
            steps = f"steps {STEPS[0].number}-{before}" if before != STEPS[0].number else f"step {before}"
            lines.append(f"  The in-process checks of {steps} pass on it too.")
        if workspace is not None and workspace.owns(verdict):
            lines.extend(wrap(what_next(workspace, step), "").splitlines())
        if skipped:
            reasons = {r["message"] for t in skipped for c in t.checks for r in verdict.results(c)}
            lines.append(f"  ({len(skipped)} task(s) could not be checked here: {'; '.join(sorted(reasons))})")
    elif not task and not verdict.broken_guards:
        lines.append(f"{count}.")
    return lines


def what_next(workspace, step):
    """The "Next:" line once `step` is done: the step that a plain `make start` will begin."""
    state = workspace.read_state()
    state = {**state, "done": {**state["done"], step.number: "now"}}  # the verdict is recorded after
    following = workspace.next_to_start(state, after=step)
    if following is None:
        return f"That was the last step to do: all {len(STEPS)} steps, {STEPS[0].number} to " \
               f"{STEPS[-1].number}, are done. Well done."
    if following.number < step.number:
        return f"Next: `make start` begins step {following.number}, the first you have not done yet."
    return f"Next: `make start` begins step {following.number}."


def briefing(step, folder):
    """What `make start` prints: the step, its page, its files and its tasks."""
    tasks = load(step)
    lines = [f"Step {step.name}: {step.title}.", *wrap(" ".join(tasks.intro.split()), "").splitlines(), ""]
    lines.append(f"Read: docs/{step.docs_page} (`make docs` serves it on "
                 f"http://127.0.0.1:8001/{step.docs_page.removesuffix('.md')}/)")
    files = sorted({name for task in tasks.tasks for name in task.files})
    verb = "Read" if STEPS.index(step) == 0 else "Change"  # step 00 arrives complete
    lines.append(f"{verb}: {', '.join(files)} in {relative(folder)}/")
    if tasks.given:
        lines.append(f"Given, complete: {', '.join(tasks.given)} (read them; nothing to write there)")
    lines.append("")
    for task in tasks.tasks:
        first, *rest = wrap(" ".join(task.do.split()), "").splitlines()
        lines += [f"  {task.number}. {first}", *(f"     {line}" for line in rest)]
    lines += ["", "Then: `make watch` checks your work each time you save, and serves it on "
                  "http://127.0.0.1:8000/chat/."]
    return lines


class Screen:
    """Shows the checklist as it fills in.

    `make watch` owns its terminal: each update redraws the screen from the top. `make check`
    on a terminal keeps one status line up to date, then prints the checklist once; anywhere
    else (a pipe, a file, CI) only the final checklist is printed.
    """

    def __init__(self, where, header=(), redraw=False, workspace=None):
        self.where = where
        self.workspace = workspace
        self.header = list(header)
        self.redraw = redraw and TTY

    def __call__(self, verdict):
        if self.redraw:
            lines = self.header + render(verdict, self.where, self.workspace)
            sys.stdout.write("\x1b[H\x1b[J" + "\n".join(lines) + "\n")
            sys.stdout.flush()
            return
        if not verdict.finished:
            if TTY:
                done = verdict.done_count
                sys.stdout.write(f"\rchecking {self.where}: {done} of {len(verdict.tasks)} tasks done so far...")
                sys.stdout.flush()
            return
        if TTY:
            sys.stdout.write("\r\x1b[K")
        print("\n".join(self.header + render(verdict, self.where, self.workspace)), flush=True)
