"""Examples in the docs are code: a fenced block that follows a marker line is read from the page by the
test that runs it, so the page and the test cannot drift.

    <!-- example: NAME -->                      a test reads this block with example(PAGE, NAME) and runs it
    <!-- not run here: REASON -->               a block that cannot run on a test machine (a cluster, a download)

tests/unit/test_docs.py checks that every command block of README.md and docs/ carries one of the two
markers, and that every named example is read by some test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, RUN_ID_IN_OUTPUT, VENV_BIN

MARKED_BLOCK = re.compile(
    r"^<!-- (example: (?P<name>[\w-]+)|not run here: (?P<reason>[^>]+)) -->\n```(?P<lang>[^\n]*)\n(?P<body>.*?)```",
    re.M | re.S,
)
ANY_BLOCK = re.compile(r"^```(?P<lang>[^\n]*)\n(?P<body>.*?)```", re.M | re.S)


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    body: str
    name: str | None  # an example's name
    reason: str | None  # why it cannot run here


def blocks(page: str) -> list[Block]:
    """Every fenced block of `page` (relative to the repository), with its marker if it has one."""
    text = (REPO / page).read_text()
    marked = {m.start("lang"): m for m in MARKED_BLOCK.finditer(text)}
    found = []
    for block in ANY_BLOCK.finditer(text):
        mark = marked.get(block.start("lang"))
        found.append(Block(page, block["lang"].strip(), block["body"], mark and mark["name"], mark and mark["reason"]))
    return found


def example(page: str, name: str) -> str:
    """The body of the example `name` on `page`; fails loudly if the page no longer has it."""
    for block in blocks(page):
        if block.name == name:
            return block.body
    raise LookupError(f"{page} has no block marked <!-- example: {name} -->")


def command_lines(body: str) -> list[str]:
    """A shell block's commands: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [
        line.split(" #")[0].strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def words(line: str) -> list[str]:
    """A command line as the shell would split it."""
    return shlex.split(line)


def substituted(line: str, values: dict[str, str]) -> str:
    """`line` with each placeholder (a whole word, or a `<...>` phrase) replaced by its value."""
    for placeholder, value in values.items():
        line = re.sub(rf"(?<![\w.-]){re.escape(placeholder)}(?![\w-])", value, line)
    return line


def with_params(argv: list[str], params: dict) -> list[str]:
    """`mlflow run` argv with these -P values: an example's own value of the same key is replaced."""
    out, given = [], {str(k): str(v) for k, v in params.items()}
    pairs = iter(range(len(argv)))
    for i in pairs:
        if argv[i] == "-P" and argv[i + 1].split("=", 1)[0] in given:
            next(pairs)
            continue
        out.append(argv[i])
    return out + [item for key, value in given.items() for item in ("-P", f"{key}={value}")]


def run_on_machines(argv: list[str], env: dict, cwd: Path, machines: int) -> list[tuple[int, str]]:
    """(exit status, output) of `argv` typed in `cwd`, or on `machines` machines at once, each in a folder
    of its own under `cwd` (machine-1, ...)."""
    if machines == 1:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
        return [(result.returncode, result.stdout + result.stderr)]
    with ExitStack() as stack:
        logs, processes = [], []
        for machine in range(1, machines + 1):
            folder = cwd / f"machine-{machine}"
            folder.mkdir(exist_ok=True)
            logs.append(stack.enter_context(open(folder.with_suffix(".log"), "w+")))
            processes.append(subprocess.Popen(argv, env=env, cwd=folder, stdout=logs[-1], stderr=subprocess.STDOUT))
        statuses = [process.wait(timeout=900) for process in processes]
        return [(status, (log.seek(0), log.read())[1]) for status, log in zip(statuses, logs)]


def run_block(
    body: str, values: dict[str, str], env: dict, cwd: Path, tiny: list[dict] | dict = (), machines: int = 1
) -> list[tuple[str, str]]:
    """Run a shell block's commands in order: `export NAME=VALUE` sets the environment, each `mlflow run`
    runs (with the project folder for `.`, and `tiny`'s -P values: one dict for all, or one per command),
    on `machines` machines at once when more than one; `<... run id>` placeholders take the run ids printed
    so far, in order. Returns (run id, output) of each command on each machine."""
    env, done = dict(env), []
    commands = [substituted(line, values) for line in command_lines(body)]
    runs = [line for line in commands if not line.startswith("export ")]
    tiny = tiny if isinstance(tiny, list) else [dict(tiny)] * len(runs)
    for line in commands:
        for placeholder, (run_id, _) in zip(re.findall(r"<[\w ]+ run id>", line), done[-1:]):
            line = line.replace(placeholder, run_id)
        argv = words(line)
        if argv[0] == "export":
            name, _, value = argv[1].partition("=")
            env[name] = value
            continue
        assert argv[:3] == ["mlflow", "run", "."], line
        argv = [os.path.join(VENV_BIN, "mlflow"), "run", str(REPO), *argv[3:]]
        argv = with_params(argv, tiny[len(done) // machines])
        for status, output in run_on_machines(argv, env, cwd, machines):
            matches = RUN_ID_IN_OUTPUT.findall(output)
            assert status == 0 and matches, f"{line}: status {status}\n{output[-6000:]}"
            done.append((matches[-1][0], output))
    return done
