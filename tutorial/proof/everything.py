"""`make test`: every step's suite, each step replayed from the one before, the long checks, a
tiny run of the benchmark, and the repository's and docs site's checks, side by side."""

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..checks.verdict import Counts, run_once, suite
from ..core.steps import ROOT, STEPS
from ..core.tasks import test_functions

PASSED, FAILED = Counts(1, 0, 0, False), Counts(0, 1, 0, False)


def pytest_job(step, files, *args, what):
    """Run `files` as `step` in one pytest process; count the JSON line of each check."""
    counts, output, seconds = run_once(step, step.folder, files, *args)
    ok = counts.failed == 0
    return ok, f"{what}: {counts} ({seconds:.1f} s)", output, counts


def suite_job(step):
    return pytest_job(step, suite(step), "-m", "not long", what=f"step {step.name}")


def replay_job(step):
    """Step N replayed as a learner meets it (tutorial/proof/replay.py): started from our step N-1, each
    of its task checks fails there with a hint, each regression guard holds, and the tasks name
    every file that differs. A subprocess of its own, because it makes a scratch workspace."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tutorial", "replay", step.number], cwd=ROOT,
                          capture_output=True, text=True)
    output = (done.stdout + done.stderr).strip()
    ok = done.returncode == 0
    title = output.splitlines()[0] if ok and output else \
        f"step {step.number}'s replay FAILED ({time.monotonic() - started:.1f} s)"
    return ok, title, "" if ok else output, PASSED if ok else FAILED


def has_long_checks(step):
    return any("long" in marks for marks in test_functions(step).values())


def long_job(step):
    """A step's own `long` checks: connections held open and quiet past every timeout in the
    stack. They mostly wait, so they run beside everything else rather than in its pool."""
    return pytest_job(step, [str(step.test_file)], "-m", "long", what=f"step {step.name}'s long checks")


def docs_job():
    """The repository's and the docs site's checks: names shared by the steps, the tooling, the
    services it starts and a step run as production runs it, the strict build, freshness of what
    is generated, the site in a browser, and its legibility at 1280 px."""
    files = [str(ROOT / "tests" / name)
             for name in ("test_repository.py", "test_shape.py", "test_tooling.py", "test_services.py",
                          "test_stack.py", "test_workspace.py", "test_docs.py", "test_site.py")]
    return pytest_job(STEPS[-1], files, what="repository and docs")


def bench_job():
    """The benchmark, once at tiny sizes into a scratch folder: it must run; its numbers are not judged."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tutorial-bench-") as out:
        command = [sys.executable, "-m", "tutorial", "bench", "--tiny", "--out", out]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        output = done.stdout + done.stderr
        rows = []
        if done.returncode == 0:
            rows = json.loads((Path(out) / "results.json").read_text())["results"]
        # The plot is drawn where `make bench-setup` has installed matplotlib (as CI does).
        plotted = (Path(out) / "bench.png").is_file() or not importlib.util.find_spec("matplotlib")
    measured = {row["variant"] for row in rows}
    # Every variant the machine can serve: Redis ones need redis-server, uvicorn ones uvicorn
    # (the "bench" extra, as matplotlib); the list is tutorial/bench/variants.py's own.
    from ..bench.variants import VARIANTS, available

    wanted = {variant.key for variant in available(VARIANTS)}
    # Not a figure but a fact: step 07 stored every message the run sent it, once.
    unstored = [f"{row['variant']}: {row['stored']} rows for {row['sent']} messages" for row in rows
                if "stored" in row and row["stored"] != row["sent"]]
    ok = done.returncode == 0 and wanted <= measured and plotted and not unstored
    output += "".join(f"\nrows stored do not match the messages sent, {line}" for line in unstored)
    title = f"bench: a tiny run {'measured' if ok else 'FAILED to measure'} " \
            f"{', '.join(sorted(measured)) or 'nothing'} ({time.monotonic() - started:.1f} s)"
    return ok, title, "" if ok else output, PASSED if ok else FAILED


def test_everything(jobs):
    started = time.monotonic()
    # (how long it takes, roughly; the job): a later step's suite holds every earlier step's checks.
    work = [(2 + index, lambda step=step: suite_job(step)) for index, step in enumerate(STEPS)]
    proofs = [lambda step=step: replay_job(step) for step in STEPS[1:]]
    proofs += [lambda step=step: long_job(step) for step in STEPS if has_long_checks(step)]
    work.append((3, bench_job))
    if (ROOT / "mkdocs.yml").is_file():
        work.append((len(STEPS), docs_job))
    totals = [0, 0, 0]  # passed, failed, skipped
    all_ok = True
    # Suites run side by side (each in its own process: the steps share module names,
    # and Django is set up once per process); results are printed as they finish.
    # The proofs and the long checks run beside them, all at once, in a pool of their own: on the
    # step before, most proof checks wait out a timeout, as they should, and the long checks wait
    # out a quiet minute; that takes time but hardly any CPU.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            ThreadPoolExecutor(max_workers=len(proofs)) as waiting:
        proving = [waiting.submit(job) for job in proofs]
        # The longest start first, so that the workers finish close together; results print in order.
        futures = {}
        for index in sorted(range(len(work)), key=lambda index: -work[index][0]):
            futures[index] = pool.submit(work[index][1])
        done = [futures[index] for index in range(len(work))]
        # Printed in this order: each step's suite, each proof, the long checks, then the bench and the docs.
        for future in done[:len(STEPS)] + proving + done[len(STEPS):]:
            ok, title, output, counts = future.result()
            all_ok &= ok
            totals[0] += counts.passed
            totals[1] += counts.failed
            totals[2] += counts.skipped
            if output and not ok:
                print(output.rstrip())
            elif output:
                # A passing suite says only why anything was skipped (e.g. no browser installed).
                for line in output.splitlines():
                    if line.startswith("SKIPPED"):
                        print("      " + line)
            print(("ok    " if ok else "FAIL  ") + title, flush=True)
    print(f"\nall checks in {time.monotonic() - started:.1f} s")
    print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 0 if all_ok else 1
