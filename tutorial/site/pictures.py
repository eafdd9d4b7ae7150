"""The pictures on the docs site, taken in headless Chromium: the finished chat in two windows,
and the first screen of every step page."""

import shutil
import tempfile
import time
from pathlib import Path

from ..core import serve
from ..core.steps import STEPS, find
from . import browser

# Two windows in one picture: each window's screenshot, one above the other on a local page that
# is then photographed at 1280 px. (Frames of the room would be simpler, but Django's
# XFrameOptionsMiddleware forbids framing its pages, as it should.)
ONE_ABOVE_THE_OTHER = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><style>
  body {{ margin: 0; display: flex; flex-direction: column; gap: 4px; background: #8a93a6; }}
  img {{ display: block; width: {width}px; }}
</style></head>
<body><img src="data:image/png;base64,{first}"><img src="data:image/png;base64,{second}"></body></html>
"""


def viewport(driver, width, height):
    """Size the window so that the page itself (the viewport) is width x height, the size the
    screenshot shows: a window's own frame takes some of its height, even headless."""
    driver.set_window_size(width, height)
    frame = driver.execute_script("return window.outerHeight - window.innerHeight")
    if frame:
        driver.set_window_size(width, height + frame)


def finished_chat(path, width=1280, height=800):
    """Two windows chat in step 06's lobby, each 1280 px wide as a learner's would be, one
    above the other in one picture: Alice (first) and Bob (second) talk to the room, and a frame
    that is not JSON gets an error event."""
    from selenium import webdriver

    # The page as steps 04 to 06 show it; step 07 adds the room's history above new messages,
    # and a database whose contents would change the picture from run to run.
    step = find("06")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.set_page_load_timeout(10)
    harness = Path(tempfile.mkdtemp()) / "one-above-the-other.html"
    server = None
    try:
        server = serve.start(step.folder)
        url = f"{server.url}/chat/lobby/"
        viewport(driver, width, height)
        driver.get(url)
        alice = driver.current_window_handle
        driver.switch_to.new_window("window")
        viewport(driver, width, height)
        driver.get(url)
        bob = driver.current_window_handle

        def run(window, script):
            driver.switch_to.window(window)
            return driver.execute_script(script)

        def wait(window, script):
            deadline = time.monotonic() + 10
            while not run(window, script):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the two-window screenshot waited in vain for: {script}")
                time.sleep(0.05)

        def say(window, text):
            run(window, f"document.getElementById('chat-message-input').value = {text!r};"
                        "document.getElementById('chat-message-submit').click();")

        def arrived(count):
            # #chat-log is a <textarea>, a line a message.
            return f"return document.getElementById('chat-log').value.split('\\n').filter(Boolean).length >= {count}"

        for window in (alice, bob):
            wait(window, "return document.getElementById('channel-name').textContent.startsWith('specific.')")
        say(alice, "Hi! Is anyone else in the lobby?")
        wait(bob, arrived(1))
        say(bob, "Hello Alice, Bob here. Everyone in the lobby sees this.")
        wait(alice, arrived(2))
        say(alice, "And this too: one group_send, a copy for each of us.")
        wait(bob, arrived(3))
        run(bob, "socket.send('this is not JSON')")
        wait(bob, "return document.querySelector('#event-log li.error') !== null")
        shots = {}
        for name, window in (("first", alice), ("second", bob)):
            driver.switch_to.window(window)
            run(window, "document.activeElement.blur()")  # no caret blinking in the picture
            shots[name] = driver.get_screenshot_as_base64()
        harness.write_text(ONE_ABOVE_THE_OTHER.format(width=width, **shots))
        viewport(driver, width, 2 * height + 4)
        driver.get(harness.as_uri())
        driver.save_screenshot(str(path))
    finally:
        driver.quit()
        if server:
            server.stop()
        shutil.rmtree(harness.parent, ignore_errors=True)


def step_pages(folder):
    """The first screen of every step page, as a learner with a 1280 x 800 window sees it:
    the site is built and served as `make docs` would, then photographed in headless Chromium.
    Yields each picture's path as it is written."""
    folder.mkdir(parents=True, exist_ok=True)
    for step in STEPS:
        # A new step's picture does not exist before its first run, and the home page links to
        # it, so the strict build would fail: another step's stands in until it is taken.
        picture = folder / f"{step.name}.png"
        if not picture.exists():
            shutil.copy(next(folder.glob("*.png")), picture)
    with tempfile.TemporaryDirectory(prefix="tutorial-site-") as tmp:
        site = Path(tmp) / "site"
        failed = browser.build(site)
        if failed:
            raise SystemExit("mkdocs build --strict failed:\n" + failed)
        with browser.serve(site) as url, browser.chromium(Path(tmp) / "chromium") as driver:
            for step in STEPS:
                page = step.docs_page.removesuffix(".md") + "/"
                if not browser.open_page(driver, f"{url}/{page}"):
                    raise SystemExit(f"{page}: its diagrams were not drawn within {browser.TIMEOUT} s")
                driver.save_screenshot(str(folder / f"{step.name}.png"))
                yield folder / f"{step.name}.png"
