"""Training wall time of a config under dense and lazy reward scoring, and whether they agree.

Runs ``unigen-sb3 train CONFIG`` twice, one run after the other in fresh processes: once with
``env.dense_components: true`` (every reward component every step, the network on every
changed canvas: what every step computed before lazy scoring) and once with the default lazy
scoring. Reports each run's training wall time (``meta.json``'s ``train_seconds``, the
evaluation left out) and env steps per second, and compares the two runs' ``eval.json``
byte for byte: paid rewards are bit-identical under both schedules, so the trained models,
and so their evaluations, must be too.

``--before DIR`` adds a third run, first: the same command with the package imported from
``DIR``, a checkout of the code before lazy scoring (``git worktree add /tmp/before 23975f7``,
the commit before it), which is what "before" means for the issue's goal. Dense scoring in
today's code already has the other per-step savings, so it is a faster "before" than the
old code. Each run's training time is the wall time of SB3's ``learn()``, timed the same way
in all three (a wrapper around ``OnPolicyAlgorithm.learn`` / ``OffPolicyAlgorithm.learn``).
The old code's eval.json is not expected to equal today's: image scores then depended on
the batch they were computed in (up to 5e-7).

``--system-allocator`` adds a lazy run with ``UNIGEN_SB3_MALLOC=system``: glibc's own malloc
settings instead of those training applies (``unigen_sb3/experiments/allocator.py``: freed
memory is kept in the process rather than faulted in again page by page), so the table
separates what lazy scoring saves from what the allocator settings save. The code before
lazy scoring has no allocator settings. Its eval.json must be byte-identical to lazy's.

Usage::

    python benchmarks/train_wall_time.py                    # quickstart, docs/benchmarks/
    python benchmarks/train_wall_time.py --before /tmp/before --append
    python benchmarks/train_wall_time.py --before /tmp/before --repeats 3 --system-allocator
    python benchmarks/train_wall_time.py --config quickstart --set training.total_timesteps=2048
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vec_throughput import (
    check_before_and_repeats,
    environ_importing,
    environment_line,
    revision,
    write_section,
)

from unigen_sb3.experiments.allocator import ALLOCATOR_ENV

UNTUNED = f"lazy, {ALLOCATOR_ENV}=system"

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "lazy_reward.md"
SCHEDULES = {"dense": ["--set", "env.dense_components=true"], "lazy": []}

TITLE = """# Lazy reward scoring: training wall time

Written by `benchmarks/train_wall_time.py` (see its docstring). *dense*: every reward
component on every step (`env.dense_components: true`), what every step computed before lazy
scoring; *lazy*: the default, components where the reward is paid (and the shaping
potential's every step); *before* (`--before DIR`): the code before lazy scoring, which is
what the issue's goal compares against. Env throughput at N = 1 ... 256 under each is in
`vec_throughput.md`, where a step's time goes in `step_breakdown.md`.

"""


# Runs ``unigen_sb3.cli.main`` with SB3's ``learn()`` timed; writes {"seconds", "timesteps"}
# to the file named by argv[1]. The same wrapper for every run, whatever the code's version.
_DRIVER = """
import json, sys, time
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
record = {"seconds": 0.0, "timesteps": 0}
def timed(original):
    def learn(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            record["seconds"] += time.perf_counter() - start
            record["timesteps"] = int(self.num_timesteps)
    return learn
for cls in (OnPolicyAlgorithm, OffPolicyAlgorithm):
    cls.learn = timed(cls.learn)
import unigen_sb3
from unigen_sb3.cli import main
record["package"] = unigen_sb3.__file__
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump(record, f)
sys.exit(code)
"""


def train(
    config: str,
    out: Path,
    extra: list[str],
    source: Path | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[float, float, int, bytes]:
    """Train ``config`` into ``out`` (the package from ``source`` when given, with
    ``environ`` added to the environment); returns (training seconds, whole-command seconds,
    timesteps, eval.json)."""
    timing = out.with_suffix(".timing.json")
    if Path(config).is_file():  # a path, not a shipped config's name: the run's cwd differs
        config = str(Path(config).resolve())
    command = [
        sys.executable,
        "-c",
        _DRIVER,
        str(timing),
        "train",
        config,
        "--out",
        str(out),
        "--overwrite",
        *extra,
    ]
    env = dict(os.environ) if source is None else environ_importing(source)
    env.update(environ or {})
    start = time.perf_counter()
    # Run from the output folder: ``python -c`` puts the working directory first on the
    # import path, where a checkout's own package would shadow ``source``'s.
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=out.parent)
    wall = time.perf_counter() - start
    record = json.loads(timing.read_text())
    package = Path(record["package"]).resolve()
    if source is not None and not package.is_relative_to(source.resolve()):
        raise SystemExit(f"the run imported {package}, not the package under {source}")
    return (
        float(record["seconds"]),
        wall,
        int(record["timesteps"]),
        (out / "eval.json").read_bytes(),
    )


def _shorter(seconds: float, reference: float) -> str:
    """``"N % shorter"`` (or longer) of ``seconds`` against ``reference``."""
    change = 100 * (1 - seconds / reference)
    return f"{abs(change):.1f} % " + ("shorter" if change >= 0 else "longer")


def main(argv: list[str] | None = None) -> str:
    """Command-line entry point; returns the markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="quickstart")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--append", action="store_true", help="add a section to --output")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        metavar="DIR",
        help="also train with the package from DIR, a checkout of the code before lazy scoring",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="train each variant this many times, in turns (before, dense, lazy, before, ...); "
        "the table gives the median and every run",
    )
    parser.add_argument(
        "--system-allocator",
        action="store_true",
        help=f"also train lazy with {ALLOCATOR_ENV}=system (glibc's own malloc settings), to "
        "show what the training allocator settings add (unigen_sb3/experiments/allocator.py)",
    )
    args = parser.parse_args(argv)
    check_before_and_repeats(parser, args.before, args.repeats)
    overrides = [x for kv in args.set for x in ("--set", kv)]
    env_line = environment_line(["cpu"])
    variants: list[tuple[str, list[str], Path | None, dict[str, str]]] = []
    if args.before is not None:
        variants.append((f"before (code at {revision(args.before)})", [], args.before, {}))
    variants += [(name, extra, None, {}) for name, extra in SCHEDULES.items()]
    if args.system_allocator:
        variants.append((UNTUNED, SCHEDULES["lazy"], None, {ALLOCATOR_ENV: "system"}))
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in variants}
    steps_of: dict[str, int] = {}
    evals: dict[str, set[bytes]] = {name: set() for name, *_ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for k, (name, extra, source, environ) in enumerate(variants):
                seconds, wall, steps, evaluation = train(
                    args.config, Path(tmp) / f"run{r}_{k}", overrides + extra, source, environ
                )
                times[name].append((seconds, wall))
                steps_of[name] = steps
                evals[name].add(evaluation)
                print(f"{name}: training {seconds:.1f} s, whole command {wall:.1f} s", flush=True)
    median = {name: statistics.median(s for s, _ in runs) for name, runs in times.items()}
    dense, lazy = median["dense"], median["lazy"]
    same = len(evals["dense"] | evals["lazy"] | evals.get(UNTUNED, set())) == 1
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    many = args.repeats > 1
    lines = [
        f"## {datetime.date.today().isoformat()}, {os.cpu_count()} CPUs, `{args.config}`",
        "",
        f"Command: `{command}`  ",
        env_line + ".",
        "",
        "| code and scoring | training wall time (s)"
        + (", median" if many else "")
        + " | env steps/s in training | whole command (s)"
        + (", median | every run's training (s) |" if many else " |"),
        "|---|---:|---:|---:|" + ("---|" if many else ""),
    ]
    for name, runs in times.items():
        seconds, steps = median[name], steps_of[name]
        wall = statistics.median(w for _, w in runs)
        rate = f"{steps / seconds:.0f}" if steps and seconds else "-"
        row = f"| {name} | {seconds:.1f} | {rate} | {wall:.1f} |"
        if many:
            row += " " + ", ".join(f"{s:.1f}" for s, _ in runs) + " |"
        lines.append(row)
    lines.append("")
    if args.before is not None:
        before_name = variants[0][0]
        before = median[before_name]
        lines.append(
            f"Training wall time: lazy is {_shorter(lazy, before)} than the code "
            f"before lazy scoring ({lazy:.1f} s vs {before:.1f} s). Its eval.json "
            + (
                "is byte-identical to lazy's."
                if evals[before_name] == evals["lazy"]
                else "differs from lazy's (expected: image scores then depended on the batch)."
            )
        )
        lines.append("")
    if args.system_allocator:
        untuned = median[UNTUNED]
        lines += [
            f"Training wall time: lazy is {_shorter(lazy, untuned)} than lazy with glibc's "
            f"own malloc settings ({lazy:.1f} s vs {untuned:.1f} s): what the training "
            "allocator settings add (`unigen_sb3/experiments/allocator.py`).",
            "",
        ]
    lines += [
        f"Training wall time: lazy is {_shorter(lazy, dense)} than dense "
        f"({lazy:.1f} s vs {dense:.1f} s). The "
        + ("runs'" if many else "two runs'")
        + " eval.json files are "
        + ("**byte-identical**." if same else "**different** (they should not be)."),
        "",
    ]
    section = "\n".join(lines)
    print(section)
    write_section(args.output, section, TITLE, append=args.append)
    if not same:
        raise SystemExit("eval.json differs between dense and lazy scoring (or the allocators)")
    return section


if __name__ == "__main__":
    main()
