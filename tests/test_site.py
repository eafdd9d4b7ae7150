"""The docs site is legible at 1280 px: measured on every page in headless Chromium.

A learner reads the site on a laptop. Every line of code must fit its column (no sideways
scrolling), and every diagram must draw its text as large as the prose, inside its boxes, and
fit on the screen. The measurements are in tutorial/site/browser.py; `make generate` takes its
screenshots of the step pages with the same browser (tutorial/site/pictures.py).

Run by `make test` with the docs checks (tutorial/proof/everything.py's docs_job).
"""

import os
import time

import pytest

from tutorial.site import browser
from tutorial.site.browser import HEIGHT, WIDTH


# Building the site and measuring every page in Chromium takes about a minute alone, and several
# on a busy machine. So it is done once, for every check here, under a bound of its own; the
# per-check bound of pyproject.toml applies to each check's own body only (func_only). A failure
# is kept, so that each check fails at once with that one cause instead of building it again.
MEASURE_SECONDS = 600
pytestmark = pytest.mark.timeout(60, func_only=True)
_failure = []


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """{page: what a reader at 1280 x 800 sees on it}, for every page of the freshly built site."""
    if _failure:
        pytest.fail(_failure[0])
    missing = browser.browser_missing()
    if missing:
        if os.environ.get("TUTORIAL_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)
    try:
        return measure_site(tmp_path_factory, time.monotonic() + MEASURE_SECONDS)
    except BaseException as error:  # a timeout, a crash, or a failed check of the site itself
        _failure.append(f"building and measuring the site failed once, for every check here: "
                        f"{type(error).__name__}: {str(error)[:3000]}")
        raise


def measure_site(tmp_path_factory, deadline):
    site = tmp_path_factory.mktemp("site")
    failed = browser.build(site, timeout=max(1.0, deadline - time.monotonic()))
    assert failed is None, "mkdocs build --strict failed:\n" + failed
    found = {}
    with browser.serve(site) as url, browser.chromium(tmp_path_factory.mktemp("chromium")) as driver:
        for page in browser.pages(site):
            if time.monotonic() > deadline:
                pytest.fail(f"measuring the site's pages took over {MEASURE_SECONDS} s ({browser.load()}), "
                            f"{len(found)} pages done: the machine, not the site, is the limit here")
            drawn = browser.open_page(driver, f"{url}/{page}")
            found["/" + page] = {**browser.measure(driver), "drawn": drawn,
                                 "errors": [entry["message"] for entry in driver.get_log("browser")
                                            if entry["level"] == "SEVERE"]}
    assert "/steps/04-groups/" in found, f"the site should have a page per step; it has {sorted(found)}"
    return found


def diagrams(measured):
    for page, seen in measured.items():
        for diagram in seen["diagrams"]:
            if diagram["drawn"]:
                yield page, seen, diagram, f"{page} diagram {diagram['index'] + 1}, under {diagram['under']!r}"


def report(problems, why, fix):
    assert not problems, f"{why}:\n  " + "\n  ".join(problems) + f"\n{fix}"


def test_every_page_loads_without_errors_and_draws_its_diagrams(measured):
    problems = [f"{page}: the diagrams were not drawn within {browser.TIMEOUT} s"
                for page, seen in measured.items() if not seen["drawn"]]
    problems += [f"{page}: {error}" for page, seen in measured.items() for error in seen["errors"]]
    report(problems, "pages that fail in the browser (console errors, or diagrams never drawn)",
           "A diagram with a syntax error is left undrawn; mermaid's error is in the browser's console.")


def test_no_code_block_scrolls_sideways(measured):
    """Every block counts: the ones folded in <details> and in every tab of a tab set."""
    problems = [
        f"{page}: {block['lang'] or 'code'} block {block['first'].strip()[:60]!r}"
        + (f" (tab {block['tab']!r})" if block["tab"] else "")
        + f" needs {block['scroll']} px and has {block['client']} px (longest line: {block['longest']} characters)"
        for page, seen in measured.items() for block in seen["code"] if block["scroll"] > block["client"]
    ]
    report(problems, f"code that runs off the right edge at {WIDTH} px, so a reader scrolls sideways to read it",
           "Shorten the line where it lives (steps/ for the project's files, docs/ for the rest), or, for "
           "program output, let its kind of block wrap (docs/assets/stylesheets/extra.css).")


def test_diagram_text_is_as_large_as_the_prose(measured):
    problems = [
        f"{name}: {diagram['smallest']['text']!r} is drawn at {diagram['smallest']['size']} px, the prose at "
        f"{seen['body']} px; the diagram is {diagram['width']} px wide in a {seen['content']:.0f} px column"
        for page, seen, diagram, name in diagrams(measured) if diagram["smallest"]["size"] < seen["body"] - 0.05
    ]
    report(problems, f"diagrams drawn smaller than the prose at {WIDTH} px: a diagram wider than its column is "
           "scaled down to fit, and its text with it",
           "Split the diagram into smaller ones (fewer participants, fewer steps), or shorten its labels. "
           "Mermaid's settings for every diagram are in docs/assets/javascripts/mermaid-config.js.")


def test_diagram_text_stays_inside_its_box(measured):
    problems = [
        f"{name}: {spill['text']!r} at {spill['box']} runs out of {spill['outside']} at {spill['of']}"
        for page, seen, diagram, name in diagrams(measured) for spill in diagram["spills"]
    ]
    report(problems, "diagram text that spills out of its box (a note, an actor, a node) or off the diagram",
           "Shorten the text, or put a note over one participant, whose note grows to fit its text "
           "(a note over two is only as wide as the space between them).")


def test_every_diagram_fits_on_the_screen(measured):
    problems = [
        f"{name}: {diagram['height']} px tall, where {HEIGHT - seen['header']:.0f} px show below the header"
        for page, seen, diagram, name in diagrams(measured) if not diagram["fits"]
    ]
    report(problems, f"diagrams taller than a {WIDTH} x {HEIGHT} screen, so a reader never sees one whole",
           "Split the diagram where the story has a pause (joining, a message, leaving), "
           "with a sentence between the parts.")
