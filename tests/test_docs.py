"""The docs site: it builds strictly, agrees with the steps, works offline, and shows what it should.

Run by `make test` in a process of its own, next to the steps' suites.
"""

import json
import re

import pytest

from tutorial.site import browser, figures, generate, sessions
from tutorial.core.steps import ROOT, STEPS

DOCS = ROOT / "docs"
SNIPPET = re.compile(r'^\s*--8<-- "([^"]+)"', re.MULTILINE)


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The site, built with --strict: any warning (a broken link, a missing include) fails."""
    out = tmp_path_factory.mktemp("site")
    failed = browser.build(out)
    assert failed is None, "mkdocs build --strict failed:\n" + failed
    return out


def test_site_builds_strictly(site):
    assert (site / "index.html").is_file()


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_every_step_has_a_page_with_its_generated_parts(step):
    page = DOCS / step.docs_page
    assert page.is_file(), f"step {step.name} needs a page at docs/{step.docs_page}"
    text = page.read_text()
    for marker in ["<!-- generated: your-turn -->", "<!-- generated: tree -->", "<!-- generated: what-changed -->",
                   "<!-- generated: whats-next -->"]:
        assert marker in text, f"docs/{step.docs_page} should hold {marker}"
    assert "```mermaid" in text and "sequenceDiagram" in text, "each step page has a sequence diagram"
    assert f'--8<-- "docs/generated/check-{step.number}.txt"' in text, "each step page shows its check run"


def test_every_snippet_names_a_file_that_exists():
    for page in DOCS.rglob("*.md"):
        for path in SNIPPET.findall(page.read_text()):
            path = path.split(":", 1)[0]  # "file.py:section" includes a part of the file
            assert (ROOT / path).is_file(), f"{page.relative_to(ROOT)} includes {path}, which does not exist"


def test_no_project_code_is_typed_into_the_docs():
    """Python and HTML blocks on the site come from steps/ through snippets, never typed by hand."""
    fence = re.compile(r"^```(python|django|html)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
    for page in DOCS.rglob("*.md"):
        for _, body in fence.findall(page.read_text()):
            lines = [line for line in body.splitlines() if line.strip()]
            assert all(SNIPPET.match(line) for line in lines), (
                f"{page.relative_to(ROOT)} has code typed by hand; include it from steps/ instead:\n{body}"
            )


def test_captured_handshake_is_up_to_date():
    committed = (DOCS / "generated" / "handshake.txt").read_text()
    assert committed == generate.capture_handshake(), "docs/generated is stale: run `make generate`"


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_captured_check_run_lists_the_current_tasks(step):
    from tutorial.core.tasks import load

    committed = (DOCS / "generated" / f"check-{step.number}.txt").read_text()
    captured = generate.task_lines(committed)
    tasks = [" ".join(task.do.split()) for task in load(step).tasks]
    # Each task's first line in the capture begins its text (the rest wraps onto further lines).
    assert [number for number, _ in captured] == list(range(1, len(tasks) + 1)) and all(
        text.startswith(line) for (_, line), text in zip(captured, tasks)
    ), f"docs/generated/check-{step.number}.txt no longer lists step {step.name}'s tasks: run `make generate`"
    assert f"step {step.number} done!" in committed, f"the capture of step {step.number} should pass every task"


def test_captured_watch_shows_a_failing_then_a_passing_run():
    committed = (DOCS / "generated" / "watch-02.txt").read_text()
    from tutorial.core.tasks import load

    total = len(load(STEPS[2]).tasks)
    assert f"0 of {total} tasks done" in committed.split("step 02 done!")[0] and "step 02 done!" in committed, (
        "docs/generated/watch-02.txt should show step 02 failing, then done: run `make generate`"
    )


@pytest.mark.parametrize("session", sessions.SESSIONS, ids=lambda session: session.slug)
def test_captured_session_still_matches_its_step(session):
    assert (DOCS / "generated" / "sessions" / f"{session.slug}.txt").is_file(), "run `make generate`"
    if session.mistake:
        step = next(step for step in STEPS if step.number == session.step)
        assert session.mistake.fits(step.folder), (
            f"the mistake {session.slug} no longer applies to steps/{step.name}/{session.mistake.file}: "
            "update it in tutorial/site/sessions.py, then run `make generate`"
        )


# A count of the steps, or the whole range of their numbers, typed into a page: the next step
# added makes it wrong ("seven small steps, 00 to 06" stood on the home page at step 09).
# tutorial/site/hooks.py writes them from the manifest instead.
NUMBER = (r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
          r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty)")
TYPED_COUNT = re.compile(
    rf"\b{NUMBER}(?:\s+(?:small|short|more|further|other|whole))?\s+steps\b"  # "seven small steps", "the last two steps"
    rf"|\b{NUMBER}-step\b"  # "a ten-step tutorial"
    r"|(?<![\w.])00\s*(?:to|-|–)\s*\d\d\b",  # "00 to 06": from the first step to a last one typed by hand
    re.IGNORECASE,
)


def typed_step_counts(markdown):
    return [" ".join(match[0].split()) for match in TYPED_COUNT.finditer(prose(markdown))]


def test_no_page_types_a_count_of_steps():
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        typed = typed_step_counts(page.read_text())
        assert not typed, (
            f"{page.relative_to(ROOT)} types {typed} by hand, which the next step added would make wrong. "
            "In README.md, say it without the count (\"every later step\"); on the site, write {{ steps count }} (\"ten\"), {{ steps first }} or {{ steps last }} instead, or name the "
            "steps (\"steps 05 and 06\"); a step page's next step comes from <!-- generated: whats-next --> "
            "(both in tutorial/site/hooks.py)"
        )


def test_the_step_count_check_catches_what_it_is_for():
    """Proof that the check above can fail, on sentences the docs once held, and lets others be."""
    assert typed_step_counts("You will build a chat room in seven small steps, 00 to 06.") == [
        "seven small steps", "00 to 06"]
    assert typed_step_counts("Two questions remain, and the last two steps answer them.") == ["two steps"]
    assert typed_step_counts("All 10 steps, a ten-step course.") == ["10 steps", "ten-step"]
    assert typed_step_counts("In {{ steps count }} small steps, {{ steps first }} to {{ steps last }}; "
                             "steps 05 and 06; steps 03 to 05; one step at a time; 20.00-20.36 µs.") == []


def test_built_pages_fetch_nothing_from_elsewhere(site):
    external = re.compile(r'<(?:script|link|img)[^>]+(?:src|href)="(https?:)?//', re.IGNORECASE)
    for page in site.rglob("*.html"):
        found = external.search(page.read_text())
        assert not found, f"{page.relative_to(site)} loads {found[0]}...: the site must work offline"


@pytest.fixture(scope="session")
def site_url(site):
    with browser.serve(site) as url:
        yield url


def wait(page, condition, hint, timeout=10):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(page, timeout).until(lambda driver: condition())
    except Exception:
        pytest.fail(hint)


@pytest.mark.browser
def test_step_page_shows_its_diff_and_its_diagram(browser, site_url):
    browser.get(f"{site_url}/steps/04-groups/")
    # The theme swaps each <pre class="mermaid"> for a <div class="mermaid"> holding the drawn
    # SVG in a closed shadow root: a drawn diagram is a div with height and no source text.
    wait(browser, lambda: browser.execute_script(
        "const drawn = [...document.querySelectorAll('div.mermaid')];"
        "return drawn.length > 0 && drawn.every(d => d.offsetHeight > 100 && !d.textContent.trim())"
        " && !document.querySelector('pre.mermaid')"),
        "the sequence diagram should be drawn (mermaid.min.js loaded from the site itself)")
    diff_text = browser.execute_script(
        "return [...document.querySelectorAll('.language-diff')].map(e => e.textContent).join('')")
    assert "+        async_to_sync(self.channel_layer.group_add)" in diff_text, (
        "step 04's page should show the generated diff that adds group_add"
    )


@pytest.mark.browser
def test_search_finds_group_send(browser, site_url):
    from selenium.webdriver.common.by import By

    browser.get(f"{site_url}/")
    # Pressing "/" opens the search box at any window width, as the theme's keyboard shortcut.
    wait(browser, lambda: browser.execute_script("return document.readyState") == "complete", "page loads")
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    box = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")
    wait(browser, lambda: box.is_displayed(), "pressing / should open the search box")
    box.send_keys("group_send")
    wait(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item")) > 0,
         "the search box should find pages that mention group_send")


@pytest.mark.browser
def test_every_resource_comes_from_the_site_itself(browser, site_url):
    browser.get(f"{site_url}/steps/01-consumer/")
    wait(browser, lambda: browser.execute_script("return document.readyState") == "complete", "page loads")
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    foreign = [url for url in urls if not url.startswith(site_url)]
    assert not foreign, f"the page fetched from elsewhere, so it would break offline: {foreign}"



def test_cheat_sheet_lists_exactly_the_codes_of_protocol_py():
    """The cheat sheet's table of error codes is a summary of protocol.py's docstring: same codes."""
    docstring = (STEPS[-1].folder / "chat" / "protocol.py").read_text().split('"""')[1]
    table = docstring.split("with these codes:")[1].split("A mistake in the connection")[0]
    in_protocol = set(re.findall(r"^    ([a-z_]+)\s", table, re.MULTILINE))
    sheet = (DOCS / "reference" / "cheatsheet.md").read_text().split("## The chat's own answers")[1]
    in_sheet = set(re.findall(r"^\| `([a-z_]+)` \|", sheet.split("\n## ")[0], re.MULTILINE))
    assert in_protocol and in_sheet == in_protocol, (
        f"docs/reference/cheatsheet.md lists {sorted(in_sheet ^ in_protocol)} differently from "
        "chat/protocol.py's table of codes"
    )


# The performance page's figures come from docs/assets/bench/results.json, through the
# {{ bench ... }} syntax of tutorial/site/figures.py; none is typed, so `make bench` cannot leave
# the prose contradicting its table.

PERFORMANCE = DOCS / "performance.md"
# A measured figure typed by hand: digits with a unit, a ratio, or a multiple in words.
TYPED_FIGURE = re.compile(
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:×|x\b|ms\b|µs\b|us\b|s\b|seconds?\b|%|percent\b|times\b|"
    r"deliveries\b|messages\b|msg/s|/s\b|cores?\b|CPUs?\b|clients\b|members\b|people\b)"
    r"|\b(?:twice|thrice|double|triple|half as)\b",
    re.IGNORECASE,
)
# The figures the prose may type, and why: none of them is a measurement of the run.
TYPED_ON_PURPOSE = {
    "100 ms": "the rule of thumb for a delay that people notice; claims beside it compare the data with it",
}
# Words that compare; a paragraph that uses one must name a figure or a claim from results.json.
COMPARING = re.compile(r"\b(?:faster|slower|cheaper|costlier|more than|less than|under|below|above|none)\b")


def prose(markdown):
    """The page as a reader reads it, without what is not prose: code, includes, links' targets,
    comments, and the {{ bench ... }} figures themselves (kept as a mark, so a paragraph shows
    that it names one)."""
    markdown = re.sub(r"\A---\n.*?\n---\n", "", markdown, flags=re.DOTALL)
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.DOTALL)
    markdown = re.sub(r"^\s*```.*?^\s*```", "", markdown, flags=re.DOTALL | re.MULTILINE)
    markdown = SNIPPET.sub("", markdown)
    markdown = re.sub(r"`[^`\n]+`", "code", markdown)
    markdown = re.sub(r"\]\([^)]*\)", "]", markdown)
    return figures.MARKER.sub("FIGURE", markdown)


def typed_figures(markdown, data):
    sizes = {str(size) for size in data["plan"]["sizes"]}
    text = prose(markdown)
    # "N = 100" and "100 clients" name a room size of the plan: a setting of the run, not a result.
    text = re.sub(r"\bN = (\d+)", lambda m: "N" if m[1] in sizes else m[0], text)
    text = re.sub(r"\b(\d+)\s+(clients|members|people)\b", lambda m: m[2] if m[1] in sizes else m[0], text)
    for allowed in TYPED_ON_PURPOSE:
        text = text.replace(allowed, "")
    return [match[0] for match in TYPED_FIGURE.finditer(text)]


def comparisons_without_data(markdown):
    # Tables and headings are left out: they name things ("under daphne", "Making it faster")
    # more than they compare.
    text = re.sub(r"^\s*(?:\||#).*\n", "", prose(markdown), flags=re.MULTILINE)
    paragraphs = re.split(r"\n\s*\n", text)
    return [" ".join(p.split())[:120] for p in paragraphs if COMPARING.search(p) and "FIGURE" not in p]


def test_performance_prose_types_no_figure_by_hand():
    data = json.loads(figures.RESULTS.read_text())
    markdown = PERFORMANCE.read_text()
    typed = typed_figures(markdown, data)
    assert not typed, (
        f"docs/performance.md types {typed} by hand: the next `make bench` would contradict it. Name the "
        "figure in results.json instead, e.g. {{ bench 05@100.p99_ms }} (see tutorial/site/figures.py), or, "
        "if it is no measurement, add it to TYPED_ON_PURPOSE in tests/test_docs.py with the reason"
    )
    loose = comparisons_without_data(markdown)
    assert not loose, (
        "docs/performance.md compares in words (faster, under, none...) in a paragraph that names no figure "
        "and no claim from results.json; add a {{ bench A > B }} claim beside the words:\n" + "\n".join(loose)
    )


def test_performance_figures_match_results_json():
    """The hook's own check, without a whole build: every path exists and every claim holds."""
    try:
        figures.render(PERFORMANCE.read_text(), "docs/performance.md")
        failed = None
    except figures.FigureError as error:
        failed = str(error)
    assert failed is None, f"{failed}\n(after `make bench`, reword the sentence, or its claim, to what was measured)"


def test_the_figure_checks_catch_what_they_are_for():
    """Proof that the two checks above can fail: a typed ratio, and results that contradict a claim."""
    data = json.loads(figures.RESULTS.read_text())
    assert typed_figures("Step 05 delivers 1.65x as many, in 65 ms, twice as fast.", data) == [
        "1.65x", "65 ms", "twice"]
    assert typed_figures("At N = 100, 99 in 100 of 500 clients, in step 04 on port 8000.", data) == []
    # A comparison in words needs a figure or a claim beside it; a heading only names its section.
    assert comparisons_without_data("Step 05 is faster.\n") == ["Step 05 is faster."]
    assert comparisons_without_data("## Making it faster\n\nStep 05 is {{ bench 05@100.p50_ms }}.\n") == []
    swapped = json.loads(json.dumps(data))
    for row in swapped["results"]:
        if row["variant"] in ("04", "05"):
            row["variant"] = {"04": "05", "05": "04"}[row["variant"]]
    with pytest.raises(figures.FigureError, match=r"05@\*\.deliveries_per_s > 04@\*\.deliveries_per_s"):
        figures.render(PERFORMANCE.read_text(), "docs/performance.md", swapped)
    # `make docs` after a learner's own run is not strict: the page still builds, and says at its
    # top which sentences that run contradicts.
    page = figures.render(PERFORMANCE.read_text(), "docs/performance.md", swapped, strict=False)
    assert "Your `make bench` run disagrees with" in page and "05@*.deliveries_per_s > 04@*" in page
    assert "{{ bench" not in page


def test_ratios_of_measurements_are_paired_within_a_repeat():
    """A / B of two measurements is the median of each repeat's own ratio, not a ratio of medians:
    each repeat measured both variants a minute apart. `| range` shows the repeats' spread."""
    def row(variant, values):
        known = [value for value in values if value is not None]
        return {"variant": variant, "n": 100, "deliveries_per_s": {
            "median": sorted(known)[len(known) // 2], "min": min(known), "max": max(known), "values": values}}

    # Repeat 2 was slow for both: per repeat, 05 is 2x, 2.5x and 2x as fast as 04.
    data = {"results": [row("05", [200, 100, 240]), row("04", [100, 40, 120])]}
    assert figures.render("{{ bench 05@100.deliveries_per_s / 04@100.deliveries_per_s }}", "t", data) == "2.0×"
    assert figures.render("{{ bench 05@100.deliveries_per_s / 04@100.deliveries_per_s | range }}", "t",
                             data) == "2.0× (2.0–2.5×)"
    assert figures.render("{{ bench 05@100.deliveries_per_s | range }}", "t", data) == "200/s (100–240/s)"
    # A repeat that measured nothing (None) is left out of the pairs, not paired with another repeat.
    data = {"results": [row("05", [200, None, 240]), row("04", [100, 40, 80])]}
    assert figures.render("{{ bench 05@100.deliveries_per_s / 04@100.deliveries_per_s | range }}", "t",
                             data) == "2.5× (2.0–3.0×)"
    assert figures.render("{{ bench 05@100.deliveries_per_s | range }}", "t", data) == "240/s (200–240/s)"
    # ...and stays in its place, so that a difference divided by another still pairs repeat with
    # repeat: (200 - 100) / (100 - 50) in repeat 1, (240 - 80) / (80 - 40) in repeat 3.
    data["results"] += [row("06x1", [100, 10, 80]), row("06x2", [50, 20, 40])]
    assert figures.render("{{ bench (05@100.deliveries_per_s - 04@100.deliveries_per_s) / "
                             "(06x1@100.deliveries_per_s - 06x2@100.deliveries_per_s) | range }}", "t",
                             data) == "3.0× (2.0–4.0×)"
