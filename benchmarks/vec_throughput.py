"""Env steps per second of the batched ``UniGenVecEnv`` vs ``DummyVecEnv`` and ``SubprocVecEnv``.

Every backend is the full SB3-ready stack of :func:`unigen_sb3.envs.vec_env.make_unigen_vec_env`
(default unified reward, Box actions, image observations, ``Monitor``/``VecMonitor``), stepped
with seeded uniform random Box actions; episodes end and auto-reset as in training. For each
backend and each N the env is built, reset, warmed up, then stepped for ``--seconds`` (at least
``--min-steps`` steps). Reported: env steps per second (N x vector steps / wall time) and the
peak memory while that configuration ran: peak RSS of this process (Linux ``VmHWM``, reset
before each configuration) plus, for ``SubprocVecEnv``, the workers' peak RSS, and on CUDA the
peak GPU memory allocated by torch.

``SubprocVecEnv`` starts one process per env, each holding torch and its own perceptual
network; N above ``--max-subproc`` is not run (the table says so and gives the per-worker peak
RSS measured at smaller N, to size it).

``--before DIR`` adds rows for the code before lazy scoring (``DIR``: a checkout of it, e.g.
``git worktree add /tmp/before 23975f7``), measured in the same run: every backend of
``--kinds`` on the CPU (``SubprocVecEnv`` up to ``--max-subproc``, with the same start method
and worker threads), each in a fresh process that imports the package from ``DIR`` and steps
the same stack with the same seeded actions (the ``before`` scoring rows; that code scored
every component every step), with that process's peak RSS (plus its workers'). What the
issue's goals compare against is that code, not today's dense schedule, which has the other
per-step savings.

``--repeats K`` makes K passes over all rows, one after the other, and reports each row's
median run (every run's figure in its note). This machine's speed drifts by about 10 % from
one minute to the next, so a single pass can put two rows measured minutes apart on
different footing. With ``--before``, the before/lazy lines give both the ratio of the
medians and the median of the per-pass ratios; a goal is judged on both. For a ratio that
the drift does not reach, ``paired_speedup.py`` times the pair in alternating slices of a few
seconds, each configuration in one long-lived process.

Usage::

    python benchmarks/vec_throughput.py --seconds 5         # the CPU table in docs/
    python benchmarks/vec_throughput.py --seconds 5 --before /tmp/before --kinds batched \\
        dummy --n-envs 64 --append          # before/after at N=64 in one run
    python benchmarks/vec_throughput.py --seconds 5 --before /tmp/before --kinds batched \\
        dummy --n-envs 64 --scoring lazy --repeats 5 --append   # the same, median of 5
    python benchmarks/vec_throughput.py --device cuda --kinds batched dummy --append
    python benchmarks/vec_throughput.py --n-envs 1 8 --seconds 2 --output /tmp/t.md  # smoke
    python benchmarks/vec_throughput.py --kinds batched dummy --n-envs 64 \\
        --metric-dtype bfloat16 --append          # batched env's network in bf16
    TORCH_HOME=/tmp/hub python benchmarks/vec_throughput.py --kinds batched dummy \\
        --n-envs 64 --perceptual-backend lpips --append   # original LPIPS AlexNet; its
                                    # trunk file must be in $TORCH_HOME/hub/checkpoints
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from unigen_sb3.envs.env import DEFAULT_HORIZON
from unigen_sb3.experiments.allocator import release_free_heap
from unigen_sb3.experiments.rundir import git_revision
from unigen_sb3.make import VEC_ENV_KINDS, make_unigen_vec_env
from unigen_sb3.rewards.mixed_precision import METRIC_DTYPES
from unigen_sb3.rewards.perceptual import PerceptualDistance
from unigen_sb3.utils import resolve_device

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "vec_throughput.md"
KIND_LABELS = {"batched": "UniGenVecEnv", "dummy": "DummyVecEnv", "subproc": "SubprocVecEnv"}


@dataclass
class Result:
    """One measured configuration."""

    kind: str
    n_envs: int
    size: int
    device: str
    steps_per_s: float | None = None
    vec_steps: int = 0
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    worker_rss_mb: float | None = None  # per SubprocVecEnv worker (mean)
    peak_gpu_mb: float | None = None
    network_ms: float | None = None  # metric-network forward time per env step (CPU only)
    note: str = ""
    schedule: str = "lazy"  # "lazy" (default scoring) or "dense" (every component every step)
    # Every run's env steps/s, in pass order, when the row was run several times (--repeats).
    runs: tuple[float | None, ...] = ()

    def note_workers(self) -> None:
        """Add the SubprocVecEnv workers' mean RSS (when measured) to :attr:`note`."""
        if self.worker_rss_mb is not None:
            workers = f"{self.worker_rss_mb:.0f} MB RSS per worker"
            self.note = f"{self.note}, {workers}" if self.note else workers


class NetworkTimer:
    """Wall time spent inside the perceptual network's trunk (forward hooks on its slices).

    ``PerceptualDistance.features`` runs the trunk's slices one by one (not the trunk's own
    forward), so each slice is timed. Only meaningful where the forward is synchronous
    (CPU) and in this process (not for ``SubprocVecEnv``, whose workers hold their own
    network).
    """

    def __init__(self, trunk: torch.nn.Module) -> None:
        self.seconds = 0.0
        self._start = 0.0
        slices = list(trunk.children())
        if not slices:
            raise ValueError(f"{type(trunk).__name__} has no slices to time")
        self._handles = [
            handle
            for s in slices
            for handle in (
                s.register_forward_pre_hook(self._pre),
                s.register_forward_hook(self._post),
            )
        ]

    def _pre(self, module: torch.nn.Module, args: Any) -> None:
        self._start = time.perf_counter()

    def _post(self, module: torch.nn.Module, args: Any, out: Any) -> None:
        self.seconds += time.perf_counter() - self._start

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()


def _network_trunk(venv: Any) -> torch.nn.Module | None:
    """The metric network trunk the (in-process) envs of ``venv`` share, if reachable."""
    if getattr(venv, "processes", None):
        return None
    inner = venv.unwrapped  # the VecEnv under the VecEnvWrappers
    envs = getattr(inner, "envs", None)  # DummyVecEnv: its first gymnasium env
    owner = envs[0].unwrapped if envs else inner
    # MixedPrecisionPerceptual forwards `trunk` to the network it wraps.
    return cast(torch.nn.Module, owner.rewards.perceptual.trunk)


def _reset_peak_rss() -> None:
    """Reset this process's VmHWM (Linux: writing 5 to clear_refs), so peaks are per config.

    The peak restarts from the current RSS, so the heap that earlier rows freed is first given
    back to the OS (glibc's ``malloc_trim``; elsewhere nothing is trimmed): without it a row
    run after a larger one (a later ``--repeats`` pass) reports the larger one's memory.
    Collect garbage first (:func:`measure` does), or what it would free is not trimmed.
    """
    release_free_heap()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mb(pid: int | str = "self") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def measure(
    kind: str,
    n_envs: int,
    *,
    size: int = 64,
    device: str = "cpu",
    seconds: float = 10.0,
    min_steps: int = 2,
    warmup: int = 1,
    seed: int = 0,
    start_method: str | None = None,
    metric_dtype: str | None = None,
    perceptual_backend: str = "auto",
    schedule: str = "lazy",
    task_bank_size: int | None = None,
    task_bank_features: bool = False,
) -> Result:
    """Steps per second and peak memory of one backend at one ``n_envs``.

    :param kind: ``"batched"``, ``"dummy"`` or ``"subproc"``.
    :param n_envs: number of envs.
    :param size: canvas side.
    :param device: where the envs' tensors and the metric network live.
    :param seconds: timed stepping lasts at least this long...
    :param min_steps: ...and at least this many vector steps.
    :param warmup: untimed vector steps after reset.
    :param seed: env and action seed.
    :param start_method: ``SubprocVecEnv``'s start method (default: SB3's).
    :param metric_dtype: autocast dtype of the metric network (batched only).
    :param perceptual_backend: the envs' ``perceptual_backend``.
    :param schedule: ``"lazy"`` (the default scoring: components where the reward is paid)
        or ``"dense"`` (``dense_components=True``: every component every step, the
        network on every changed canvas: what every step computed before lazy scoring).
    :param task_bank_size: the envs' task bank (``None``: a task drawn at every reset).
    :param task_bank_features: the bank keeps its targets' features (``task_bank_features``
        of the envs); pair it with a ``warmup`` of :func:`bank_warmup` steps to time the
        replayed tasks only.
    """
    dev = resolve_device(device)
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    _reset_peak_rss()
    kwargs: dict[str, Any] = {}
    if kind == "subproc" and start_method is not None:
        kwargs["vec_env_kwargs"] = {"start_method": start_method}
    if metric_dtype is not None:
        kwargs["metric_dtype"] = metric_dtype
    venv = make_unigen_vec_env(
        n_envs=n_envs,
        seed=seed,
        vec_env_kind=kind,
        size=size,
        device=str(dev),
        perceptual_backend=perceptual_backend,
        dense_components=schedule == "dense",
        task_bank_size=task_bank_size,
        task_bank_features=task_bank_features,
        **kwargs,
    )
    rng = np.random.default_rng(seed)
    shape = (n_envs, *venv.action_space.shape)  # type: ignore[misc]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    trunk = _network_trunk(venv) if dev.type == "cpu" else None
    timer: NetworkTimer | None = None
    try:
        venv.reset()
        for _ in range(warmup):
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
        sync()
        timer = None if trunk is None else NetworkTimer(trunk)
        steps, start = 0, time.perf_counter()
        while steps < min_steps or time.perf_counter() - start < seconds:
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
            steps += 1
        sync()
        elapsed = time.perf_counter() - start
        result = Result(kind, n_envs, size, str(dev), n_envs * steps / elapsed, steps, elapsed)
        result.schedule = schedule
        if task_bank_size is not None:
            result.note = bank_note(task_bank_size, task_bank_features)
        if timer is not None:
            result.network_ms = 1000.0 * timer.seconds / (n_envs * steps)
        if metric_dtype is not None:
            result.note = ", ".join(
                x for x in (result.note, f"metric network autocast to {metric_dtype}") if x
            )
        result.peak_rss_mb = _peak_rss_mb()
        procs = getattr(venv, "processes", None)
        if procs:
            workers = [_peak_rss_mb(p.pid) for p in procs]
            known = [w for w in workers if w is not None]
            if known and result.peak_rss_mb is not None:
                result.worker_rss_mb = float(np.mean(known))
                result.peak_rss_mb += float(np.sum(known))
        if dev.type == "cuda":
            result.peak_gpu_mb = torch.cuda.max_memory_allocated(dev) / 2**20
    finally:
        if timer is not None:
            timer.close()
        venv.close()
    return result


# Steps the stack of the package on the import path (an older checkout's, see --before) as
# measure() does, without its options; prints {"steps_per_s", "vec_steps", "seconds",
# "package", "peak_rss_mb", "worker_rss_mb"} as JSON. argv: kind n_envs size seconds
# min_steps warmup seed threads start_method ("-": the defaults).
_BEFORE_SNIPPET = """
import json, sys, time
from pathlib import Path
import numpy as np
import torch
import unigen_sb3
from unigen_sb3.make import make_unigen_vec_env
kind, n, size, seconds, min_steps, warmup, seed, threads, start_method = sys.argv[1:]
n, size, min_steps, warmup, seed = int(n), int(size), int(min_steps), int(warmup), int(seed)
if threads != "-":
    torch.set_num_threads(int(threads))
kwargs = {} if start_method == "-" else {"vec_env_kwargs": {"start_method": start_method}}
venv = make_unigen_vec_env(n_envs=n, seed=seed, vec_env_kind=kind, size=size, device="cpu",
                           **kwargs)
rng = np.random.default_rng(seed)
shape = (n, *venv.action_space.shape)
venv.reset()
for _ in range(warmup):
    venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
steps, start = 0, time.perf_counter()
while steps < min_steps or time.perf_counter() - start < float(seconds):
    venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
    steps += 1
elapsed = time.perf_counter() - start
def peak_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return None
try:
    peak = peak_mb("self")
    workers = [peak_mb(p.pid) for p in getattr(venv.unwrapped, "processes", None) or []]
except OSError:
    peak, workers = None, []
venv.close()
print(json.dumps({"steps_per_s": n * steps / elapsed, "vec_steps": steps, "seconds": elapsed,
                  "package": unigen_sb3.__file__, "peak_rss_mb": peak,
                  "worker_rss_mb": workers}))
"""


def revision(source: Path) -> str:
    """``source``'s short commit id, marked when its tracked files differ from that commit
    (what ran is then not the commit), or its path when it is not a git checkout."""
    found = git_revision(source)
    if found is None:
        return str(source)
    short = str(found["revision"])[:7]
    return f"{short} with uncommitted changes" if found["dirty"] else short


def environ_importing(source: Path) -> dict[str, str]:
    """This process's environment with ``source`` first on ``PYTHONPATH``: a child started
    with it (from a working directory without a package of its own) imports the package
    under ``source``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(source)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


def measure_before(
    source: Path,
    kind: str,
    n_envs: int,
    *,
    size: int,
    seconds: float,
    min_steps: int,
    warmup: int,
    seed: int = 0,
    threads: int | None = None,
    start_method: str | None = None,
) -> Result:
    """Env steps per second and peak RSS of the code in ``source`` (any backend, on the CPU,
    its default reward), in a fresh process that imports the package from there.

    :param threads: torch threads of that process (default: torch's).
    :param start_method: ``SubprocVecEnv``'s start method (default: SB3's).
    :raises ValueError: for an unknown ``kind``.
    """
    if kind not in KIND_LABELS:
        raise ValueError(f"--before measures {sorted(KIND_LABELS)}, not {kind!r}")
    env = environ_importing(source)
    argv = [kind, n_envs, size, seconds, min_steps, warmup, seed]
    argv += ["-" if threads is None else threads, start_method or "-"]
    with tempfile.TemporaryDirectory() as tmp:  # not a cwd whose package would shadow it
        done = subprocess.run(
            [sys.executable, "-c", _BEFORE_SNIPPET, *map(str, argv)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
        )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    package = Path(out["package"]).resolve()
    if not package.is_relative_to(source.resolve()):
        raise RuntimeError(f"the run imported {package}, not the package under {source}")
    result = Result(kind, n_envs, size, "cpu", out["steps_per_s"], out["vec_steps"])
    result.seconds, result.schedule = out["seconds"], "before"
    result.peak_rss_mb = out["peak_rss_mb"]
    workers = [w for w in out["worker_rss_mb"] if w is not None]
    if workers and result.peak_rss_mb is not None:
        result.worker_rss_mb = float(np.mean(workers))
        result.peak_rss_mb += float(np.sum(workers))
    return result


def _fmt(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(results: list[Result], baseline: str = "dummy") -> str:
    """The results table; the speed-up column is relative to ``baseline`` at the same N/size.

    Rows of ``baseline`` measured on another device than a row are still used: the point of
    the comparison on a GPU machine is batched-on-CUDA vs DummyVecEnv-on-CPU.
    """
    base = {
        (r.n_envs, r.size, r.schedule): r.steps_per_s
        for r in results
        if r.kind == baseline and r.steps_per_s is not None
    }
    lines = [
        f"| size | N | scoring | backend | device | env steps/s | vs {KIND_LABELS[baseline]} "
        "| network ms / env step | vector steps timed | peak RSS (MB) | peak GPU (MB) | note |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    order = {"before": -1, "dense": 0, "lazy": 1}
    for r in sorted(
        results,
        key=lambda r: (r.size, r.n_envs, order[r.schedule], VEC_ENV_KINDS.index(r.kind)),
    ):
        ref = base.get((r.n_envs, r.size, r.schedule))
        ratio = f"{r.steps_per_s / ref:.1f}x" if r.steps_per_s and ref else "-"
        lines.append(
            f"| {r.size} | {r.n_envs} | {r.schedule} | {KIND_LABELS[r.kind]} | {r.device} | "
            f"{_fmt(r.steps_per_s, 1)} | {ratio} | {_fmt(r.network_ms, 2)} | "
            f"{r.vec_steps or '-'} | "
            f"{_fmt(r.peak_rss_mb)} | {_fmt(r.peak_gpu_mb)} | {r.note} |"
        )
    return "\n".join(lines)


def network_bounds(results: list[Result], baseline: str = "dummy") -> str:
    """One line per batched CPU row: the speed it could reach if everything but the metric
    network's forward were free (``1000 / network ms per env step``), against the baseline."""
    base = {(r.n_envs, r.size, r.schedule): r.steps_per_s for r in results if r.kind == baseline}
    lines = []
    for r in results:
        ref = base.get((r.n_envs, r.size, r.schedule))
        if r.kind != "batched" or not r.network_ms or not ref:
            continue
        bound = 1000.0 / r.network_ms
        lines.append(
            f"- N={r.n_envs}, {r.size}x{r.size}, {r.schedule} scoring: the network alone "
            f"takes {r.network_ms:.2f} ms per env step, so the batched env cannot exceed "
            f"{bound:.0f} env steps/s here "
            f"({bound / ref:.1f}x {KIND_LABELS[baseline]}) even with every other cost at zero."
        )
    return "\n".join(lines)


def before_lines(results: list[Result]) -> str:
    """One line per (size, N, backend) measured both before and with lazy scoring: how many
    times faster lazy scoring runs than the old code. With several passes (``--repeats``),
    also the ratio within each pass (the two rows a pass measured a minute or less apart)
    and the median of those ratios, which can differ from the ratio of the medians."""
    before = {(r.kind, r.n_envs, r.size): r for r in results if r.schedule == "before"}
    lines = []
    for r in results:
        old = before.get((r.kind, r.n_envs, r.size))
        if r.schedule != "lazy" or not r.steps_per_s or old is None or not old.steps_per_s:
            continue
        line = (
            f"- N={r.n_envs}, {r.size}x{r.size}, {KIND_LABELS[r.kind]}: lazy scoring "
            f"{r.steps_per_s:.1f} env steps/s against {old.steps_per_s:.1f} before: "
            f"{r.steps_per_s / old.steps_per_s:.2f}x."
        )
        if len(r.runs) > 1 and len(r.runs) == len(old.runs):
            ratios = [a / b for a, b in zip(r.runs, old.runs, strict=True) if a and b]
            if ratios:
                line += (
                    " Pass by pass: "
                    + ", ".join(f"{x:.2f}x" for x in ratios)
                    + f" (median {statistics.median(ratios):.2f}x)."
                )
        lines.append(line)
    return "\n".join(lines)


def write_section(path: Path, section: str, title: str, *, append: bool) -> None:
    """Write a report: ``title`` + ``section``, or ``section`` appended to an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if append and path.exists():
        path.write_text(path.read_text().rstrip("\n") + "\n\n" + section)
    else:
        path.write_text(title + section)


def environment_line(devices: list[str]) -> str:
    """Machine, versions and threads, for the report header."""
    parts = [
        f"torch {torch.__version__}",
        f"{torch.get_num_threads()} torch threads",
        f"{os.cpu_count()} CPUs ({platform.machine()})",
        # The vector instructions torch's CPU kernels use (e.g. AVX2, AVX512): the same code
        # runs the metric network at a different speed, and rounds differently, on each.
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}",
    ]
    if any(d.startswith("cuda") for d in devices) and torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(0))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    parts.append(f"1-minute load average before the run: {load:.2f}")
    return ", ".join(parts)


def _measure_row(
    args: argparse.Namespace,
    size: int,
    n: int,
    schedule: str,
    kind: str,
    worker_mb: float | None,
) -> Result | None:
    """One measurement of a row of :func:`run`; ``None`` for a row that does not exist (the
    old code's rows are measured on the CPU only)."""
    dev = args.device if kind == "batched" else args.baseline_device
    if schedule == "before" and dev != "cpu":
        return None
    if kind == "subproc" and n > args.max_subproc:
        est = "" if worker_mb is None else f", about {worker_mb:.0f} MB RSS per worker"
        return Result(
            kind, n, size, dev, note=f"not run: N > --max-subproc{est}", schedule=schedule
        )
    if schedule == "before":
        r = measure_before(
            args.before,
            kind,
            n,
            size=size,
            seconds=args.seconds,
            min_steps=args.min_steps,
            warmup=args.warmup,
            threads=args.threads,
            start_method=args.start_method,
        )
        r.note_workers()
        print(f"size={size} N={n} before {kind}: {_fmt(r.steps_per_s, 1)} env steps/s")
        return r
    r = measure(
        kind,
        n,
        size=size,
        device=dev,
        seconds=args.seconds,
        min_steps=args.min_steps,
        warmup=args.warmup,
        start_method=args.start_method,
        metric_dtype=args.metric_dtype if kind == "batched" else None,
        perceptual_backend=args.perceptual_backend,
        schedule=schedule,
        task_bank_size=args.task_bank_size,
        task_bank_features=args.task_bank_features,
    )
    r.note_workers()
    print(
        f"size={size} N={n} {schedule} {kind} on {dev}: "
        f"{_fmt(r.steps_per_s, 1)} env steps/s, "
        f"peak RSS {_fmt(r.peak_rss_mb)} MB, peak GPU {_fmt(r.peak_gpu_mb)} MB",
        flush=True,
    )
    return r


def resolve_bank_warmup(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *, default: int
) -> None:
    """Refuse ``--task-bank-features`` without ``--task-bank-size`` (through
    ``parser.error``) and set an unset ``args.warmup``: :func:`bank_warmup` steps with
    ``--task-bank-features``, else ``default`` (this script's and ``step_breakdown.py``'s)."""
    if args.task_bank_features and args.task_bank_size is None:
        parser.error(
            "--task-bank-features keeps a task bank's target features: give --task-bank-size"
        )
    if args.warmup is None:
        args.warmup = bank_warmup(args.task_bank_size) if args.task_bank_features else default


def bank_note(task_bank_size: int, task_bank_features: bool) -> str:
    """How a row's or section's text names the envs' task bank."""
    kept = ", its targets' features kept" if task_bank_features else ""
    return f"task bank of {task_bank_size} per env{kept}"


def bank_warmup(task_bank_size: int, horizon: int = DEFAULT_HORIZON) -> int:
    """Vector steps after which every env has played each of its ``task_bank_size`` banked
    tasks at least once (an episode lasts at most ``horizon`` steps): from then on, a bank
    that keeps its targets' features runs the network on final canvases only."""
    return int(horizon) * int(task_bank_size)


def median_run(runs: list[Result]) -> Result:
    """The run of a row with the median env steps/s (the lower middle one for an even
    count), as a copy whose note lists every run's figure when there are several."""
    if len(runs) == 1:
        return runs[0]
    ranked = sorted(runs, key=lambda r: r.steps_per_s or 0.0)
    chosen = ranked[(len(ranked) - 1) // 2]
    every = ", ".join(_fmt(r.steps_per_s, 1) for r in runs)
    note = "; ".join(x for x in (chosen.note, f"median of {len(runs)} runs: {every}") if x)
    return dataclasses.replace(chosen, note=note, runs=tuple(r.steps_per_s for r in runs))


def run(args: argparse.Namespace) -> tuple[list[Result], str]:
    """Measure every (size, N, backend) and return the results and the markdown section."""
    devices = [args.device, args.baseline_device]
    env_line = environment_line(devices)
    worker_mb: float | None = None
    schedules = (["before"] if args.before is not None else []) + list(args.scoring)
    rows = [
        (size, n, schedule, kind)
        for size in args.sizes
        for n in args.n_envs
        for schedule in schedules
        for kind in args.kinds
    ]
    runs: dict[tuple[int, int, str, str], list[Result]] = {}
    # Every pass measures every row once, so a drift of the machine's speed during the run
    # (about 10 % here from one minute to the next) touches every row alike.
    for _ in range(args.repeats):
        for row in rows:
            size, n, schedule, kind = row
            done = runs.get(row)
            if done and done[0].steps_per_s is None:  # "not run": once is enough
                continue
            r = _measure_row(args, size, n, schedule, kind, worker_mb)
            if r is None:
                continue
            if r.worker_rss_mb is not None:
                worker_mb = r.worker_rss_mb
            runs.setdefault(row, []).append(r)
    results = [median_run(runs[row]) for row in rows if row in runs]
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    for var in ("TORCH_HOME", "OMP_NUM_THREADS"):  # environment that changes what runs
        if os.environ.get(var):
            command = f"{var}={shlex.quote(os.environ[var])} {command}"
    network = PerceptualDistance(args.perceptual_backend, device="cpu").backend_info
    today = datetime.date.today().isoformat()
    section = "\n".join(
        [
            f"## {today}, {os.cpu_count()} CPUs"
            + (f", {torch.cuda.get_device_name(0)}" if "cuda" in devices[0] else ""),
            "",
            f"Command: `{command}`  ",
            env_line + ".  ",
            f"Metric network: {network}.",
            "",
            f"Default unified reward, Box actions, image observations; random actions; "
            f"{args.warmup} warm-up step(s), then at least {args.seconds:g} s and "
            f"{args.min_steps} vector steps per row"
            + (
                f"; every row run {args.repeats} times (one pass over all rows after the "
                "other), the median run reported."
                if args.repeats > 1
                else "."
            ),
            "",
            markdown(results),
            "",
        ]
    )
    if args.before is not None:
        section += (
            f"\n*before*: the code at {revision(args.before)} (`--before {args.before}`), "
            "before lazy scoring, in a fresh process per row; it scored every component on "
            "every step.\n\n" + before_lines(results) + "\n"
        )
    bounds = network_bounds(results)
    if bounds:
        section += (
            "\n*network ms / env step*: wall time inside the metric network's forward per env "
            "step (CPU, in-process rows), resets included. Upper bounds it implies:\n\n"
            + bounds
            + "\n"
        )
    return results, section


HEADER = """# Batched VecEnv throughput

Written by `benchmarks/vec_throughput.py` (see its docstring); rerun it to refresh, `--append`
adds a section (e.g. from a GPU machine; `benchmarks/gpu_check.py` writes the CUDA section).
*env steps/s* is N x vector steps per second of wall time over the whole SB3-ready stack
(`make_unigen_vec_env`: unified reward, Box actions, image observations, monitor); *vs
DummyVecEnv* divides by DummyVecEnv's figure at the same N (on the baseline device). *peak
RSS* is this process's peak resident memory while that row ran (plus the workers' for
SubprocVecEnv, each of which holds its own torch and perceptual network, about 1 GB). Each
SubprocVecEnv worker runs `max(1, torch threads // N)` torch threads (`worker_threads`).

Reading the CPU figures: most of a UniGen step is per-image arithmetic, above all the
perceptual network's forward (*network ms / env step*: about 2.5-2.8 ms of DummyVecEnv's 6-7 ms
step at 64x64) and SSIM. Every backend runs the network only on the canvases a step changed
(a `stop` step reuses the canvas's features) and computes the blank start canvas's features
once. The batched env runs the network's first two slices in cache-sized chunks of 8 images
and its last three (small maps) in chunks of 64 (see `PerceptualDistance`'s `chunk_size`),
where its convolutions reach 80-90 % of the best
rate this CPU's convolution kernels reach at all, against 35-50 % one image at a time
(`perceptual_throughput.md`), and it has no per-env Python or dispatch costs. The bound
lines under a CPU table give the limit of batching on that machine: the batched env's speed
if everything but the network's forward cost nothing. On parallel hardware one large batch
per step pays off far more: an H100 ran the network 55x faster in a batch of 64 than one
image at a time.

"""


def check_before(parser: argparse.ArgumentParser, before: Path | None) -> None:
    """Refuse (through ``parser.error``) a ``--before`` folder without the package."""
    if before is not None and not (before / "unigen_sb3" / "__init__.py").is_file():
        parser.error(f"--before {before}: no unigen_sb3 package in that folder")


def check_before_and_repeats(
    parser: argparse.ArgumentParser, before: Path | None, repeats: int
) -> None:
    """Refuse (through ``parser.error``) a ``--before`` folder without the package and a
    ``--repeats`` below 1: the checks of this script and ``train_wall_time.py``."""
    if repeats < 1:
        parser.error(f"--repeats must be an integer >= 1, got {repeats}")
    check_before(parser, before)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="device of the batched env")
    parser.add_argument(
        "--baseline-device", default="cpu", help="device of the DummyVecEnv/SubprocVecEnv envs"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--kinds", nargs="+", default=list(VEC_ENV_KINDS), choices=VEC_ENV_KINDS)
    parser.add_argument(
        "--task-bank-size", type=int, default=None, help="tasks per env drawn once (env bank)"
    )
    parser.add_argument(
        "--task-bank-features",
        action="store_true",
        help="the bank keeps its targets' features (needs --task-bank-size; the default "
        "--warmup then lets every env play its bank once, so that replayed tasks are timed)",
    )
    parser.add_argument(
        "--scoring",
        nargs="+",
        default=["dense", "lazy"],
        choices=["dense", "lazy"],
        help="reward schedules to measure: dense (every component every step, what a step "
        "computed before lazy scoring) and lazy (the default: where the reward is paid)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per row")
    parser.add_argument("--min-steps", type=int, default=2, help="timed vector steps per row")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed vector steps per row (default 1; with --task-bank-features, "
        "bank_warmup(): horizon x bank size)",
    )
    parser.add_argument(
        "--max-subproc", type=int, default=8, help="largest N run with SubprocVecEnv"
    )
    parser.add_argument("--start-method", default=None, help="SubprocVecEnv start method")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (main process)")
    parser.add_argument(
        "--metric-dtype",
        default=None,
        choices=[name for name, dtype in METRIC_DTYPES.items() if dtype is not None],
        help="autocast the batched env's metric network (baselines stay float32)",
    )
    parser.add_argument(
        "--perceptual-backend",
        default="auto",
        choices=["auto", "stlpips", "lpips"],
        help="the envs' metric network (see PerceptualDistance)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        metavar="DIR",
        help="also measure the code in DIR (a checkout before lazy scoring), same run",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="passes over all rows; each row reports its median run (odd counts read best)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--append", action="store_true", help="add a section to --output")
    args = parser.parse_args(argv)
    check_before_and_repeats(parser, args.before, args.repeats)
    resolve_bank_warmup(parser, args, default=1)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    _, section = run(args)
    print(section)
    write_section(args.output, section, HEADER, append=args.append)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
