"""The tooling's house holds together: tutorial/ in rooms of small files with no import circle,
one way to serve a step, and every command and file the docs name really there.

Run by `make test` with the repository checks. The paths, commands and make targets are read
from what a reader sees: README.md, the docs site's pages, the Makefile, the tasks, and the
tooling's own docstrings and comments.
"""

import ast
import re
import subprocess
import sys

import pytest

from tutorial.core.steps import ROOT, STEPS

TOOLING = ROOT / "tutorial"
MOST_LINES = 400
# Where a reader meets a path or a command: the pages, the README, the Makefile, the tasks,
# and every docstring and comment of the tooling and the checks.
READ = [ROOT / "README.md", ROOT / "Makefile", ROOT / "mkdocs.yml", *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((TOOLING / "tasks").glob("*.toml")), *sorted(TOOLING.rglob("*.py")),
        *sorted((ROOT / "tests").glob("*.py")), ROOT / ".ci" / "run"]


def modules():
    """{dotted name: path} of every module of the tooling."""
    found = {}
    for path in sorted(TOOLING.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name, path, known):
    """The tooling's modules that module `name` imports, anywhere in it (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            source = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            found.add(source)
            # `from . import workspace` imports a module, not a name
            found.update(f"{source}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args \
                and isinstance(node.args[0], ast.Constant):
            found.add(node.args[0].value)
    return {module for module in found if module in known and module != name}


def test_no_tooling_file_is_over_400_lines():
    long = [f"{path.relative_to(ROOT)}: {lines} lines" for path in sorted(TOOLING.rglob("*.py"))
            if (lines := len(path.read_text().splitlines())) > MOST_LINES]
    assert not long, (f"files of the tooling over {MOST_LINES} lines; split each where its parts serve "
                      f"different callers:\n  " + "\n  ".join(long))


def test_every_room_and_module_says_what_it_is_for():
    silent = [str(path.relative_to(ROOT)) for path in modules().values()
              if not ast.get_docstring(ast.parse(path.read_text()))]
    assert not silent, "modules of the tooling with no docstring to say what they are for:\n  " + "\n  ".join(silent)


def circle(graph):
    """A list of modules that import each other in a circle, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for after in sorted(graph[node]):
            if state.get(after) == "open":
                return path[path.index(after):] + [after]
            if after not in state and (found := visit(after, path + [after])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_circle_in_the_tooling():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    # A package imports nothing of its own rooms, so the graph is of modules alone.
    found = circle(graph)
    assert found is None, ("modules of the tooling that import each other in a circle (inside a function "
                           "counts too): " + " -> ".join(found) + ". Move what both need into a module "
                           "they both import, e.g. in tutorial/core/.")


def test_the_circle_finder_finds_a_circle():
    """The check above can fail: a circle of three, and one of a module with itself left out."""
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


# What serving a step is made of: only tutorial/core/serve.py spells these out.
SERVING = {"runserver", "migrate", "daphne", "uvicorn"}


def test_one_way_to_serve_a_step():
    """`manage.py runserver`, `manage.py migrate`, daphne and uvicorn are started in one place."""
    found = []
    for path in sorted(TOOLING.rglob("*.py")) + [ROOT / "tests" / "conftest.py"]:
        if path == TOOLING / "core" / "serve.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.List):
                words = [item.value for item in node.elts if isinstance(item, ast.Constant)]
                if SERVING & set(words) and ("manage.py" in words or "-m" in words):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {words}")
    assert not found, ("a step served (or migrated) by a command line of its own; use tutorial/core/serve.py's "
                       "start() and migrate(), so that every caller serves a step the same way:\n  "
                       + "\n  ".join(found))


def named(pattern):
    """{what the pattern's first group matched: [where]} in everything a reader reads."""
    found = {}
    for path in READ:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in re.finditer(pattern, line):
                found.setdefault(match.group(1), []).append(f"{path.relative_to(ROOT)}:{number}")
    return found


def test_every_tooling_file_named_exists():
    missing = {name: where for name, where in named(r"\b(tutorial/[\w/]+\.(?:py|toml))\b").items()
               if not (ROOT / name).is_file()}
    assert not missing, "files named that are not there (moved or renamed?):\n  " + "\n  ".join(
        f"{name}, named in {', '.join(where)}" for name, where in missing.items())


def test_one_entry_point_style():
    dotted = named(r"-m (tutorial\.[\w.]+)")
    # A pytest plugin is loaded by module name; that is no command.
    dotted.pop("tutorial.checks.report", None)
    assert not dotted, ("commands are `python -m tutorial <command>`, never `python -m tutorial.<module>`:\n  "
                        + "\n  ".join(f"{name} in {', '.join(where)}" for name, where in dotted.items()))


COMMANDS = named(r"-m tutorial ([a-z][\w-]*)")


def test_commands_are_named_somewhere():
    """The check below has something to run: the README and the Makefile name the learner's commands."""
    assert {"start", "watch", "check", "test", "bench", "replay"} <= set(COMMANDS), sorted(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_named_answers_help(command):
    done = subprocess.run([sys.executable, "-m", "tutorial", command, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    # Its usage line names it as it is typed, so that a reader can copy it.
    assert done.returncode == 0 and f"usage: python -m tutorial {command}" in done.stdout, (
        f"`python -m tutorial {command} --help` failed, yet {', '.join(COMMANDS[command])} names it:\n"
        + (done.stdout + done.stderr)[-1500:])


def test_every_make_target_named_exists():
    targets = set(re.findall(r"^([\w-]+(?: [\w-]+)*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    targets = {word for line in targets for word in line.split()}
    used = named(r"`make ([a-z][\w-]*)")
    missing = {name: where for name, where in used.items() if name not in targets}
    assert not missing, "make targets named that the Makefile does not have:\n  " + "\n  ".join(
        f"make {name}, named in {', '.join(where)}" for name, where in missing.items())


# A starter starts servers, prints the pids of their processes and of those processes' children
# (postgres's own), then the scratch folders of its services (which no stop() will remove), and
# waits to be killed. STARTS: what each starts, the function of tutorial/core/services.py that
# finds the program it needs, and how to get that program.
STARTER = """
import sys, time
from tutorial.core import serve, services
from tutorial.core.steps import find
from tutorial.core.wire import free_port

def family(pid):
    return [pid, *open(f"/proc/{pid}/task/{pid}/children").read().split()]

START
print(*[pid for server in started for pid in family(server.process.pid)])
print(*[server.folder for server in started if isinstance(server, services.Service)], flush=True)
time.sleep(60)
"""
STARTS = {
    "redis-server and daphne": ("redis_binary", "HOW_TO_GET_REDIS", """
started = [services.start_redis(), serve.start(find("01").folder, "daphne")]"""),
    "postgres": ("postgres_binaries", "HOW_TO_GET_POSTGRES", "started = [services.start_postgres()]"),
    "nginx": ("nginx_binary", "HOW_TO_GET_NGINX", """
port = free_port()
started = [services.start_nginx("server { listen 127.0.0.1:%d; }" % port, port)]"""),
}


@pytest.mark.parametrize("what", STARTS)
def test_a_server_dies_with_the_process_that_started_it(what):
    """A check killed in the middle (kill -9, as a hung run gets) leaves no daphne, redis-server,
    postgres or nginx behind: core/wire.py's dies_with_parent, on Linux."""
    import os
    import shutil
    import signal
    import time

    from tutorial.core import services

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    finder, how_to, start = STARTS[what]
    if not getattr(services, finder)():
        pytest.skip(f"no {what}: {getattr(services, how_to)}")
    starter = subprocess.Popen([sys.executable, "-c", STARTER.replace("START", start)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in starter.stdout.readline().split()]
        folders = starter.stdout.readline().split()
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait()
    assert pids, f"the starter did not start {what}"
    deadline = time.monotonic() + 10

    def alive(pid):
        try:
            os.kill(pid, 0)
            # A zombie (dead, not yet reaped by init) counts as gone.
            return "Z" not in open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]
        except (ProcessLookupError, FileNotFoundError):  # gone, maybe between the two looks
            return False

    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    for folder in folders:  # a cluster's is 40 MB
        shutil.rmtree(folder, ignore_errors=True)
    assert not left, f"processes {left} of {what} outlived the process that started them by 10 s"


JOB = """
import os, sys

def test_the_job_is_run_as_given():
    assert os.environ["JOB"] == "given", "the job's environment replaces the waiting process's"
    where = sys.path.index(os.environ["PYTHONPATH"])
    assert where < sys.path.index(os.path.dirname(os.__file__)), "PYTHONPATH goes before the standard library"
    assert sys.path.count(os.environ["PYTHONPATH"]) == 1, "and only the job's PYTHONPATH"
    assert "twisted.internet.reactor" not in sys.modules, "no Twisted reactor is installed ahead of the job"
    from django.conf import settings
    assert not settings.configured, "Django's settings wait for the job's DJANGO_SETTINGS_MODULE"
"""


def test_a_warm_pytest_process_runs_the_job_it_is_given(tmp_path):
    """make watch's waiting pytest processes (checks/warm.py) run a job as a fresh pytest would:
    its environment, its PYTHONPATH, its log, and the step's files imported only then."""
    import os

    from tutorial.checks.verdict import Warm

    (tmp_path / "test_job.py").write_text(JOB)
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    warm = Warm(size=1)
    warm.refill()
    try:
        process = warm.take([str(tmp_path / "test_job.py"), "-q", "-p", "no:cacheprovider", "-p", "no:django"],
                            {**env, "JOB": "given", "PYTHONPATH": str(tmp_path / "step")}, tmp_path / "job.log", 0)
        assert process is not None, "Warm.take() gave no process right after refill()"
        code = process.wait(timeout=60)
    finally:
        warm.close()
    log = (tmp_path / "job.log").read_text()
    assert code == 0 and "1 passed" in log, f"the job's pytest exited {code}:\n{log[-2000:]}"


BESIDE_STEPS = [step for step in STEPS if "@pytest.mark.beside" in step.test_file.read_text()]


@pytest.mark.parametrize("step", BESIDE_STEPS, ids=lambda step: step.name)
def test_where_a_learner_waits_each_check_runs_in_exactly_one_of_the_two_processes(step):
    """verdict.py's two pytest processes for a step's own checks ("in-process,beside" and
    "live,browser") must share them out: none twice, none left out, and the `beside` ones after
    every in-process one, the step's regression guards included."""
    from tutorial.checks.verdict import step_env

    def collected(layers):
        env = {**step_env(step, step.folder), **({"TUTORIAL_LAYERS": layers} if layers else {})}
        done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tutorial.checks.report",
                               str(step.test_file)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"pytest could not collect {step.test_file.name}:\n{done.stdout[-2000:]}"
        return [line for line in done.stdout.splitlines() if "::" in line]

    every, quick, slow = collected(None), collected("in-process,beside"), collected("live,browser")
    assert sorted(quick + slow) == sorted(every), (
        f"twice: {sorted(set(quick) & set(slow))}; left out: {sorted(set(every) - set(quick) - set(slow))}")
    beside = collected("beside")
    assert beside and quick[-len(beside):] == beside, (
        f"in the in-process pytest, the beside checks {beside} should come last:\n" + "\n".join(quick))
