"""The runner behind `make`: `python -m tutorial run|check|test`.

    run [STEP] [--port N]      migrate, then serve the step on http://127.0.0.1:8000/ (or port N)
    check STEP [--dir DIR]     run the step's checks on steps/NN-... or on your own copy
    test                       every step's checks, the before/after proof, and the docs
"""

import argparse
import sys

from . import runner


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve a step on http://127.0.0.1:8000/")
    run.add_argument("step", nargs="?", default="latest")
    run.add_argument("--port", type=int, default=8000, help="serve on this port instead (default 8000)")

    check = commands.add_parser("check", help="run one step's checks")
    check.add_argument("step", nargs="?", default="latest")
    check.add_argument("--dir", help="check this folder (your own copy) instead of steps/NN-...")

    test = commands.add_parser("test", help="every step's checks, the proof and the docs build")
    test.add_argument("--jobs", type=int, default=2, help="suites run side by side (default 2)")

    # Anything else on a check's command line goes on to pytest, e.g. -k groups or -x.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "check":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "run":
        return runner.run(args.step, args.port)
    if args.command == "check":
        return runner.check(args.step, args.dir, extra)
    return runner.test_everything(args.jobs)


if __name__ == "__main__":
    sys.exit(main())
