"""The tutorial's tooling: `python -m tutorial <command>` is behind every `make` target.

Nothing here is imported by the steps; each step is a complete Django project on its own.
The rooms, each a package with a one-line docstring of its own:

    core/     what every room shares: the step manifest, the tasks, serving a step, Redis, sockets
    checks/   running a step's pytest checks and reading each result as a JSON line
    learner/  the learner's commands: the workspace, the checklist on screen, start, watch, hint
    proof/    `make test`: every step's suite, each step replayed from the one before, the docs
    site/     the docs site: the mkdocs hook, the captured outputs, the pages measured in a browser
    bench/    `make bench` and `make bench-watch`: the steps measured under load

A room imports from core/ and from the rooms listed above it, never from one below it.
"""
