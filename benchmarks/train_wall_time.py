"""Training wall time of a config under dense and lazy reward scoring, and whether they agree.

Runs ``unigen-sb3 train CONFIG`` twice, one run after the other in fresh processes: once with
``env.dense_components: true`` (every reward component every step, the network on every
changed canvas: what every step computed before lazy scoring) and once with the default lazy
scoring. Reports each run's training wall time (``meta.json``'s ``train_seconds``, the
evaluation left out) and env steps per second, and compares the two runs' ``eval.json``
byte for byte: paid rewards are bit-identical under both schedules, so the trained models,
and so their evaluations, must be too.

Usage::

    python benchmarks/train_wall_time.py                    # quickstart, docs/benchmarks/
    python benchmarks/train_wall_time.py --config quickstart --set training.total_timesteps=2048
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vec_throughput import environment_line, write_section

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "lazy_reward.md"
SCHEDULES = {"dense": ["--set", "env.dense_components=true"], "lazy": []}

TITLE = """# Lazy reward scoring: training wall time

Written by `benchmarks/train_wall_time.py` (see its docstring). *dense*: every reward
component on every step (`env.dense_components: true`), what every step computed before lazy
scoring; *lazy*: the default, components where the reward is paid (and the shaping
potential's every step). Env throughput at N = 1 ... 256 under both schedules is in
`vec_throughput.md`, where a step's time goes in `step_breakdown.md`.

"""


def train(config: str, out: Path, extra: list[str]) -> tuple[float, float, bytes]:
    """Train ``config`` into ``out``; returns (training seconds, wall seconds, eval.json)."""
    command = [
        sys.executable,
        "-m",
        "unigen_sb3.cli",
        "train",
        config,
        "--out",
        str(out),
        "--overwrite",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    meta = json.loads((out / "meta.json").read_text())
    return float(meta["train_seconds"]), wall, (out / "eval.json").read_bytes()


def main(argv: list[str] | None = None) -> str:
    """Command-line entry point; returns the markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="quickstart")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--append", action="store_true", help="add a section to --output")
    args = parser.parse_args(argv)
    overrides = [x for kv in args.set for x in ("--set", kv)]
    env_line = environment_line(["cpu"])
    rows, evals = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in SCHEDULES.items():
            seconds, wall, evaluation = train(args.config, Path(tmp) / name, overrides + extra)
            meta = json.loads((Path(tmp) / name / "meta.json").read_text())
            steps = int(meta.get("num_timesteps", 0))
            evals[name] = evaluation
            rows.append((name, seconds, wall, steps))
            print(f"{name}: training {seconds:.1f} s, whole command {wall:.1f} s", flush=True)
    dense, lazy = rows[0][1], rows[1][1]
    same = evals["dense"] == evals["lazy"]
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        f"## {datetime.date.today().isoformat()}, {os.cpu_count()} CPUs, `{args.config}`",
        "",
        f"Command: `{command}`  ",
        env_line + ".",
        "",
        "| scoring | training wall time (s) | env steps/s in training | whole command (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds, wall, steps in rows:
        rate = f"{steps / seconds:.0f}" if steps and seconds else "-"
        lines.append(f"| {name} | {seconds:.1f} | {rate} | {wall:.1f} |")
    lines += [
        "",
        f"Training wall time: lazy is {100 * (1 - lazy / dense):.0f} % shorter than dense "
        f"({lazy:.1f} s vs {dense:.1f} s). The two runs' eval.json files are "
        + ("**byte-identical**." if same else "**different** (they should not be)."),
        "",
    ]
    section = "\n".join(lines)
    print(section)
    write_section(args.output, section, TITLE, append=args.append)
    if not same:
        raise SystemExit("eval.json differs between dense and lazy scoring")
    return section


if __name__ == "__main__":
    main()
