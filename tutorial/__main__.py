"""The runner behind `make`: `python -m tutorial <command>`.

The learner's loop, in a workspace of their own (work/):
    start [STEP]               begin the first step not done yet (or STEP), from your last one
    watch [--port N]           on every save: check the current step, and serve it on port N
    check [STEP] [--dir DIR]   the checklist of the current step (or of our STEP, or of DIR)
    hint [STEP]                the next hint for the first task that does not pass yet
    progress                   every step: done, in progress or not started
    reset                      put the current step back as it started (your version is kept)
    solution [STEP]            the diff from your copy of the step to ours

And for everything:
    run [STEP] [--port N] [--dir DIR]   serve the current step (or ours, or DIR) on port N (8000)
    test                       every step's checks, each step's replay, and the docs
"""

import argparse
import signal
import sys

from . import exercise, runner


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="begin a step in your workspace")
    start.add_argument("step", nargs="?")

    watch = commands.add_parser("watch", help="check and serve the current step on every save")
    watch.add_argument("--port", type=int, default=8000)

    check = commands.add_parser("check", help="one step's checklist")
    check.add_argument("step", nargs="?")
    check.add_argument("--dir", help="check this folder (your own copy) instead")

    for name, text in [("hint", "the next hint"), ("solution", "the diff from your copy to ours")]:
        commands.add_parser(name, help=text).add_argument("step", nargs="?")
    commands.add_parser("progress", help="every step's state")
    commands.add_parser("reset", help="start the current step over, keeping a backup")

    run = commands.add_parser("run", help="serve a step on http://127.0.0.1:8000/")
    run.add_argument("step", nargs="?")
    run.add_argument("--port", type=int, default=8000, help="serve on this port instead (default 8000)")
    run.add_argument("--dir", help="serve this folder (your own copy) instead")

    test = commands.add_parser("test", help="every step's checks, each step's replay and the docs")
    test.add_argument("--jobs", type=int, default=2, help="suites run side by side (default 2)")

    # Anything else on a check's command line goes on to pytest, e.g. -k groups, -x or -v.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "check":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "start":
        exercise.workspace.start(args.step)
        return 0
    if args.command == "watch":
        return exercise.watch(args.port)
    if args.command == "check":
        return exercise.check(args.step, args.dir, extra)
    if args.command == "hint":
        return exercise.hint(args.step)
    if args.command == "solution":
        return exercise.solution(args.step)
    if args.command == "progress":
        return exercise.progress()
    if args.command == "reset":
        exercise.workspace.reset()
        return 0
    if args.command == "run":
        return runner.run(args.step, args.port, args.dir)
    return runner.test_everything(args.jobs)


if __name__ == "__main__":
    # Output piped into `head` that stops reading ends the command quietly, as for any Unix tool.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
