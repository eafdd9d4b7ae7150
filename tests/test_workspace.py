"""The learner's workspace and tasks hold together: `make start`, `make reset`, `make progress`
and `make solution` on a scratch workspace, and each step's tasks against its checks.

Run by `make test` with the repository checks. That each step's task checks fail where a
learner starts it, with a hint, is the replay's job (tutorial/proof/replay.py, also in `make test`).
"""

import pytest

from tutorial.core.steps import STEPS
from tutorial.core.tasks import load, problems
from tutorial.learner.screen import briefing, what_next
from tutorial.learner.workspace import Workspace, changed_files, diff, same_as


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_every_task_has_checks_and_every_check_a_task(step):
    assert problems(step) == [], f"tutorial/tasks/{step.name}.toml and {step.test_file.name} disagree"


@pytest.fixture
def workspace(tmp_path):
    return Workspace(tmp_path / "work")


@pytest.fixture
def work(workspace):
    return workspace.root


def finish(workspace, step):
    """What a learner's finished step looks like here: our files, and the step marked done."""
    workspace.apply(step)
    state = workspace.read_state()
    state["done"][step.number] = "2026-11-25T12:00:00"
    workspace.write_state(state)


def test_start_begins_with_step_00_complete(workspace, work):
    step = workspace.start(say=lambda *_: None)
    assert step is STEPS[0]
    assert same_as(work / STEPS[0].name, STEPS[0]), "step 00 starts as our step 00, complete"
    assert workspace.current() is STEPS[0]
    assert any("make watch" in line for line in briefing(step, work / step.name)), "make start says what to run next"


def test_next_names_the_step_that_make_start_begins(workspace):
    """Begun at step 01 and done with it: a plain `make start` goes on to 02, not back to 00, and
    "Next:" says so; with every later step done, it goes back to the first not done."""
    workspace.start("01", say=lambda *_: None)
    finish(workspace, STEPS[1])
    assert what_next(workspace, STEPS[1]) == f"Next: `make start` begins step {STEPS[2].number}."
    assert workspace.start(say=lambda *_: None) is STEPS[2]
    for step in STEPS[2:]:
        finish(workspace, step)
    assert what_next(workspace, STEPS[-1]).startswith(f"Next: `make start` begins step {STEPS[0].number}")
    assert workspace.start(say=lambda *_: None) is STEPS[0]
    finish(workspace, STEPS[0])
    assert "are done" in what_next(workspace, STEPS[0])


def test_start_never_overwrites_a_started_step(workspace, work):
    workspace.start("02", say=lambda *_: None)
    mine = work / "02-routing" / "chat" / "routing.py"
    mine.write_text("# my own start\n")
    said = []
    workspace.start("02", say=said.append)
    assert mine.read_text() == "# my own start\n"
    assert "nothing was overwritten" in said[0]


def test_a_step_starts_from_the_learners_finished_step_with_the_given_files_ours(workspace, work):
    workspace.start("00", say=lambda *_: None)
    finish(workspace, STEPS[0])
    urls = work / "00-django" / "mysite" / "urls.py"
    urls.write_text(urls.read_text() + "# a line of my own\n")
    workspace.start(say=lambda *_: None)
    assert workspace.current() is STEPS[1]
    assert "# a line of my own" in (work / "01-consumer" / "mysite" / "urls.py").read_text()
    for name in load(STEPS[1]).given:
        assert (work / "01-consumer" / name).read_bytes() == (STEPS[1].folder / name).read_bytes()


def test_a_step_starts_from_ours_when_the_learners_step_before_is_not_done(workspace, work):
    workspace.start("01", say=lambda *_: None)
    said = []
    workspace.start("02", say=said.append)
    assert "from our step 01" in said[0] and "not done yet" in said[0]
    changed = changed_files(work / "02-routing", STEPS[1].folder)
    given = set(load(STEPS[2]).given)
    assert set(changed) <= given, "apart from the given files, step 02 starts as our step 01"


def test_reset_keeps_the_learners_version_and_starts_over(workspace, work):
    workspace.start("02", say=lambda *_: None)
    routing = work / "02-routing" / "chat" / "routing.py"
    routing.write_text("# half done\n")
    workspace.reset(say=lambda *_: None)
    assert not routing.exists(), "after reset, step 02 is as it started, from our step 01"
    backups = list((work / ".backup").iterdir())
    assert [(b / "chat" / "routing.py").read_text() for b in backups] == ["# half done\n"]


def test_solution_shows_what_is_left_and_nothing_once_done(workspace, work):
    workspace.start("02", say=lambda *_: None)
    left = diff(work / "02-routing", STEPS[2].folder)
    assert "+++ ours/chat/routing.py" in left and "websocket_urlpatterns" in left
    finish(workspace, STEPS[2])
    assert diff(work / "02-routing", STEPS[2].folder) == ""


def test_a_learner_goes_from_an_empty_workspace_to_the_last_step(workspace, work):
    """The whole path through `make start`, one step after another: each step starts from the
    learner's own finished one, which a line of theirs in urls.py marks. (That our files pass
    each step's checks is what `make test` proves of our steps.)"""
    for index, step in enumerate(STEPS):
        assert workspace.start(say=lambda *_: None) is step
        urls = workspace.folder(step) / "mysite" / "urls.py"
        if index:
            assert f"# finished step {STEPS[index - 1].number}" in urls.read_text(), (
                f"step {step.number} should start from the learner's own step {STEPS[index - 1].number}"
            )
        finish(workspace, step)
        urls.write_text(urls.read_text() + f"# finished step {step.number}\n")
    said = []
    assert workspace.start(say=said.append) is None
    assert "Every step is done" in said[0]
    assert all(line.strip().startswith("✓") for line in workspace.progress_lines()[:len(STEPS)])
