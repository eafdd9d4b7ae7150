"""How long a learner waits in `make watch`, from a save to the verdict: `make bench-watch`.

For each step, a scratch workspace starts it from our step before (as `make start` does) and
`make watch` runs on it. Each repeat saves our step's files over it (the learner's last save)
and reads the watch's own report of that run: when the step's in-process checks were done
(the first verdict on its tasks), and when all its checks were, earlier steps' included.
Figures are medians and ranges over the repeats; they are measured, never asserted.
Writes docs/assets/bench/watch.json.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..core.steps import ROOT, STEPS, find
from ..core.wire import free_port

REPORTED = re.compile(r"verdict after ([\d.]+) s in process, ([\d.]+) s for every task, ([\d.]+) s in all")


def loadavg():
    return float(Path("/proc/loadavg").read_text().split()[0])


def measure(step, repeats):
    runs = []
    with tempfile.TemporaryDirectory(prefix="tutorial-watch-bench-") as work:
        env = {**os.environ, "TUTORIAL_WORK": work, "TERM": "dumb", "PYTHONUNBUFFERED": "1"}
        subprocess.run([sys.executable, "-m", "tutorial", "start", step.number], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        mine = Path(work) / step.name
        watcher = subprocess.Popen([sys.executable, "-m", "tutorial", "watch", "--port", str(free_port())],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            first = True
            saved = None
            while len(runs) < repeats + 1:
                line = watcher.stdout.readline()
                if not line:
                    raise SystemExit(f"make watch stopped on step {step.number}")
                found = REPORTED.search(line)
                if found:
                    runs.append({"in_process": float(found[1]), "tasks": float(found[2]), "all": float(found[3]),
                                 "wall_from_write": round(time.monotonic() - saved, 2) if saved else None,
                                 "passed": not first, "load": loadavg()})
                if line.startswith("Waiting for you to save"):
                    time.sleep(1)
                    first = False
                    for path in step.folder.rglob("*"):
                        if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith("db."):
                            target = mine / path.relative_to(step.folder)
                            target.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copy(path, target)
                    # Touch one file, so that every repeat is a save even when nothing changed.
                    (mine / "chat" / "consumers.py").touch()
                    saved = time.monotonic()
        finally:
            watcher.terminate()
            watcher.wait()
    return runs


def summary(values):
    return {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial bench-watch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", nargs="*", default=[step.number for step in STEPS[1:]])
    parser.add_argument("--out", default=str(ROOT / "docs" / "assets" / "bench" / "watch.json"))
    args = parser.parse_args(argv)
    results = []
    for number in args.steps:
        step = find(number)
        runs = measure(step, args.repeats)
        start, done = runs[0], runs[1:]
        row = {"step": step.number,
               "untouched_start": {key: start[key] for key in ("in_process", "tasks", "all")},
               "finished": {key: summary([r[key] for r in done]) for key in ("in_process", "tasks", "all")},
               "load": summary([r["load"] for r in runs]), "runs": runs}
        results.append(row)
        done_row = row["finished"]
        print(f"step {step.number}: untouched start {start['in_process']:.1f} / {start['tasks']:.1f} / "
              f"{start['all']:.1f} s; finished, median (range): " + ", ".join(
                  f"{key} {done_row[key]['median']:.1f} ({done_row[key]['min']:.1f}-{done_row[key]['max']:.1f})"
                  for key in ("in_process", "tasks", "all")) + f"; load {row['load']['median']}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cores": os.cpu_count(), "repeats": args.repeats,
                                          "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")

