"""The built docs site in a real browser, at the width a learner reads it.

tests/test_site.py measures every page with these (code that fits its column, diagrams whose
text is as large as the prose), and `make generate` (tutorial/site/pictures.py) takes a
screenshot of every step page with them.
"""

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core.steps import ROOT

# A laptop's screen: the width the site must be legible at, and the height a diagram must fit in.
WIDTH, HEIGHT = 1280, 800
# How long a page may take to load and draw its diagrams: each takes well under a second alone.
TIMEOUT = 10


def build(out, timeout=None):
    """Build the site into `out` with --strict; return mkdocs' output if it fails (or takes over
    `timeout` seconds), else None."""
    try:
        done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    except subprocess.TimeoutExpired:
        return f"mkdocs build took over {timeout} s ({load()})"
    return None if done.returncode == 0 else done.stdout + done.stderr


def load():
    """How busy the machine is, in words: for a failure that may be the machine's, not the code's."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def pages(site):
    """Every page of a built site, as the path a browser asks for: "", "steps/04-groups/", ..."""
    found = [page.parent.relative_to(site).as_posix() for page in Path(site).rglob("index.html")]
    return sorted("" if path == "." else path + "/" for path in found)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(site):
    """Serve a built site on a free loopback port; yields its address."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def browser_missing():
    """Why there is no browser to drive (Debian's chromium and chromedriver), or None."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return None
    return "no browser: install Debian's chromium and chromium-driver to run the browser checks"


# The theme draws each diagram into a shadow root it opens "closed", which no script can look
# into. Run before the page's own scripts, this opens every shadow root, so that the SVG can be read.
OPEN_SHADOW_ROOTS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) { return attach.call(this, {...init, mode: "open"}); };
"""


@contextlib.contextmanager
def chromium(user_data_dir):
    """Headless Chromium with a 1280 x 800 viewport, shadow roots open and the console logged."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
                 f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        driver.set_page_load_timeout(TIMEOUT)
        # The window's size includes no toolbar in headless mode, but set the viewport exactly anyway.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OPEN_SHADOW_ROOTS})
        yield driver
    finally:
        driver.quit()


DRAWN = """
return document.readyState === "complete" && !document.querySelector("pre.mermaid")
    && [...document.querySelectorAll("div.mermaid")].every(d => d.shadowRoot && d.shadowRoot.querySelector("svg"))
"""


def open_page(driver, url):
    """Load a page and wait until its diagrams are drawn; return False if they were not in time."""
    driver.get(url)
    deadline = time.monotonic() + TIMEOUT
    while not driver.execute_script(DRAWN):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    # A diagram is measured in the page's own font, once it has loaded.
    driver.execute_script("return document.fonts.ready.then(() => true)")
    return True


# What a reader at 1280 px sees, measured in the page itself (all sizes in CSS pixels):
#   body       the prose's font size (.md-typeset p)
#   content    the width of the content column
#   code       every code block, made visible in turn (folds opened, each tab chosen):
#              its first line, the widths it has and needs, its longest line in characters
#   diagrams   every Mermaid diagram: the heading it is under, its size, the smallest text drawn in it (font size times
#              the scale the SVG is drawn at) and every text that spills out of its box
MEASURE = r"""
const body = parseFloat(getComputedStyle(document.querySelector(".md-typeset p")).fontSize);
const content = document.querySelector(".md-content__inner").getBoundingClientRect().width;
document.querySelectorAll("details").forEach(d => { d.open = true; });

const code = [], seen = new Set();
function measureCode(tab) {
  for (const block of document.querySelectorAll("pre > code")) {
    if (seen.has(block) || block.clientWidth === 0) continue;  // done, or hidden in another tab
    seen.add(block);
    const lines = block.textContent.split("\n");
    const lang = (block.closest("[class*=language-]") || {className: ""}).className.match(/language-(\w+)/);
    code.push({first: lines.find(l => l.trim()) || "", tab: tab, lang: lang ? lang[1] : "",
               wraps: getComputedStyle(block).whiteSpace !== "pre", scroll: block.scrollWidth,
               client: block.clientWidth, longest: Math.max(...lines.map(l => l.length))});
  }
}
measureCode("");
// An inactive tab has no width at all: choose each tab of each set in turn.
for (const set of document.querySelectorAll(".tabbed-set")) {
  const labels = set.querySelectorAll(":scope > .tabbed-labels > label");
  set.querySelectorAll(":scope > input").forEach((input, i) => {
    input.checked = true;
    measureCode(labels[i] ? labels[i].textContent.trim() : String(i + 1));
  });
}

const inside = (inner, outer) => inner.left >= outer.left - 1 && inner.right <= outer.right + 1
  && inner.top >= outer.top - 1 && inner.bottom <= outer.bottom + 1;
const box = r => [r.left, r.top, r.right, r.bottom].map(Math.round);
const shape = "rect, polygon, path, circle, ellipse";
const header = document.querySelector(".md-header").getBoundingClientRect().height;
// The heading a diagram comes under, to name it in a report.
const heading = el => [...document.querySelectorAll(".md-content h1, .md-content h2, .md-content h3")]
  .filter(h => h.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING)
  .map(h => h.textContent.replace("¶", "").trim()).pop() || "";
const diagrams = [...document.querySelectorAll("div.mermaid")].map((host, index) => {
  const svg = host.shadowRoot && host.shadowRoot.querySelector("svg");
  if (!svg) return {index, drawn: false};
  // Scroll it into view, so that what is measured is what a reader scrolled there sees.
  host.scrollIntoView();
  const frame = svg.getBoundingClientRect();
  const texts = [];
  // SVG text, and the HTML labels that flowcharts draw inside <foreignObject>.
  for (const t of svg.querySelectorAll("text")) {
    if (t.textContent.trim()) texts.push({el: t, scale: t.getScreenCTM().a});
  }
  for (const fo of svg.querySelectorAll("foreignObject")) {
    for (const el of fo.querySelectorAll("*")) {
      const own = [...el.childNodes].some(n => n.nodeType === 3 && n.nodeValue.trim());
      if (own) texts.push({el, scale: fo.getScreenCTM().a});
    }
  }
  let smallest = null;
  const spills = [];
  for (const {el, scale} of texts) {
    const size = parseFloat(getComputedStyle(el).fontSize) * scale;
    const label = el.textContent.trim().slice(0, 60);
    if (!smallest || size < smallest.size) smallest = {size: Math.round(size * 10) / 10, text: label};
    const r = el.getBoundingClientRect();
    if (!inside(r, frame)) { spills.push({text: label, box: box(r), outside: "the diagram", of: box(frame)}); continue; }
    // Its box: the shape drawn beside it in the same group (an actor, a note, a node),
    // or, for a flowchart's label, in the group of its node.
    const group = el.closest("g.node, g.cluster") || el.closest("g");
    const isSequenceLabel = el.matches("text.messageText, text.loopText, text.sectionTitle, text.sequenceNumber");
    const shapes = isSequenceLabel || !group ? [] : [...group.querySelectorAll(`:scope > ${shape}, :scope > g > ${shape}`)]
      .filter(s => !s.closest("foreignObject") && !s.matches("line, .loopLine"));
    if (!shapes.length) continue;
    const around = shapes.map(s => s.getBoundingClientRect()).reduce((a, b) => a.width * a.height >= b.width * b.height ? a : b);
    if (!inside(r, around)) spills.push({text: label, box: box(r), outside: "its box", of: box(around)});
  }
  return {index, drawn: true, kind: svg.getAttribute("aria-roledescription"),
          under: heading(host),
          width: Math.round(frame.width), height: Math.round(frame.height), smallest, spills,
          fits: frame.height <= innerHeight - header};
});
return {body, content, viewport: [innerWidth, innerHeight], header, code, diagrams};
"""


def measure(driver):
    return driver.execute_script(MEASURE)
