"""Speed-up ratios measured in short alternating slices, so that a drifting host cancels out.

``vec_throughput.py --before DIR --repeats K`` times each row for ``--seconds`` in a fresh
process, one row after the other: two rows of one pass are tens of seconds apart, and this
machine's speed drifts by 10-20 % over minutes (the same code measured 426-527 env steps/s
within one run), so a ratio of two rows carries that drift. Here every configuration lives in
its own process for the whole run, built and warmed up once, and the processes take turns:
round after round, each steps its env for ``--slice-seconds`` while the others wait (blocked
on a pipe, using no CPU). Every round yields one ratio per comparison from slices a few
seconds apart; the order of the processes is reversed every other round (A B C D, then
D C B A), so a steady drift favours nobody. Reported: the median of the per-round ratios, their
interquartile range, and the ratio of the totals (all steps over all seconds of each side).

Configurations: the batched env and ``DummyVecEnv`` (``--kinds``) of this checkout (*after*)
and of ``--before DIR`` (e.g. ``git worktree add /tmp/before 23975f7``, the code before lazy
scoring), each the full stack of ``make_unigen_vec_env`` with the default reward, stepped with
seeded uniform random Box actions, episodes ending and resetting as in training (the same
stack and actions as ``vec_throughput.py``'s ``--before`` rows). Comparisons: after/before for
each kind (issue 19's "2x the code before" goal) and, within each side, batched/Dummy (its
"5x DummyVecEnv" goal).

Usage::

    git worktree add /tmp/before 23975f7
    python benchmarks/paired_speedup.py --before /tmp/before --append   # N=64, ~6 minutes
    python benchmarks/paired_speedup.py --before /tmp/before --n-envs 8 --rounds 2 \\
        --slice-seconds 0.5 --output /tmp/p.md                           # smoke
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from vec_throughput import (
    KIND_LABELS,
    check_before,
    environ_importing,
    environment_line,
    revision,
    write_section,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks" / "paired_speedup.md"
KINDS = ("batched", "dummy")

# A worker: builds the stack of the package on its import path, warms it up, prints
# {"ready": package file}, then for each line "SECONDS" on stdin steps for that long (at least
# one vector step) and prints {"steps": env steps, "seconds": wall time}; "quit" ends it.
# argv: kind n_envs size warmup seed threads.
_WORKER = """
import json, sys, time
import numpy as np
import torch
import unigen_sb3
from unigen_sb3.make import make_unigen_vec_env
kind, n, size, warmup, seed, threads = sys.argv[1:]
n, size, warmup, seed = int(n), int(size), int(warmup), int(seed)
if threads != "-":
    torch.set_num_threads(int(threads))
venv = make_unigen_vec_env(n_envs=n, seed=seed, vec_env_kind=kind, size=size, device="cpu")
rng = np.random.default_rng(seed)
shape = (n, *venv.action_space.shape)
venv.reset()
for _ in range(warmup):
    venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
print(json.dumps({"ready": unigen_sb3.__file__}), flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    seconds, steps, start = float(line), 0, time.perf_counter()
    while steps == 0 or time.perf_counter() - start < seconds:
        venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
        steps += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({"steps": n * steps, "seconds": elapsed}), flush=True)
venv.close()
"""


@dataclass
class Side:
    """One configuration's process and its timed slices."""

    code: str  # "before" or "after"
    kind: str
    source: Path
    proc: subprocess.Popen[str] | None = None
    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.code} {self.kind}"

    def slice_rates(self) -> list[float]:
        """Env steps per second of each slice."""
        return [self.rate(k) for k in range(len(self.steps))]

    def rate(self, k: int | None = None) -> float:
        """Env steps per second of slice ``k`` (default: all slices together)."""
        if k is not None:
            return self.steps[k] / self.seconds[k]
        return sum(self.steps) / sum(self.seconds)


def round_order(sides: list[Side], k: int) -> list[Side]:
    """Round ``k``'s order: as given on even rounds, reversed on odd ones (a steady drift
    then favours no side over a pair of rounds)."""
    return list(sides) if k % 2 == 0 else list(reversed(sides))


@dataclass
class Comparison:
    """``top`` against ``bottom``: one ratio per round and the ratio of the totals."""

    label: str
    ratios: list[float]
    total: float

    def line(self) -> str:
        q1, med, q3 = np.percentile(self.ratios, [25, 50, 75])
        return (
            f"- {self.label}: {med:.2f}x, median of {len(self.ratios)} rounds "
            f"(interquartile range {q1:.2f}x-{q3:.2f}x, lowest {min(self.ratios):.2f}x, "
            f"highest {max(self.ratios):.2f}x); totals {self.total:.2f}x."
        )


def compare(top: Side, bottom: Side, label: str) -> Comparison:
    """Per-round ratios of ``top``'s env steps/s to ``bottom``'s, and of their totals."""
    if len(top.steps) != len(bottom.steps) or not top.steps:
        raise ValueError(
            f"{top.name} and {bottom.name} hold {len(top.steps)} and {len(bottom.steps)} "
            "slices; a comparison needs the same number, at least one"
        )
    ratios = [a / b for a, b in zip(top.slice_rates(), bottom.slice_rates(), strict=True)]
    return Comparison(label, ratios, top.rate() / bottom.rate())


def comparisons(sides: list[Side]) -> list[Comparison]:
    """After/before per kind, and batched/Dummy within each code, for the sides present."""
    by = {(s.code, s.kind): s for s in sides}
    out = []
    for kind in KINDS:
        if ("after", kind) in by and ("before", kind) in by:
            label = f"{KIND_LABELS[kind]}, this code against the code before"
            out.append(compare(by["after", kind], by["before", kind], label))
    for code in ("after", "before"):
        if (code, "batched") in by and (code, "dummy") in by:
            label = f"{code} code, UniGenVecEnv against DummyVecEnv"
            out.append(compare(by[code, "batched"], by[code, "dummy"], label))
    return out


def _reply(side: Side) -> dict[str, Any]:
    proc = side.proc
    if proc is None or proc.stdout is None:
        raise RuntimeError(f"{side.name}: no worker process")
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr is not None else ""
        raise RuntimeError(f"{side.name}: the worker ended early:\n{err[-2000:]}")
    return dict(json.loads(line))


def start(
    side: Side, tmp: str, *, n_envs: int, size: int, warmup: int, seed: int, threads: int | None
) -> None:
    """Start ``side``'s worker importing the package under its source (not yet waited on)."""
    argv = [side.kind, n_envs, size, warmup, seed, "-" if threads is None else threads]
    side.proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, *map(str, argv)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ_importing(side.source),
        cwd=tmp,  # not a folder whose own package would shadow the source's
    )


def wait_ready(side: Side) -> None:
    """Wait for ``side``'s worker to finish its warm-up; check what it imported."""
    package = Path(_reply(side)["ready"]).resolve()
    if not package.is_relative_to(side.source.resolve()):
        raise RuntimeError(f"{side.name} imported {package}, not the package under {side.source}")


def run_slice(side: Side, seconds: float) -> None:
    """Step ``side`` for ``seconds`` and keep the slice."""
    proc = side.proc
    if proc is None or proc.stdin is None:
        raise RuntimeError(f"{side.name}: no worker process")
    proc.stdin.write(f"{seconds}\n")
    proc.stdin.flush()
    out = _reply(side)
    side.steps.append(int(out["steps"]))
    side.seconds.append(float(out["seconds"]))


def stop(sides: list[Side]) -> None:
    """End every worker (politely, then by force)."""
    for side in sides:
        proc = side.proc
        if proc is None:
            continue
        try:
            if proc.stdin is not None and proc.poll() is None:
                proc.stdin.write("quit\n")
                proc.stdin.close()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


def measure(args: argparse.Namespace) -> list[Side]:
    """Start the workers one after the other (warm-ups running at once would oversubscribe
    the cores with their torch threads), then run the rounds."""
    sides = [
        Side(code, kind, source)
        for code, source in (("before", args.before), ("after", REPO))
        for kind in args.kinds
    ]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for side in sides:
                start(
                    side,
                    tmp,
                    n_envs=args.n_envs,
                    size=args.size,
                    warmup=args.warmup,
                    seed=args.seed,
                    threads=args.threads,
                )
                wait_ready(side)
            for k in range(args.rounds):
                for side in round_order(sides, k):
                    run_slice(side, args.slice_seconds)
                print(
                    f"round {k + 1}/{args.rounds}: "
                    + ", ".join(f"{s.name} {s.rate(k):.1f}" for s in sides),
                    flush=True,
                )
        finally:
            stop(sides)
    return sides


def report(args: argparse.Namespace, sides: list[Side], argv: list[str]) -> str:
    """The markdown section: setup, per-side rates, the comparisons."""
    command = " ".join(["python benchmarks/paired_speedup.py", *argv])
    rows = "\n".join(
        f"| {s.code} ({revision(s.source)}) | {KIND_LABELS[s.kind]} | {s.rate():.1f} | "
        f"{float(np.median(s.slice_rates())):.1f} | {min(s.slice_rates()):.1f}-"
        f"{max(s.slice_rates()):.1f} | {sum(s.seconds):.0f} |"
        for s in sides
    )
    lines = "\n".join(c.line() for c in comparisons(sides))
    return (
        f"## {time.strftime('%Y-%m-%d')}, paired slices, N={args.n_envs}\n\n"
        f"Command: `{command}`  \n{environment_line(['cpu'])}.\n\n"
        f"Default unified reward, Box actions, image observations, seeded random actions; "
        f"{args.size}x{args.size}, N={args.n_envs}. Each configuration in its own process, "
        f"warmed up for {args.warmup} vector steps, then {args.rounds} rounds in which each "
        f"steps for {args.slice_seconds:g} s in turn (order reversed every other round).\n\n"
        "| code | VecEnv | env steps/s (all slices) | median slice | slices' range | "
        "seconds timed |\n|---|---|---:|---:|---:|---:|\n"
        f"{rows}\n\n{lines}\n"
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--before", type=Path, required=True, help="a checkout of the code to compare against"
    )
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--slice-seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=int, default=48, help="untimed vector steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--append", action="store_true", help="add a section to --output")
    args = parser.parse_args(argv)
    check_before(parser, args.before)
    for name, bound in (("n_envs", 1), ("size", 1), ("rounds", 1), ("warmup", 0)):
        value = getattr(args, name)
        if value < bound:
            parser.error(f"--{name.replace('_', '-')} must be an integer >= {bound}, got {value}")
    if not args.slice_seconds > 0:
        parser.error(f"--slice-seconds must be > 0, got {args.slice_seconds}")
    sides = measure(args)
    section = report(args, sides, argv)
    title = (
        "# Speed-up ratios in paired slices\n\n"
        "Written by `benchmarks/paired_speedup.py` (see its docstring); rerun it to refresh.\n\n"
    )
    write_section(args.output, section, title, append=args.append)
    print(section)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
