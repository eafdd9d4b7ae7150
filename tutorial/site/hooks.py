"""A mkdocs hook: writes the parts of the pages that come from the steps themselves.

A step page (docs/steps/NN-name.md) holds markers, each alone on a line:

    <!-- generated: tree -->          the step's files, marked new (+) or changed (~)
    <!-- generated: what-changed -->  for each added or changed file, a heading and two
                                      tabs: the whole new file with its new lines
                                      highlighted, and the diff
    <!-- generated: your-turn -->     the step's tasks, their checks and folded hints,
                                      from tutorial/tasks/NN-name.toml
    <!-- generated: whats-next -->    the next step's number and title, linked, and its
                                      concept; on the last step, that it is the last

Any page may name the steps as a whole, between double braces, from tutorial/core/steps.py:

    {{ steps count }}   how many steps there are, in words up to twenty: "ten"
    {{ steps first }}   the first step's number: "00"
    {{ steps last }}    the last step's number: "09"

so that no page types a count or a last step that the next step added would make wrong
(tests/test_docs.py fails on "seven steps" and its like).

The hook replaces them while the site builds, so they always match steps/.
The code itself is never copied here: each file comes in through a snippet
line (--8<--) that pymdownx.snippets resolves, with check_paths on.
"""

import difflib
import os
import re

from tutorial.core.steps import STEPS
from tutorial.core.tasks import load
from tutorial.site import figures

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
STEPS_MARKER = re.compile(r"\{\{\s*steps\s+(.*?)\s*\}\}")
SKIP = {"__pycache__", "db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"}
LEXERS = {".py": "python", ".html": "django", ".txt": "text"}


def step_files(folder):
    """The step's files, as paths relative to its folder, in a stable order."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not SKIP.intersection(path.relative_to(folder).parts)
    )


def read_lines(path):
    return path.read_text().splitlines(keepends=True) if path.is_file() else []


def changes(step, before):
    """(file, status) for every file the step adds ("new") or changes ("changed")."""
    found = []
    for name in step_files(step.folder):
        old = before.folder / name if before else None
        if old is None or not old.is_file():
            found.append((name, "new"))
        elif old.read_text() != (step.folder / name).read_text():
            found.append((name, "changed"))
    return found


def removed(step, before):
    if before is None:
        return []
    return [name for name in step_files(before.folder) if not (step.folder / name).is_file()]


def added_lines(old_lines, new_lines):
    """1-based numbers of the lines of the new file that the diff adds or changes."""
    numbers = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, _, _, start, end in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            numbers.extend(range(start + 1, end + 1))
    return numbers


def line_ranges(numbers):
    """[3, 4, 5, 9] -> "3-5 9", the form pymdownx.highlight's hl_lines takes."""
    ranges, start, previous = [], None, None
    for number in numbers:
        if start is None:
            start = previous = number
        elif number == previous + 1:
            previous = number
        else:
            ranges.append(f"{start}-{previous}" if previous > start else str(start))
            start = previous = number
    if start is not None:
        ranges.append(f"{start}-{previous}" if previous > start else str(start))
    return " ".join(ranges)


def unified_diff(step, before, name):
    old_lines = read_lines(before.folder / name) if before else []
    old_label = f"steps/{before.name}/{name}" if before and old_lines else "/dev/null"
    return "".join(difflib.unified_diff(
        old_lines, read_lines(step.folder / name), old_label, f"steps/{step.name}/{name}", n=3,
    ))


def indent(text, prefix="    "):
    return "".join(prefix + line if line.strip() else line for line in text.splitlines(keepends=True))


def what_changed(step, before):
    if before is None:
        return "This is the first step: every file is new. Its files are listed above.\n"
    blocks = []
    for name, status in changes(step, before):
        path = step.folder / name
        lexer = LEXERS.get(path.suffix, "text")
        lines = read_lines(path)
        old_lines = read_lines(before.folder / name)
        # A new file is all new: highlighting every line would hide nothing and help nobody.
        highlighted = "" if status == "new" else line_ranges(added_lines(old_lines, lines))
        title = f"steps/{step.name}/{name}"
        options = f'title="{title}" linenums="1"' + (f' hl_lines="{highlighted}"' if highlighted else "")
        full = (
            f'```{lexer} {options}\n'
            f'--8<-- "{title}"\n'
            "```\n"
        )
        diff = "```diff\n" + unified_diff(step, before, name) + "```\n"
        # Tabs with the same label are linked: choosing "Diff" once shows every file's diff.
        blocks.append(
            f"### `{name}` ({status})\n\n"
            f'=== "Whole file"\n\n{indent(full)}\n=== "Diff"\n\n{indent(diff)}\n'
        )
    for name in removed(step, before):
        blocks.append(f"### `{name}` (removed)\n")
    if not blocks:
        return "Nothing changed in the files since the step before.\n"
    return "\n".join(blocks)


def tree(step, before):
    status = dict(changes(step, before)) if before else {}
    lines = [f"steps/{step.name}/"]
    names = step_files(step.folder)
    shown_dirs = set()
    for name in names:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in shown_dirs:
                shown_dirs.add(folder)
                lines.append("    " * depth + parts[depth - 1] + "/")
        mark = {"new": "   + new", "changed": "   ~ changed"}.get(status.get(name), "")
        lines.append("    " * len(parts) + parts[-1] + mark)
    block = "```text\n" + "\n".join(lines) + "\n```\n"
    if before is None:  # the first step: the whole project is the news, so it stays open
        return block
    # Later steps: the title says what the tree would show, so the tree can stay folded.
    touched = [f"`{name}` ({state})" for name, state in status.items()]
    title = f"The files of steps/{step.name}/: " + (", ".join(touched) or "none changed")
    return f'??? abstract "{title}"\n\n' + indent(block) + "\n"


def your_turn(step, before):
    from tutorial.core.tasks import problems

    found = problems(step)
    if found:  # the strict build fails: a task with no check, or a check that is no task's
        raise ValueError(f"tutorial/tasks/{step.name}.toml: " + "; ".join(found))
    tasks = load(step)
    if before is None:
        start = ("`make start` puts this step, complete, in `work/00-django/`; `make watch` checks it "
                 "on every save and serves it on http://127.0.0.1:8000/chat/.")
    else:
        start = (f"`make start` copies your finished step {before.number} (or ours) to "
                 f"`work/{step.name}/`, and `make watch` checks it on every save. Stuck? `make hint`, "
                 "a bit more each time.")
    lines = [" ".join(tasks.intro.split()), "", start, ""]
    if tasks.given:
        given = ", ".join(f"`{name}`" for name in tasks.given)
        lines += [f"Given, complete: {given}. Read it; there is nothing to write in it.", ""]
    for task in tasks.tasks:
        checks = ", ".join(f"`{check}`" for check in task.checks)
        lines.append(f"{task.number}. {' '.join(task.do.split())}")
        lines.append("")
        # The checks' names are long and matter only once a task fails: they go in the fold,
        # so that the tasks read as a short list.
        lines.append('    ??? tip "Hints, and the checks that judge it"')
        lines.append("")
        lines.append(f"        1. {' '.join(task.nudge.split())}")
        lines.append(f"        2. {' '.join(task.concept.split())}")
        lines.append("        3. `make hint`, asked a third time, shows the lines to write: the diff "
                     "from your files to ours.")
        lines.append("")
        lines.append(f"        <small>Checked by {checks}.</small>")
        lines.append("")
    return "\n".join(lines) + "\n"


def what_changed_folded(step, before):
    """Our files are the solution to the tasks above them: folded, so that a learner who builds
    the step opens them when done or stuck, not by scrolling past."""
    if before is None:
        return what_changed(step, before)
    title = "Our version, file by file: the whole file and the diff (open it when your tasks pass, or when stuck)"
    return f'??? example "{title}"\n\n' + indent(what_changed(step, before)) + "\n"


def whats_next(step, before):
    """The step after `step`, as the manifest has it: its number, title and page, and its concept."""
    index = STEPS.index(step)
    if index == len(STEPS) - 1:
        return "**This is the last step.**\n"
    after = STEPS[index + 1]
    page = after.docs_page.removeprefix("steps/")  # this page is in steps/ too
    return f"**Next: [step {after.number}, {after.title}]({page}).** {after.concept}\n"


GENERATORS = {"tree": tree, "what-changed": what_changed_folded, "your-turn": your_turn, "whats-next": whats_next}

NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                "fifteen sixteen seventeen eighteen nineteen twenty").split()


def about_the_steps(what, where):
    """What {{ steps WHAT }} stands for (see the docstring at the top)."""
    if what == "count":
        return NUMBER_WORDS[len(STEPS)] if len(STEPS) < len(NUMBER_WORDS) else str(len(STEPS))
    if what == "first":
        return STEPS[0].number
    if what == "last":
        return STEPS[-1].number
    raise ValueError(f"{where}: {{{{ steps {what} }}}} names nothing; write count, first or last")


def page_step(page):
    """The step a docs page is about (docs/steps/NN-name.md), and the one before it."""
    match = re.fullmatch(r"steps/(\d\d)-[a-z-]+\.md", page.file.src_uri)
    if not match:
        return None, None
    for index, step in enumerate(STEPS):
        if step.number == match[1]:
            return step, STEPS[index - 1] if index else None
    raise ValueError(f"{page.file.src_uri} names no step in tutorial/core/steps.py")


def on_page_markdown(markdown, page, config, files):
    step, before = page_step(page)

    def replace(match):
        kind = match[1]
        if kind not in GENERATORS:
            raise ValueError(f"{page.file.src_uri}: unknown marker <!-- generated: {kind} -->")
        if step is None:
            raise ValueError(f"{page.file.src_uri}: <!-- generated: {kind} --> only works on step pages")
        return GENERATORS[kind](step, before)

    # Figures from `make bench` ({{ bench ... }}) come from its results.json, on any page.
    # A false claim stops the build (`make test`, `mkdocs build`). `make docs` serves the learner's
    # own `make bench` figures, which may differ: it sets TUTORIAL_OWN_BENCH, and the page is
    # served with a warning at its top instead.
    strict = not os.environ.get("TUTORIAL_OWN_BENCH")
    markdown = MARKER.sub(replace, markdown)
    # {{ steps ... }} works on any page too: the home page counts the steps.
    markdown = STEPS_MARKER.sub(lambda match: about_the_steps(match[1], page.file.src_uri), markdown)
    return figures.render(markdown, f"docs/{page.file.src_uri}", strict=strict)

