"""Where the runs of an ablation execute: every (variant, seed) run is one task.

- ``local`` (the default): one run after another, in this process.
- ``processes``: a pool of ``max_parallel`` worker processes on this machine, started with
  ``spawn`` (each starts clean, without this process's torch threads); a worker takes the
  next run when it finishes one.
- ``ray``: one Ray task per run, each asking for ``ablation.num_cpus`` CPUs and
  ``ablation.num_gpus`` GPUs, on a running cluster (``address="auto"`` or ``"HOST:PORT"``)
  or on a local Ray instance started for the ablation and stopped after it (no address).
  Needs the ``ray`` extra: ``pip install 'unigen-sb3[ray]'``.

A task trains one run into its run directory and reports a :class:`RunOutcome`; a run that
raises is reported as ``failed`` with its error and traceback, never raised in the worker,
so the other runs go on. Every worker must see the run directories at the same path as
this process (on a cluster: a shared filesystem), since this process reads their
``eval.json`` files afterwards. A run resumes when its folder already holds a
``config.yaml`` (a rerun after an interruption or a failure, or Ray retrying a task whose
worker died), decided by the task itself where it runs.

Stopping: Ctrl-C, SIGTERM or SIGHUP of this process stops every run in flight the way
Ctrl-C stops ``train`` (its model and a checkpoint are saved, its ``meta.json`` says
``interrupted``), then raises ``KeyboardInterrupt``; worker processes are sent SIGTERM, and
Ray tasks are cancelled (which raises ``KeyboardInterrupt`` in them).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "EXECUTORS",
    "RAY_MISSING",
    "ExecutorError",
    "RunOutcome",
    "RunTask",
    "check_executor",
    "default_max_parallel",
    "execute",
    "run_task",
]

#: The executors ``ablate`` accepts.
EXECUTORS = ("local", "processes", "ray")

#: How to get Ray, said whenever it is needed and missing.
RAY_MISSING = "the ray executor needs Ray: pip install 'unigen-sb3[ray]'"

#: Seconds to wait for runs in flight to save themselves after a stop was forwarded.
STOP_GRACE_SECONDS = 120.0

Status = Literal["completed", "failed", "interrupted"]


class ExecutorError(ValueError):
    """An executor that cannot run as asked (unknown name, ``--address`` without Ray, Ray
    missing or unreachable, ``max_parallel < 1``...); raised before any run starts."""


@dataclass(frozen=True)
class RunTask:
    """One run to train and evaluate: what a worker needs, in plain picklable values.

    :param label: how messages name it, e.g. ``"no_edit seed=1"``.
    :param run_dir: its run directory, absolute (workers may start in another folder).
    :param config: its full config as plain values (``config_to_dict``).
    :param argv: the command line that planned it, recorded in its ``meta.json``.
    :param warm_start_cache: a folder where the runs of one plan share their behaviour
        cloning (``training.warm_start``), or None.
    """

    label: str
    run_dir: str
    config: dict[str, Any]
    argv: tuple[str, ...] = ()
    warm_start_cache: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended.

    :param label: the task's label.
    :param run_dir: the task's run directory.
    :param status: ``completed`` (``eval.json`` written), ``failed`` or ``interrupted``.
    :param error: ``"<type>: <message>"`` of a failed run, else None.
    :param traceback: the failed run's traceback (or the executor's account of it).
    :param host: the host that ran it.
    :param pid: the process that ran it (0 when unknown).
    :param reused: True for a run finished by an earlier invocation and kept.
    """

    label: str
    run_dir: str
    status: Status
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    host: str = ""
    pid: int = 0
    reused: bool = False


def run_task(task: RunTask) -> RunOutcome:
    """Train and evaluate one run (:func:`~unigen_sb3.experiments.runner.train`); resume it
    when its folder already holds a ``config.yaml``. What every executor calls, in its
    worker.

    :param task: the run.
    :return: its outcome; an exception of the run is returned as ``failed``, not raised.
    :raises KeyboardInterrupt: Ctrl-C (or a handled signal) outside ``learn``, as ``train``.
    """
    from unigen_sb3.configs.loader import load_config
    from unigen_sb3.experiments.rundir import RunDir
    from unigen_sb3.experiments.runner import train

    host, pid = socket.gethostname(), os.getpid()
    saved_argv = sys.argv
    if task.argv:
        sys.argv = list(task.argv)  # meta.json's "command": the ablate command, not a worker's
    try:
        run_dir = Path(task.run_dir)
        resume = (run_dir / "config.yaml").exists()
        # Stopped before its first checkpoint (building the env, cloning demonstrations):
        # nothing to resume from, so it starts again (its config was checked by the planner).
        fresh = resume and RunDir(run_dir).latest_checkpoint() is None
        result = train(
            load_config(task.config),
            run_dir,
            resume=resume and not fresh,
            overwrite=fresh,
            warm_start_cache=task.warm_start_cache,
        )
    except Exception as exc:
        return RunOutcome(
            task.label,
            task.run_dir,
            "failed",
            error=_one_line(exc),
            traceback=traceback.format_exc(),
            host=host,
            pid=pid,
        )
    finally:
        sys.argv = saved_argv
    status: Status = "interrupted" if result.interrupted else "completed"
    return RunOutcome(task.label, task.run_dir, status, host=host, pid=pid)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"


def _failed(task: RunTask, error: str, detail: str | None = None, pid: int = 0) -> RunOutcome:
    return RunOutcome(task.label, task.run_dir, "failed", error=error, traceback=detail, pid=pid)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_max_parallel(num_cpus: float) -> int:
    """The processes executor's default pool size: this machine's usable CPUs divided by the
    CPUs of one run (``ablation.num_cpus``), at least 1."""
    return max(1, int(_usable_cpus() // max(num_cpus, 1e-9)))


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError(f"{RAY_MISSING} ({exc})") from exc
    return ray


def check_executor(executor: str, address: str | None, max_parallel: int | None) -> None:
    """Refuse executor settings that cannot work, before anything is written or trained.

    :param executor: one of :data:`EXECUTORS`.
    :param address: a Ray cluster address (``ray`` only).
    :param max_parallel: runs at once (``processes`` and ``ray``); None = the default.
    :raises ExecutorError: saying what is wrong and what is accepted.
    """
    if executor not in EXECUTORS:
        raise ExecutorError(f"unknown executor {executor!r}; accepted: {list(EXECUTORS)}")
    if max_parallel is not None:
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int):
            raise ExecutorError(f"--max-parallel must be an integer >= 1, got {max_parallel!r}")
        if max_parallel < 1:
            raise ExecutorError(
                f"--max-parallel must be >= 1, got {max_parallel}: it is how many runs train "
                "at once"
            )
        if executor == "local" and max_parallel != 1:
            raise ExecutorError(
                f"--max-parallel {max_parallel} needs --executor processes (a pool on this "
                "machine) or --executor ray; the local executor runs one run at a time"
            )
    if address is not None:
        if executor != "ray":
            raise ExecutorError(
                f"--address {address} names a Ray cluster, so it needs --executor ray "
                f"(got --executor {executor})"
            )
        if not address.strip():
            raise ExecutorError("--address is empty; give 'auto' or the head's HOST:PORT")
    if executor == "ray":
        _import_ray()


def execute(
    tasks: Sequence[RunTask],
    executor: str = "local",
    *,
    address: str | None = None,
    max_parallel: int | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    on_start: Callable[[RunTask], None] | None = None,
    on_result: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run every task with ``executor``; return their outcomes in the order of ``tasks``.

    A failed run does not stop the others. ``on_start`` is called as a run starts (is
    handed to a worker), ``on_result`` as it ends, both in this process.

    :param tasks: the runs.
    :param executor: one of :data:`EXECUTORS`.
    :param address: the Ray cluster to join (``ray``); None starts a local Ray instance.
        A process already connected to Ray (``ray.is_initialized()``) keeps its connection.
    :param max_parallel: runs at once; None = :func:`default_max_parallel` (``processes``)
        or as many as the cluster schedules (``ray``).
    :param num_cpus: CPUs one run needs (Ray's ``num_cpus``).
    :param num_gpus: GPUs one run needs (Ray's ``num_gpus``).
    :param on_start: called with each task as it starts.
    :param on_result: called with each outcome as it arrives.
    :return: one outcome per task, in order.
    :raises ExecutorError: from :func:`check_executor`, or when Ray cannot be reached.
    :raises KeyboardInterrupt: when a run was interrupted; the runs in flight were stopped
        and saved first.
    """
    check_executor(executor, address, max_parallel)
    started = on_start or (lambda _task: None)
    ended = on_result or (lambda _outcome: None)
    if not tasks:
        return []
    if executor == "local":
        results = _run_local(tasks, started, ended)
    elif executor == "processes":
        limit = max_parallel or default_max_parallel(num_cpus)
        results = _run_processes(tasks, min(limit, len(tasks)), started, ended)
    else:
        results = _run_ray(tasks, address, max_parallel, num_cpus, num_gpus, started, ended)
    by_dir = {o.run_dir: o for o in results}
    return [by_dir[t.run_dir] for t in tasks]


def _run_local(
    tasks: Sequence[RunTask],
    on_start: Callable[[RunTask], None],
    on_result: Callable[[RunOutcome], None],
) -> list[RunOutcome]:
    results = []
    for task in tasks:
        on_start(task)
        outcome = run_task(task)
        on_result(outcome)
        results.append(outcome)
        if outcome.status == "interrupted":
            raise KeyboardInterrupt
    return results


# --- processes -----------------------------------------------------------------------------


def _pool_worker(conn: Connection) -> None:
    """A pool process: run the tasks ``conn`` sends, send back each outcome; None ends it.

    SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group, the parent
    forwards one SIGTERM instead), and SIGTERM / SIGHUP stop the run as Ctrl-C stops
    ``train``: saved, reported ``interrupted``.
    """
    from unigen_sb3.experiments import signals

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signals.install()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if task is None:
            return
        try:
            outcome = run_task(task)
        except KeyboardInterrupt:  # stopped outside learn(): nothing more to save
            outcome = RunOutcome(
                task.label, task.run_dir, "interrupted", host=socket.gethostname(), pid=os.getpid()
            )
        try:
            conn.send(outcome)
        except (OSError, EOFError):  # the parent is gone
            return
        if outcome.status == "interrupted":
            return


class _Worker:
    """One pool process and the task it runs."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        # Not a daemon: a run may start processes of its own (vec_env_kind: subproc).
        self.proc = ctx.Process(target=_pool_worker, args=(child,), name="unigen-sb3-ablate")
        self.proc.start()
        child.close()
        self.task: RunTask | None = None

    def give(self, task: RunTask) -> None:
        self.task = task
        self.conn.send(task)

    def death(self) -> RunOutcome:
        """The outcome of this worker's task when the process died under it."""
        assert self.task is not None
        self.proc.join(timeout=10)
        code = self.proc.exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        pid = self.proc.pid or 0
        return _failed(
            self.task,
            f"WorkerDied: the worker process (pid {pid}) {how} while training this run "
            "(killed from outside, or out of memory?)",
            pid=pid,
        )


def _collect(worker: _Worker) -> RunOutcome | None:
    """The outcome ``worker`` sent or the one its death implies, or None (still running)."""
    assert worker.task is not None
    try:
        if worker.conn.poll():
            outcome: RunOutcome = worker.conn.recv()
            return outcome
    except (EOFError, OSError):
        return worker.death()
    if not worker.proc.is_alive():
        return worker.death()
    return None


def _run_processes(
    tasks: Sequence[RunTask],
    max_parallel: int,
    on_start: Callable[[RunTask], None],
    on_result: Callable[[RunOutcome], None],
) -> list[RunOutcome]:
    ctx = multiprocessing.get_context("spawn")
    pending = deque(tasks)
    workers: list[_Worker] = []
    results: list[RunOutcome] = []

    def finish(worker: _Worker, outcome: RunOutcome) -> None:
        worker.task = None
        results.append(outcome)
        on_result(outcome)
        if outcome.error is not None and outcome.error.startswith("WorkerDied"):
            workers.remove(worker)  # a new one takes its place if runs are left
            worker.conn.close()

    def assign(worker: _Worker) -> None:
        task = pending.popleft()
        try:
            worker.give(task)
        except (OSError, EOFError, ValueError):  # it died while idle: the task waits again
            worker.task = None
            workers.remove(worker)
            worker.conn.close()
            worker.proc.join(timeout=10)
            pending.appendleft(task)
            return
        on_start(task)

    try:
        while True:
            for worker in list(workers):
                if worker.task is None and pending:
                    assign(worker)
            while pending and len(workers) < max_parallel:
                worker = _Worker(ctx)
                workers.append(worker)
                assign(worker)
            busy = [w for w in workers if w.task is not None]
            if not busy:
                break
            wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for worker in busy:
                outcome = _collect(worker)
                if outcome is not None:
                    finish(worker, outcome)
                    if outcome.status == "interrupted":
                        raise KeyboardInterrupt  # the worker was stopped from outside
    except KeyboardInterrupt:
        _stop_workers(workers, finish)
        raise
    finally:
        _close_workers(workers)
    return results


def _stop_workers(workers: list[_Worker], finish: Callable[[_Worker, RunOutcome], None]) -> None:
    """SIGTERM every busy worker (its run saves itself) and collect what they report."""
    busy = [w for w in workers if w.task is not None]
    for worker in busy:
        if worker.proc.pid is not None and worker.proc.is_alive():
            os.kill(worker.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while busy and time.monotonic() < deadline:
        wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=1.0)
        for worker in list(busy):
            outcome = _collect(worker)
            if outcome is not None:
                busy.remove(worker)
                if worker in workers:
                    finish(worker, outcome)


def _close_workers(workers: list[_Worker]) -> None:
    for worker in workers:
        try:
            worker.conn.send(None)
        except (OSError, EOFError, ValueError):
            pass
    for worker in workers:
        worker.proc.join(timeout=10)
        if worker.proc.is_alive():
            worker.proc.terminate()
            worker.proc.join(timeout=10)
        worker.conn.close()


# --- ray -----------------------------------------------------------------------------------


def _connect_ray(ray: Any, address: str | None) -> bool:
    """Connect to ``address`` or start a local instance; True when this call connected."""
    if ray.is_initialized():
        return False
    try:
        if address is None:
            # "local": a new instance on this machine, even where another one runs.
            ray.init(address="local", include_dashboard=False)
        else:
            ray.init(address=address)
    except (ConnectionError, ValueError) as exc:
        hint = (
            "start one with `ray start --head` (on this machine, or use its HOST:PORT), or "
            "leave --address out to start a local Ray instance"
        )
        raise ExecutorError(
            f"cannot reach a Ray cluster at --address {address}: {_one_line(exc)}; {hint}"
        ) from exc
    return True


def _check_ray_resources(ray: Any, num_cpus: float, num_gpus: float, ours: bool) -> None:
    """Refuse (on a local instance we started) or warn about (on a cluster, which may scale
    up) a run that no node of the cluster can hold."""
    total = ray.cluster_resources()
    short = [
        f"{name}={need:g} (the cluster has {total.get(key, 0):g})"
        for name, key, need in (("num_cpus", "CPU", num_cpus), ("num_gpus", "GPU", num_gpus))
        if need > total.get(key, 0)
    ]
    if not short:
        return
    text = (
        f"each run asks for ablation.{' and ablation.'.join(short)}, more than the Ray "
        "cluster offers, so Ray would never schedule it"
    )
    if ours:
        raise ExecutorError(f"{text}; lower them in the config (--set ablation.num_gpus=0 ...)")
    import warnings

    warnings.warn(f"{text} unless the cluster adds nodes", stacklevel=3)


def _run_ray(
    tasks: Sequence[RunTask],
    address: str | None,
    max_parallel: int | None,
    num_cpus: float,
    num_gpus: float,
    on_start: Callable[[RunTask], None],
    on_result: Callable[[RunOutcome], None],
) -> list[RunOutcome]:
    ray = _import_ray()
    ours = _connect_ray(ray, address)
    inflight: dict[Any, RunTask] = {}
    results: list[RunOutcome] = []
    try:
        _check_ray_resources(ray, num_cpus, num_gpus, ours and address is None)
        remote = ray.remote(run_task)
        pending = deque(tasks)
        limit = max_parallel or len(tasks)
        while pending or inflight:
            while pending and len(inflight) < limit:
                task = pending.popleft()
                ref = remote.options(
                    num_cpus=num_cpus, num_gpus=num_gpus, name=f"unigen-sb3 ablate {task.label}"
                ).remote(task)
                inflight[ref] = task
                on_start(task)
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                task = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # the worker or node died, the task could not run...
                    outcome = _failed(task, _one_line(exc), str(exc))
                results.append(outcome)
                on_result(outcome)
                if outcome.status == "interrupted":
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        for ref in inflight:
            ray.cancel(ref)  # KeyboardInterrupt in the task: train saves the run
        if inflight:
            ray.wait(list(inflight), num_returns=len(inflight), timeout=STOP_GRACE_SECONDS)
        raise
    finally:
        if ours:
            ray.shutdown()
    return results
