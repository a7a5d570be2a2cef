"""Examples in the docs are code: a fenced block that follows a marker line is read from the page by the
test that runs it, so the page and the test cannot drift.

    <!-- example: NAME -->                      a test reads this block with example(PAGE, NAME) and runs it
    <!-- not run here: REASON -->               a block that cannot run on a test machine (a cluster, a download)

tests/unit/test_docs.py checks that every command block of README.md and docs/ carries one of the two
markers, and that every named example is read by some test.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from tests.conftest import REPO

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
