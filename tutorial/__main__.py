"""The one entry point behind every `make` target: `python -m tutorial <command>`.

The learner's loop, in a workspace of their own (work/):
    start [STEP]               begin the first step not done yet (or STEP), from your last one
    watch [--port N]           on every save: check the current step, and serve it on port N
    check [STEP] [--dir DIR]   the checklist of the current step (or of our STEP, or of DIR)
    hint [STEP] [--dir DIR]    the next hint for the first task that does not pass yet
    progress                   every step: done, in progress or not started
    reset                      put the current step back as it started (your version is kept)
    solution [STEP] [--dir DIR]  the diff from your copy of the step to ours

And for everything:
    run [STEP] [--port N] [--dir DIR]   serve the current step (or ours, or DIR) on port N (8000)
    test                       every step's checks, each step's replay, and the docs
    replay STEP [--browser]    step STEP's checks on a start made from our step before it
    generate                   re-capture what the docs site shows (handshake, sessions, checks)
    bench [options]            measure the steps under load (`bench --help` lists the options)
    bench-watch [options]      how long `make watch` takes from a save to its verdict
    bare-chat PORT [BACKLOG]   the benchmark's ceiling: the room protocol on bare websockets
"""

import argparse
import signal
import sys

# Commands with options of their own: everything after the name goes to their main(argv).
DELEGATED = {
    "replay": "tutorial.proof.replay",
    "generate": "tutorial.site.generate",
    "bench": "tutorial.bench.run",
    "bench-watch": "tutorial.bench.watch",
    "bare-chat": "tutorial.bench.bare_chat",
}


def parser():
    top = argparse.ArgumentParser(prog="python -m tutorial", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="begin a step in your workspace")
    start.add_argument("step", nargs="?")

    watch = commands.add_parser("watch", help="check and serve the current step on every save")
    watch.add_argument("--port", type=int, default=8000)

    check = commands.add_parser("check", help="one step's checklist (anything after it goes to pytest)")
    check.add_argument("step", nargs="?")
    check.add_argument("--dir", help="check this folder (your own copy) instead")

    for name, text in [("hint", "the next hint"), ("solution", "the diff from your copy to ours")]:
        command = commands.add_parser(name, help=text)
        command.add_argument("step", nargs="?")
        command.add_argument("--dir", help="your copy of the step in this folder, not in work/")
    commands.add_parser("progress", help="every step's state")
    commands.add_parser("reset", help="start the current step over, keeping a backup")

    run = commands.add_parser("run", help="serve a step on http://127.0.0.1:8000/")
    run.add_argument("step", nargs="?")
    run.add_argument("--port", type=int, default=8000, help="serve on this port instead (default 8000)")
    run.add_argument("--dir", help="serve this folder (your own copy) instead")
    run.add_argument("--stack", action=argparse.BooleanOptionalAction, default=None,
                     help="as production serves it: https through nginx, two daphne processes on Redis "
                          "(default: only a step with production settings, when nginx and the rest are installed)")

    test = commands.add_parser("test", help="every step's checks, each step's replay and the docs")
    test.add_argument("--jobs", type=int, default=2, help="suites run side by side (default 2)")
    for name in DELEGATED:
        commands.add_parser(name, help=f"see `python -m tutorial {name} --help`", add_help=False)
    return top


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        return importlib.import_module(DELEGATED[argv[0]]).main(argv[1:]) or 0
    top = parser()
    # Anything else on a check's command line goes on to pytest, e.g. -k groups, -x or -v.
    args, extra = top.parse_known_args(argv)
    if extra and args.command != "check":
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    # Imported here, so that `--help` and the delegated commands load no more than they need.
    from .learner import commands, watch
    from .proof import everything

    if args.command == "start":
        return commands.start(args.step)
    if args.command == "watch":
        return watch.watch(args.port)
    if args.command == "check":
        return commands.check(args.step, args.dir, extra)
    if args.command == "hint":
        return commands.hint(args.step, args.dir)
    if args.command == "solution":
        return commands.solution(args.step, args.dir)
    if args.command == "progress":
        return commands.progress()
    if args.command == "reset":
        return commands.reset()
    if args.command == "run":
        return commands.run_server(args.step, args.port, args.dir, args.stack)
    return everything.test_everything(args.jobs)


if __name__ == "__main__":
    # Output piped into `head` that stops reading ends the command quietly, as for any Unix tool.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
