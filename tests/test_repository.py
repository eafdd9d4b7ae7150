"""The repository holds together: the steps share their names, the manifest, README and site list them all.

Run by `make test` with the docs checks, once for the whole repository (not per step).
"""

import pytest

from tutorial.core.steps import ROOT, STEPS, STEPS_DIR

SAME_IN_EVERY_STEP = [
    "manage.py", "mysite/settings.py", "mysite/urls.py", "mysite/asgi.py", "mysite/wsgi.py",
    "chat/apps.py", "chat/urls.py", "chat/views.py",
    "chat/templates/chat/index.html", "chat/templates/chat/room.html",
]


def test_manifest_lists_every_step_folder_in_order():
    folders = sorted(path.name for path in STEPS_DIR.iterdir() if path.is_dir())
    assert folders == [step.name for step in STEPS], "tutorial/core/steps.py and steps/ should list the same steps"


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_every_step_keeps_the_same_names(step):
    for name in SAME_IN_EVERY_STEP:
        assert (step.folder / name).is_file(), f"steps/{step.name} should have {name}, like every step"


# Written once, where first needed, and the same in every step after: the room-name rule, the
# pages and views that serve the chat's index, and the chat pages' look (base.html). (chat/protocol.py
# grows instead: each step's copy holds the answers its own ideas need; tests/test_shape.py.)
WRITTEN_ONCE = [
    "chat/rooms.py", "chat/views.py", "chat/templates/chat/index.html",
    "chat/templates/chat/base.html",
]


@pytest.mark.parametrize("name", WRITTEN_ONCE)
def test_shared_files_are_written_once_and_never_change(name):
    first, *later = [step for step in STEPS if (step.folder / name).is_file()]
    text = (first.folder / name).read_text()
    for step in later:
        assert (step.folder / name).read_text() == text, (
            f"steps/{step.name}/{name} differs from steps/{first.name}'s: it is written once, so that "
            "later diffs show only their own concept"
        )


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_readme_and_site_list_every_step(step):
    assert f"steps/{step.name}" in (ROOT / "README.md").read_text(), f"README.md should list {step.name}"
    assert step.docs_page in (ROOT / "mkdocs.yml").read_text(), f"mkdocs.yml's nav should list {step.docs_page}"
