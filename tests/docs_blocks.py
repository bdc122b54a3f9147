"""Extract the fenced code blocks of README.md and docs/**/*.md, and how each one is run.

Kinds, by the fence's language:

- ``python``: executed (in a fresh namespace, in a temporary working directory);
- ``yaml``: a config fragment, loaded with ``load_config`` and checked with
  ``check_experiment``;
- ``bash`` / ``sh`` / ``console``: every command must be a ``unigen-sb3`` command, run through
  ``unigen_sb3.cli.main`` (training commands with a tiny budget, see ``test_docs.py``);
- no language, ``text``: prose (a formula, a layout, a schema), not code, not run.

A block that cannot run here (it installs packages, runs ``make``, trains for minutes, or
calls another tool) carries the marker ``<!-- docs-test: skip: REASON -->`` on the line right
before its fence; ``test_docs.py`` lists those blocks and requires a reason for each.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_LANGS = {"python": "python", "yaml": "yaml", "bash": "shell", "sh": "shell", "console": "shell"}
PROSE_LANGS = {"", "text"}
_FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
_SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip\s*:?\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its file (relative to the repo), first line, language, code, and
    the skip reason (None: run it)."""

    path: str
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def kind(self) -> str:
        return RUN_LANGS.get(self.lang, "prose" if self.lang in PROSE_LANGS else "unknown")


def doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/, sorted."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def blocks(path: Path, root: Path = REPO) -> list[Block]:
    """The fenced blocks of one Markdown file, in order (paths relative to ``root``)."""
    lines = path.read_text("utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2).lower()
        j = i + 1
        while j < len(lines) and not _FENCE.match(lines[j]):
            j += 1
        code = "\n".join(line[len(indent) :] for line in lines[i + 1 : j])
        before = lines[i - 1] if i > 0 else ""
        skip = _SKIP.match(before)
        rel = str(path.relative_to(root))
        out.append(Block(rel, i + 1, lang, code + "\n", skip.group(1) if skip else None))
        i = j + 1
    return out


def all_blocks() -> list[Block]:
    """Every fenced block of the README and the docs."""
    return [b for f in doc_files() for b in blocks(f)]


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments and blanks
    dropped, each split like a shell would."""
    joined = re.sub(r"\\\n", " ", code)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands
