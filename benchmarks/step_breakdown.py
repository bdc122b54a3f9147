"""Where the time of one batched ``UniGenVecEnv`` step goes, on a CPU.

Steps the SB3-ready batched stack of :func:`unigen_sb3.envs.vec_env.make_unigen_vec_env`
(default unified reward, Box actions, image observations) with seeded uniform random
actions, as ``vec_throughput.py`` does, and times the main parts of a vector step by
wrapping them for the run: the canvas ops, the perceptual network on the changed canvases
and at resets, the reward components (and, inside them, SSIM, CIELAB conversion, the LPIPS
distance heads and the realism score), task sampling and observations. Parts nest (the
table indents them); *other* is what the listed parts of a level leave out of their parent.

On a CPU every call is synchronous. On CUDA (``--device cuda``) a call returns before its
kernels finish, so every timed call is wrapped in ``torch.cuda.synchronize()``: each part then
counts its own kernels, and the whole step runs somewhat slower than unobserved (host and
device no longer overlap). The markdown table is printed and written (with the command) to
``docs/benchmarks/step_breakdown.md``; ``--append`` adds a section.

Usage::

    python benchmarks/step_breakdown.py                       # N=64, default network
    TORCH_HOME=/tmp/hub python benchmarks/step_breakdown.py --perceptual-backend lpips --append
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import unigen_sb3.envs.core as core_module
import unigen_sb3.rewards.components as components_module
from unigen_sb3.envs.core import UniGenCore
from unigen_sb3.envs.tasks import TaskSampler
from unigen_sb3.envs.vec_env import UniGenVecEnv
from unigen_sb3.make import make_unigen_vec_env
from unigen_sb3.rewards.components import RewardComputer
from unigen_sb3.rewards.mixed_precision import METRIC_DTYPES
from unigen_sb3.rewards.perceptual import PerceptualDistance, RealismScorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vec_throughput import bank_note, environment_line, resolve_bank_warmup, write_section

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "step_breakdown.md"

# (label, depth, owner, attribute): what is timed, nested under the nearest shallower row,
# per reward schedule (``--scoring``).
_STEP_HEAD: list[tuple[str, int, Any, str]] = [
    ("batched env step (UniGenVecEnv.step_wait)", 0, UniGenVecEnv, "step_wait"),
    ("core step (UniGenCore.step)", 1, UniGenCore, "step"),
    ("canvas ops (apply_ops)", 2, core_module, "apply_ops"),
]
_STEP_TAIL: list[tuple[str, int, Any, str]] = [
    ("one device-to-host copy for the infos (UniGenCore._to_host)", 2, UniGenCore, "_to_host"),
    ("auto-resets (UniGenCore.reset)", 1, UniGenCore, "reset"),
    ("network on new targets and start canvases", 2, UniGenCore, "_reset_features"),
    ("reward components of the start canvases", 2, RewardComputer, "__call__"),
    ("task sampling (TaskSampler.sample_many)", 1, TaskSampler, "sample_many"),
    ("observations (UniGenCore.observations)", 1, UniGenCore, "observations"),
]
PARTS: dict[str, list[tuple[str, int, Any, str]]] = {
    "dense": [
        *_STEP_HEAD,
        ("network on the changed canvases", 2, UniGenCore, "_step_features"),
        ("reward components (RewardComputer.__call__)", 2, RewardComputer, "__call__"),
        *_STEP_TAIL,
    ],
    "lazy": [
        *_STEP_HEAD,
        ("temporal of the changed canvases (UniGenCore._temporal)", 2, UniGenCore, "_temporal"),
        (
            "episodes that end: scoring (UniGenCore._lazy_components)",
            2,
            UniGenCore,
            "_lazy_components",
        ),
        ("network on their targets, starts and final canvases", 3, UniGenCore, "_reset_features"),
        ("their reward components and the shaping one's", 3, RewardComputer, "__call__"),
        *_STEP_TAIL,
    ],
}
# Inside the reward components (both calls together).
COMPONENT_PARTS: list[tuple[str, Any, str]] = [
    ("SSIM (preservation, temporal)", components_module, "ssim"),
    ("CIELAB conversion", components_module, "rgb_to_lab"),
    ("LPIPS distance heads", PerceptualDistance, "distance_from_features"),
    ("realism score", RealismScorer, "score"),
    ("CIELAB style statistics (masked)", components_module, "masked_lab_style_stats"),
]


class Timers:
    """Wall time per function, split by whether a ``UniGenCore.reset`` call was running.

    Functions of :data:`COMPONENT_PARTS` count only while ``RewardComputer.__call__`` runs
    (the same functions also serve per-episode caches at reset).
    """

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        # On CUDA: synchronize around every timed call, so each part's kernels are counted
        # in it (this serializes the host and the device, so the whole step runs slower).
        self._sync = sync
        self._in_reset = 0
        self._in_components = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap every timed function; restore the originals on exit."""
        parts = [p for schedule in PARTS.values() for p in schedule]
        targets = {(o, n) for _, _, o, n in parts} | {(o, n) for _, o, n in COMPONENT_PARTS}
        inner = {_key(o, n) for _, o, n in COMPONENT_PARTS}
        originals = [(owner, name, owner.__dict__[name]) for owner, name in targets]
        for owner, name, fn in originals:
            key = _key(owner, name)
            setattr(owner, name, self._wrap(fn, key, only_in_components=key in inner))
        try:
            yield
        finally:
            for owner, name, fn in originals:
                setattr(owner, name, fn)

    def _wrap(
        self, fn: Callable[..., Any], key: str, *, only_in_components: bool
    ) -> Callable[..., Any]:
        is_reset = key == _key(UniGenCore, "reset")
        is_components = key == _key(RewardComputer, "__call__")

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            label = f"{key}@{'reset' if self._in_reset else 'step'}"
            counted = not only_in_components or self._in_components > 0
            self._in_reset += is_reset
            self._in_components += is_components
            if self._sync is not None:
                self._sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self._sync is not None:
                    self._sync()
                elapsed = time.perf_counter() - start
                self._in_reset -= is_reset
                self._in_components -= is_components
                if counted:
                    self.seconds[label] = self.seconds.get(label, 0.0) + elapsed

        return timed

    def get(self, key: str, scope: str | None = None) -> float:
        """Seconds in ``key`` during resets (``"reset"``), outside them (``"step"``) or both."""
        scopes = ("step", "reset") if scope is None else (scope,)
        return sum(self.seconds.get(f"{key}@{s}", 0.0) for s in scopes)


def _key(owner: Any, name: str) -> str:
    return f"{getattr(owner, '__name__', owner)}.{name}"


@dataclass
class Node:
    """One table row and the rows nested under it."""

    label: str
    seconds: float
    children: list[Node] = field(default_factory=list)


def measure(args: argparse.Namespace) -> tuple[Node, list[Node], float]:
    """Run the stack; return the tree of parts, the component parts (seconds per vector step)
    and the auto-resets per vector step."""
    kwargs: dict[str, Any] = {}
    if args.metric_dtype is not None:
        kwargs["metric_dtype"] = args.metric_dtype
    venv = make_unigen_vec_env(
        n_envs=args.n_envs,
        seed=0,
        size=args.size,
        device=args.device,
        perceptual_backend=args.perceptual_backend,
        dense_components=args.scoring == "dense",
        task_bank_size=args.task_bank_size,
        task_bank_features=args.task_bank_features,
        **kwargs,
    )
    rng = np.random.default_rng(0)
    shape = (args.n_envs, *venv.action_space.shape)  # type: ignore[misc]
    sync: Callable[[], None] | None = None
    if str(args.device).startswith("cuda"):
        import torch

        sync = torch.cuda.synchronize
    timers = Timers(sync)
    resets = 0
    try:
        venv.reset()
        for _ in range(args.warmup):
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
        with timers.installed():
            start = time.perf_counter()
            for _ in range(args.steps):
                _, _, dones, _ = venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
                resets += int(np.sum(dones))
            wall = time.perf_counter() - start
    finally:
        venv.close()
    root = Node("whole vector step (with the VecEnv wrappers)", wall / args.steps)
    stack = [root]
    for label, depth, owner, name in PARTS[args.scoring]:
        del stack[depth + 1 :]  # now the row's ancestors
        under_reset = any(n.label.startswith("auto-resets") for n in stack)
        scope = "reset" if under_reset else "step"
        node = Node(label, timers.get(_key(owner, name), scope) / args.steps)
        stack[-1].children.append(node)
        stack.append(node)
    components = [
        Node(label, timers.get(_key(owner, name)) / args.steps)
        for label, owner, name in COMPONENT_PARTS
    ]
    return root, components, resets / args.steps


def _row(label: str, depth: int, seconds: float, wall: float, n_envs: int) -> str:
    indent = "&nbsp;&nbsp;" * depth
    return (
        f"| {indent}{label} | {1e3 * seconds:.1f} | {1e3 * seconds / n_envs:.3f} "
        f"| {seconds / wall:.0%} |"
    )


def markdown(root: Node, components: list[Node], n_envs: int) -> str:
    """The nested table (each parent closed by an *other* row) and the components table."""
    header = [
        "| part | ms per vector step | ms per env step | share of the step |",
        "|---|---:|---:|---:|",
    ]
    lines = list(header)

    def emit(node: Node, depth: int) -> None:
        lines.append(_row(node.label, depth, node.seconds, root.seconds, n_envs))
        for child in node.children:
            emit(child, depth + 1)
        if node.children:
            other = node.seconds - sum(c.seconds for c in node.children)
            label = "VecEnv wrappers and monitor" if node is root else "other"
            lines.append(_row(label, depth + 1, other, root.seconds, n_envs))

    emit(root, 0)

    def component_seconds(node: Node) -> float:
        own = node.seconds if "reward components" in node.label else 0.0
        return own + sum(component_seconds(c) for c in node.children)

    total = component_seconds(root)
    lines += [
        "",
        "Inside the reward components (the step's and the resets' calls together, "
        f"{1e3 * total:.1f} ms per vector step):",
        "",
        *header,
    ]
    lines += [_row(c.label, 0, c.seconds, root.seconds, n_envs) for c in components]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    """Command-line entry point; returns the markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed vector steps")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed vector steps (default 3; with --task-bank-features, bank_warmup(): "
        "horizon x bank size, so that replayed tasks are timed)",
    )
    parser.add_argument(
        "--perceptual-backend", default="auto", choices=["auto", "stlpips", "lpips"]
    )
    parser.add_argument(
        "--metric-dtype",
        default=None,
        choices=[name for name, dtype in METRIC_DTYPES.items() if dtype is not None],
        help="autocast the metric network",
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu, or cuda (every timed call synchronized)"
    )
    parser.add_argument(
        "--task-bank-size", type=int, default=None, help="tasks per env drawn once (env bank)"
    )
    parser.add_argument(
        "--task-bank-features",
        action="store_true",
        help="the bank keeps its targets' features (needs --task-bank-size)",
    )
    parser.add_argument(
        "--scoring",
        default="lazy",
        choices=list(PARTS),
        help="reward schedule: lazy (the default: components where the reward is paid) or "
        "dense (every component every step, what a step computed before lazy scoring)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--append", action="store_true", help="add a section to --output")
    args = parser.parse_args(argv)
    resolve_bank_warmup(parser, args, default=3)
    if args.n_envs < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--n-envs and --steps must be >= 1, --warmup >= 0")

    env_line = environment_line([args.device])
    root, components, resets = measure(args)
    network = PerceptualDistance(args.perceptual_backend, device="cpu").backend_info
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    for var in ("TORCH_HOME", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            command = f"{var}={shlex.quote(os.environ[var])} {command}"
    dtype = f", metric network autocast to {args.metric_dtype}" if args.metric_dtype else ""
    section = "\n".join(
        [
            f"## {datetime.date.today().isoformat()}, {os.cpu_count()} CPUs, N={args.n_envs}, "
            f"{args.scoring} scoring",
            "",
            f"Command: `{command}`  ",
            env_line + ".  ",
            f"Metric network: {network}{dtype}.",
            "",
            f"Batched env, N={args.n_envs}, {args.size}x{args.size}, default unified reward, "
            f"random Box actions; {args.warmup} warm-up then {args.steps} timed vector steps "
            f"({args.n_envs / root.seconds:.0f} env steps/s with the timers in place), "
            f"{resets:.1f} auto-resets per vector step"
            + (
                "; " + bank_note(args.task_bank_size, args.task_bank_features)
                if args.task_bank_size is not None
                else ""
            )
            + ".",
            "",
            markdown(root, components, args.n_envs),
            "",
        ]
    )
    print(section)
    write_section(args.output, section, TITLE, append=args.append)
    return section


TITLE = """# Where a batched step's time goes

Written by `benchmarks/step_breakdown.py` (see its docstring); rerun it to refresh.
Each part is timed by a wrapper around one function during the run; nested rows are parts of
the row above them, and each *other* row is what its parent spent outside the listed parts.
The wrappers add a few microseconds per call.

"""


if __name__ == "__main__":
    main()
